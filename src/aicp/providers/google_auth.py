"""OAuth access tokens for Google Cloud (Vertex AI), fetched off the event loop.

A static token in `api_key` wins (tests, and users who mint tokens
themselves); otherwise Application Default Credentials via google-auth (the
optional extra `vertex`). Tokens are cached until shortly before they expire
and refreshed by one caller at a time. They are never logged.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from typing import Any

from aicp.errors import ConfigError, UpstreamUnavailable

SCOPES = ("https://www.googleapis.com/auth/cloud-platform",)
#: Refresh this long before expiry, so a token never dies in flight.
MARGIN_S = 300.0
#: When the credentials do not say when they expire.
DEFAULT_LIFETIME_S = 3000.0


class TokenSource:
    """`await source()` -> a bearer token."""

    def __init__(self, provider: str, static: str | None = None, credentials: Any = None) -> None:
        self.provider = provider
        self._static = static
        self._token: str | None = None
        self._expires = 0.0  # time.monotonic() deadline
        #: A google.auth Credentials object; found through ADC when not given.
        self._credentials = credentials
        self._lock = asyncio.Lock()

    def __repr__(self) -> str:  # never show the token
        return f"TokenSource(provider={self.provider!r})"

    async def __call__(self) -> str:
        if self._static:
            return self._static
        if self._token is not None and time.monotonic() < self._expires:
            return self._token
        async with self._lock:
            # Another caller may have refreshed while we waited for the lock.
            if self._token is None or time.monotonic() >= self._expires:
                await self._refresh()
            assert self._token is not None
            return self._token

    async def _refresh(self) -> None:
        if self._credentials is None:
            self._credentials = await asyncio.to_thread(self._load)
        creds = self._credentials
        try:
            await asyncio.to_thread(creds.refresh, _transport())
        except Exception as exc:
            # The exception text may quote credential files; name only its type.
            raise UpstreamUnavailable(
                f"provider {self.provider!r}: cannot refresh Google credentials "
                f"({type(exc).__name__})",
                code="auth",
            ) from None
        self._token = str(creds.token)
        self._expires = time.monotonic() + _lifetime(getattr(creds, "expiry", None)) - MARGIN_S

    def _load(self) -> Any:
        try:
            import google.auth
            from google.auth.exceptions import DefaultCredentialsError
        except ImportError:
            raise ConfigError(
                f"provider {self.provider!r}: Vertex AI needs google-auth for credentials; "
                "install aicp[vertex], or set api_key to an access token"
            ) from None
        try:
            creds, _project = google.auth.default(scopes=list(SCOPES))
        except DefaultCredentialsError:
            raise ConfigError(
                f"provider {self.provider!r}: no Google credentials found; set "
                "GOOGLE_APPLICATION_CREDENTIALS or run `gcloud auth application-default login`"
            ) from None
        return creds


def _lifetime(expiry: Any) -> float:
    if not isinstance(expiry, dt.datetime):
        return DEFAULT_LIFETIME_S
    # google-auth keeps expiry as a naive UTC datetime.
    if expiry.tzinfo is None:
        expiry = expiry.replace(tzinfo=dt.UTC)
    remaining: float = (expiry - dt.datetime.now(dt.UTC)).total_seconds()
    return max(0.0, remaining)


def _transport() -> Any:
    """google-auth's HTTP transport: requests when installed, else urllib3."""
    try:
        from google.auth.transport.requests import Request

        return Request()
    except ImportError:
        pass
    try:
        import urllib3
        from google.auth.transport.urllib3 import Request as Urllib3Request
    except ImportError:
        raise ConfigError(
            "google-auth needs `requests` or `urllib3` to refresh tokens; install aicp[vertex]"
        ) from None
    # google-auth's urllib3 transport has no annotations.
    return Urllib3Request(urllib3.PoolManager())  # type: ignore[no-untyped-call]
