"""The HTTP client every provider receives: one pooled aiohttp session.

aiohttp, not httpx: in ../shared/bench a minimal proxy reached ~6,000 req/s
with aiohttp's client and ~570 with httpx's (docs/decisions.md).
Upstream failures become the typed errors of `aicp.errors`; their messages
carry the upstream's error text but never our request headers (credentials).
"""

from __future__ import annotations

import asyncio
import email.utils
import time
from collections.abc import AsyncIterator, Callable
from typing import Any, Protocol
from urllib.parse import parse_qsl, urlsplit

import aiohttp

from aicp.errors import UpstreamStatusError, UpstreamTimeout, UpstreamUnavailable
from aicp.protocol import sse
from aicp.protocol.jsonutil import Json, dumps, loads
from aicp.providers.base import OPENAI, Timeouts, Usage


class HttpClient:
    """Keep-alive connection pools for all upstreams, created once per app."""

    def __init__(self, *, limit_per_host: int = 0, resolver: Any = None) -> None:
        connector = aiohttp.TCPConnector(
            limit=0,
            limit_per_host=limit_per_host,
            ttl_dns_cache=300,
            enable_cleanup_closed=False,
            resolver=resolver,
        )
        self.session = aiohttp.ClientSession(
            connector=connector,
            auto_decompress=True,
            skip_auto_headers=("User-Agent",),
            json_serialize=lambda o: dumps(o).decode(),
            timeout=aiohttp.ClientTimeout(total=None),
        )

    async def aclose(self) -> None:
        await self.session.close()

    async def request(
        self,
        method: str,
        url: str,
        *,
        body: bytes | None,
        headers: dict[str, str],
        timeouts: Timeouts,
    ) -> aiohttp.ClientResponse:
        """Send and wait for the response head; raise typed errors for failures."""
        timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=timeouts.connect, connect=timeouts.connect
        )
        try:
            async with asyncio.timeout(timeouts.first_byte):
                resp = await self.session.request(
                    method, url, data=body, headers=headers, timeout=timeout
                )
        except aiohttp.ServerTimeoutError as exc:
            # Before TimeoutError: aiohttp's connect timeout is a subclass of it.
            raise UpstreamTimeout(
                f"timed out connecting to the upstream after {timeouts.connect:g}s", code="connect"
            ) from exc
        except TimeoutError as exc:
            raise UpstreamTimeout(
                f"upstream gave no response within {timeouts.first_byte:g}s", code="first_byte"
            ) from exc
        except (aiohttp.ClientConnectionError, OSError) as exc:
            raise UpstreamUnavailable(
                f"cannot reach the upstream: {type(exc).__name__}", code="connect_error"
            ) from exc
        if resp.status >= 400:
            try:
                async with asyncio.timeout(timeouts.idle):
                    data = await resp.read()
            except (TimeoutError, aiohttp.ClientError):
                data = b""
            finally:
                resp.release()
            # Some upstreams quote the key they rejected; it must not reach our client.
            for secret in _credentials(url, headers):
                data = data.replace(secret.encode(), b"[redacted]")
            raise status_error(resp.status, data, resp.headers)
        return resp

    async def read_json(
        self, resp: aiohttp.ClientResponse, timeouts: Timeouts, source: str = "upstream"
    ) -> tuple[bytes, Json]:
        """Read a response body that must be a JSON object; release the connection.

        Returns the raw bytes (for pass-through) and the parsed object; `source`
        names the upstream in the error when the body is not one.
        """
        try:
            async with asyncio.timeout(timeouts.idle):
                raw = await resp.read()
        except TimeoutError as exc:
            raise UpstreamTimeout("upstream stalled while sending its body", code="idle") from exc
        except aiohttp.ClientError as exc:
            raise UpstreamUnavailable(f"upstream connection failed: {type(exc).__name__}") from exc
        finally:
            resp.release()
        try:
            data = loads(raw)
        except ValueError as exc:
            raise UpstreamUnavailable(f"{source} answered with invalid JSON") from exc
        if not isinstance(data, dict):
            raise UpstreamUnavailable(f"{source} answered with JSON that is not an object")
        return raw, data

    async def post_json(
        self, url: str, body: Json, headers: dict[str, str], timeouts: Timeouts
    ) -> tuple[bytes, Json]:
        """POST a JSON body, return the raw answer and its parsed form."""
        resp = await self.request("POST", url, body=dumps(body), headers=headers, timeouts=timeouts)
        return await self.read_json(resp, timeouts)

    async def get_json(self, url: str, headers: dict[str, str], timeouts: Timeouts) -> Json:
        resp = await self.request("GET", url, body=None, headers=headers, timeouts=timeouts)
        _, data = await self.read_json(resp, timeouts)
        return data

    async def model_ids(self, url: str, headers: dict[str, str], source: str) -> list[str]:
        """The ids of an OpenAI-style model list, `{"data": [{"id": ...}, ...]}`.

        OpenAI, every OpenAI-compatible server and Anthropic answer in this shape.
        """
        data = await self.get_json(url, headers, DISCOVERY_TIMEOUTS)
        items = data.get("data")
        if not isinstance(items, list):
            raise UpstreamUnavailable(f"{source} answered no list")
        return [str(m["id"]) for m in items if isinstance(m, dict) and "id" in m]


#: Model discovery runs during start-up, which a slow upstream must not hold up for long.
DISCOVERY_TIMEOUTS = Timeouts(connect=3.0, first_byte=5.0, idle=5.0)

#: Request headers and query parameters whose values are credentials.
_SECRET_HEADERS = frozenset(
    {
        "authorization",
        "proxy-authorization",
        "x-api-key",
        "api-key",
        "x-goog-api-key",
        "x-amz-security-token",  # an AWS session token, sent beside the SigV4 signature
    }
)
_SECRET_PARAMS = frozenset({"key", "api_key", "api-key", "access_token"})


def _credentials(url: str, headers: dict[str, str]) -> list[str]:
    found = [
        value.rpartition(" ")[2]
        for name, value in headers.items()
        if name.lower() in _SECRET_HEADERS
    ]
    found.extend(v for k, v in parse_qsl(urlsplit(url).query) if k.lower() in _SECRET_PARAMS)
    return [f for f in found if len(f) >= 8]  # too short to be a key, too common to blank out


def status_error(status: int, body: bytes, headers: Any) -> UpstreamStatusError:
    """An upstream error status as a typed error, with the upstream's message."""
    message = _error_message(body) or f"upstream returned HTTP {status}"
    return UpstreamStatusError(
        message, status=status, body=body[:4096], retry_after=retry_after(headers)
    )


def _error_message(body: bytes) -> str | None:
    try:
        data = loads(body)
    except ValueError:
        text = body[:300].decode("utf-8", "replace").strip()
        return text or None
    if isinstance(data, list) and data:
        data = data[0]
    if not isinstance(data, dict):
        return None
    err = data.get("error", data)
    if isinstance(err, dict):
        msg = err.get("message") or err.get("Message")
        return str(msg) if msg else None
    if isinstance(err, str):
        return err
    msg = data.get("message") or data.get("Message")
    return str(msg) if msg else None


def retry_after(headers: Any) -> float | None:
    """Seconds from `retry-after-ms` (OpenAI, Anthropic) or `Retry-After` (RFC 9110)."""
    if headers is None:
        return None
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            return max(0.0, float(ms) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


class ByteStream:
    """Upstream body chunks with an idle-gap timeout; optional per-chunk tap."""

    __slots__ = ("_it", "_resp", "_tap", "idle", "passthrough", "protocol", "usage")

    def __init__(
        self,
        resp: aiohttp.ClientResponse,
        protocol: str,
        idle: float,
        tap: Callable[[bytes], None] | None = None,
    ) -> None:
        self._resp = resp
        self.protocol = protocol
        self.passthrough = True
        self.idle = idle
        self.usage = Usage()
        self._tap = tap
        self._it = resp.content.iter_any().__aiter__()

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._gen()

    async def _gen(self) -> AsyncIterator[bytes]:
        loop = asyncio.get_running_loop()
        tap = self._tap
        it = self._it
        try:
            async with asyncio.timeout(self.idle) as cm:
                while True:
                    try:
                        chunk = await it.__anext__()
                    except StopAsyncIteration:
                        return
                    if tap is not None:
                        tap(chunk)
                    # The idle clock measures the upstream, not our client: pause it.
                    cm.reschedule(None)
                    yield chunk
                    cm.reschedule(loop.time() + self.idle)
        except TimeoutError as exc:
            raise UpstreamTimeout(
                f"upstream stream idle for more than {self.idle:g}s", code="idle"
            ) from exc
        except aiohttp.ClientPayloadError as exc:
            raise UpstreamUnavailable("upstream closed the stream early") from exc
        except aiohttp.ClientError as exc:
            raise UpstreamUnavailable(f"upstream stream failed: {type(exc).__name__}") from exc

    async def aclose(self) -> None:
        self._resp.release()


class DataLineTap:
    """Watches a pass-through SSE stream for `data:` lines that mention usage.

    Only complete lines containing `"usage"` are handed to `_line`, so the
    stream is not parsed event by event; a subclass reads the usage out of them
    and updates `usage` in place, since the stream holds on to that very object.
    """

    __slots__ = ("_partial", "usage")

    #: The longest line kept while it is incomplete (a longer one loses its head).
    max_line = 65536

    def __init__(self) -> None:
        self.usage = Usage()
        self._partial = b""

    def feed(self, chunk: bytes) -> None:
        if self._partial:
            chunk = self._partial + chunk
        cut = chunk.rfind(b"\n") + 1
        self._partial = chunk[cut:][-self.max_line :]
        if b'"usage"' not in chunk[:cut]:
            return
        for line in chunk[:cut].split(b"\n"):
            if line.startswith(b"data:") and b'"usage"' in line:
                self._line(line[5:])

    def _line(self, payload: bytes) -> None:
        raise NotImplementedError


class Translator(Protocol):
    """Turns upstream SSE events into canonical chunks; tracks usage."""

    usage: Usage

    def feed(self, event: sse.Event) -> list[Json]: ...

    def close(self) -> list[Json]: ...


class TranslatedStream:
    """An upstream SSE stream re-expressed as canonical OpenAI chunks."""

    __slots__ = ("_inner", "_translator", "passthrough", "protocol")

    def __init__(self, inner: ByteStream, translator: Translator) -> None:
        self._inner = inner
        self._translator = translator
        self.protocol = OPENAI
        self.passthrough = False

    @property
    def usage(self) -> Usage:
        return self._translator.usage

    def __aiter__(self) -> AsyncIterator[Json]:
        return self._gen()

    async def _gen(self) -> AsyncIterator[Json]:
        decoder = sse.Decoder()
        feed = self._translator.feed
        async for raw in self._inner:
            for event in decoder.feed(raw):
                for chunk in feed(event):
                    yield chunk
        for event in decoder.flush():
            for chunk in feed(event):
                yield chunk
        for chunk in self._translator.close():
            yield chunk

    async def aclose(self) -> None:
        await self._inner.aclose()
