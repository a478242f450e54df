"""AWS plumbing for Bedrock: request signing and event-stream decoding, via botocore.

botocore is the optional extra `bedrock`; it is imported when a Bedrock
provider is built, never at import time. Credentials come from botocore's
own chain (environment, shared profile, SSO, container and instance roles),
resolved once off the event loop; refreshable credentials are checked on every
request and refreshed in a thread when they near expiry. Secrets are never put
in messages: errors name the provider and the source, not the values.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Mapping
from typing import Any, Protocol

from aicp.errors import ConfigError, UpstreamUnavailable

#: Options a Bedrock provider accepts to pin credentials (tests, or setups without a chain).
CREDENTIAL_OPTIONS = frozenset(
    {"aws_access_key_id", "aws_secret_access_key", "aws_session_token", "aws_profile"}
)


def botocore_module(provider: str, feature: str) -> Any:
    """botocore, or a ConfigError that says how to get it."""
    try:
        import botocore.auth
        import botocore.awsrequest
        import botocore.credentials
        import botocore.eventstream
        import botocore.session
    except ImportError as exc:
        raise ConfigError(
            f"provider {provider!r}: {feature} needs botocore; install the extra: "
            "pip install 'aicp[bedrock]'"
        ) from exc
    return botocore


class Signer(Protocol):
    async def sign(
        self, method: str, url: str, body: bytes, headers: dict[str, str]
    ) -> dict[str, str]:
        """The headers to send, with authentication added."""
        ...


class BearerSigner:
    """Bedrock API keys: `Authorization: Bearer <key>` instead of a signature."""

    __slots__ = ("_header",)

    def __init__(self, api_key: str) -> None:
        self._header = f"Bearer {api_key}"

    def __repr__(self) -> str:
        return "BearerSigner(<redacted>)"

    async def sign(
        self, method: str, url: str, body: bytes, headers: dict[str, str]
    ) -> dict[str, str]:
        return {**headers, "authorization": self._header}


class SigV4Signer:
    """AWS Signature Version 4 over the exact bytes that are sent."""

    def __init__(self, provider: str, region: str, options: Mapping[str, Any]) -> None:
        self._bc = botocore_module(provider, "SigV4 signing")
        self.provider = provider
        self.region = region
        self.service = "bedrock"  # the signing name of bedrock-runtime
        self._profile = options.get("aws_profile")
        self._credentials: Any = _static_credentials(self._bc, provider, options)
        self._lock = asyncio.Lock()

    def __repr__(self) -> str:
        return f"SigV4Signer(provider={self.provider!r}, region={self.region!r})"

    async def sign(
        self, method: str, url: str, body: bytes, headers: dict[str, str]
    ) -> dict[str, str]:
        frozen = await self._frozen()
        request = self._bc.awsrequest.AWSRequest(method=method, url=url, data=body, headers=headers)
        self._bc.auth.SigV4Auth(frozen, self.service, self.region).add_auth(request)
        return dict(request.headers.items())

    async def _frozen(self) -> Any:
        if self._credentials is None:
            async with self._lock:
                if self._credentials is None:
                    # The chain may query the instance metadata service: keep it off the loop.
                    self._credentials = await asyncio.to_thread(self._resolve)
        creds = self._credentials
        refresh_needed = getattr(creds, "refresh_needed", None)
        if refresh_needed is not None and refresh_needed():
            return await asyncio.to_thread(creds.get_frozen_credentials)
        return creds.get_frozen_credentials()

    def _resolve(self) -> Any:
        session = self._bc.session.Session(profile=self._profile)
        try:
            creds = session.get_credentials()
        except Exception as exc:  # botocore raises many kinds; none should carry secrets
            raise ConfigError(
                f"provider {self.provider!r}: cannot load AWS credentials: {type(exc).__name__}"
            ) from exc
        if creds is None:
            raise ConfigError(
                f"provider {self.provider!r}: no AWS credentials found (environment, profile, "
                "SSO, container or instance role); or set api_key to a Bedrock API key"
            )
        return creds


def _static_credentials(bc: Any, provider: str, options: Mapping[str, Any]) -> Any:
    key_id = options.get("aws_access_key_id")
    secret = options.get("aws_secret_access_key")
    if not key_id and not secret:
        return None
    if not key_id or not secret:
        raise ConfigError(
            f"provider {provider!r}: aws_access_key_id and aws_secret_access_key go together"
        )
    return bc.credentials.Credentials(
        str(key_id), str(secret), options.get("aws_session_token") or None
    )


class EventStreamDecoder:
    """Bytes in any chunking -> whole event-stream messages, by botocore's parser.

    `pending` says whether a message was cut short, which a clean end of the
    body must not leave behind.
    """

    def __init__(self, provider: str) -> None:
        bc = botocore_module(provider, "ConverseStream")
        self._buffer = bc.eventstream.EventStreamBuffer()
        self._parser_error: type[Exception] = bc.eventstream.ParserError
        self._fed = 0
        self._parsed = 0

    def feed(self, data: bytes) -> Iterator[Any]:
        self._buffer.add_data(data)
        self._fed += len(data)
        try:
            for message in self._buffer:
                self._parsed += message.prelude.total_length
                yield message
        except self._parser_error as exc:
            raise UpstreamUnavailable(
                f"the Bedrock event stream is corrupt: {type(exc).__name__}"
            ) from exc

    @property
    def pending(self) -> bool:
        return self._fed > self._parsed
