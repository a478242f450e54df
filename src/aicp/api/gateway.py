"""The LLM endpoints: one raw ASGI handler per (protocol, operation).

Each handler reads and checks the body, runs the request path, and writes the
reply or the stream in the client's protocol. Errors before the response
starts become an error body with the right status; errors after a stream
started become the stream's own error event, then the stream ends.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Protocol

from aicp.api.asgi import (
    JSON_TYPE,
    SSE_HEADERS,
    Receive,
    Scope,
    Send,
    extra_headers,
    header_dict,
    read_body,
    request_id,
    send_bytes,
)
from aicp.api.errors import error_body, stream_error_event
from aicp.errors import AicpError, UpstreamUnavailable
from aicp.plane.exchange import Exchange
from aicp.protocol.jsonutil import Json, dumps
from aicp.protocol.validate import parse_json
from aicp.providers.base import ANTHROPIC, OPENAI, RESPONSES, Reply, Stream

if TYPE_CHECKING:
    from aicp.state import AppState

log = logging.getLogger("aicp.gateway")

Validator = Callable[[Json], None]
Handler = Callable[[Scope, Receive, Send], Awaitable[None]]


class Endpoint:
    def __init__(self, state: AppState, protocol: str, operation: str, validate: Validator) -> None:
        self.state = state
        self.protocol = protocol
        self.operation = operation
        self.validate = validate

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = header_dict(scope)
        rid = request_id(headers)
        state = self.state
        ex: Exchange | None = None
        try:
            raw = await read_body(receive, headers, state.settings.server.max_body_bytes)
            body = parse_json(raw)
            self.validate(body)
            stream = body.get("stream") is True and self.operation == "chat"
            ex = Exchange(rid, self.protocol, self.operation, body, headers, stream)
            await state.path.run(ex)
        except AicpError as err:
            await self._fail(send, rid, err, ex)
            return
        except Exception:
            log.exception("request %s failed inside the gateway", rid)
            await self._fail(send, rid, AicpError("internal error in the gateway"), ex)
            return
        if ex.upstream is not None:
            await self._stream(ex, ex.upstream, receive, send)
        else:
            assert ex.reply is not None
            await self._reply(ex, ex.reply, send)
        await state.path.finish(ex)

    async def _fail(self, send: Send, rid: str, err: AicpError, ex: Exchange | None) -> None:
        more = err.headers if ex is None else {**ex.response_headers, **err.headers}
        headers = [JSON_TYPE, *extra_headers(rid, more)]
        await send_bytes(send, err.status, error_body(err, self.protocol), headers)
        if ex is not None:
            # The response stages still run: a reservation taken before the failure
            # (a budget, a token allowance) must be released, and the failure recorded.
            ex.error = err
            await self.state.path.finish(ex)

    async def _reply(self, ex: Exchange, reply: Reply, send: Send) -> None:
        ex.usage = reply.usage
        if reply.protocol == ex.protocol:
            payload = reply.raw if reply.raw is not None else dumps(reply.data)
        elif ex.protocol == ANTHROPIC:
            from aicp.protocol.anthropic import completion_to_message

            payload = dumps(completion_to_message(reply.data, ex.model))
        elif ex.protocol == RESPONSES:
            from aicp.protocol.responses import completion_to_response

            payload = dumps(completion_to_response(reply.data, ex.model, ex.body))
        else:
            raise AssertionError(f"cannot encode a {reply.protocol} reply for {ex.protocol}")
        headers = [JSON_TYPE, *extra_headers(ex.id, ex.response_headers)]
        await send_bytes(send, 200, payload, headers)

    async def _stream(self, ex: Exchange, upstream: Stream, receive: Receive, send: Send) -> None:
        encoder = None if upstream.passthrough else _encoder(ex)
        encode = None if encoder is None else encoder.feed
        close = b""
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [*SSE_HEADERS, *extra_headers(ex.id, ex.response_headers)],
            }
        )
        gone = asyncio.Event()
        watcher = asyncio.create_task(_watch_disconnect(receive, gone))
        failed: bool | None = False  # None: no verdict (the client left)
        sent = 0
        try:
            first = ex.first
            if first is not None:
                data = _enc(first, encode)
                sent += len(data)
                await send({"type": "http.response.body", "body": data, "more_body": True})
            assert ex.chunks is not None
            async for item in ex.chunks:
                if gone.is_set():
                    break
                data = _enc(item, encode)
                sent += len(data)
                await send({"type": "http.response.body", "body": data, "more_body": True})
            else:
                if encoder is not None:
                    close = encoder.close()
        except AicpError as err:
            close = stream_error_event(err, ex.protocol, _next_sequence(encoder))
            ex.trace.append(("execute", {"stream_error": err.message}))
            failed = True
        except Exception:
            log.exception("stream %s failed inside the gateway", ex.id)
            failure = UpstreamUnavailable("the stream failed inside the gateway")
            close = stream_error_event(failure, ex.protocol, _next_sequence(encoder))
        finally:
            watcher.cancel()
            await upstream.aclose()
        ex.usage = upstream.usage
        ex.streamed_bytes = sent
        ex.abandoned = gone.is_set()
        if gone.is_set() and not failed:
            failed = None
        if ex.served is not None and failed is not None:
            ex.served.health.breaker.record(not failed)
        if not gone.is_set():
            await send({"type": "http.response.body", "body": close, "more_body": False})


def _enc(item: bytes | Json, encode: Callable[[Json], bytes] | None) -> bytes:
    if isinstance(item, bytes):
        return item
    if encode is None:
        # A gateway bug, not the client's: a server error, not an invalid request.
        raise AicpError("internal: a translated chunk reached a pass-through stream")
    return encode(item)


class Encoder(Protocol):
    """Canonical chunks -> the client's SSE bytes."""

    def feed(self, chunk: Json) -> bytes: ...

    def close(self) -> bytes: ...


def _encoder(ex: Exchange) -> Encoder:
    if ex.protocol == OPENAI:
        from aicp.protocol.openai import ChunkEncoder

        return ChunkEncoder(ex.body)
    if ex.protocol == RESPONSES:
        from aicp.protocol.responses import StreamEncoder as ResponsesEncoder

        return ResponsesEncoder(ex.body)
    from aicp.protocol.anthropic import StreamEncoder

    encoder: Encoder = StreamEncoder(ex.body)
    return encoder


def _next_sequence(encoder: Encoder | None) -> int:
    """The number the error event continues with (Responses events are numbered)."""
    value = getattr(encoder, "sequence_number", 0)
    return value if isinstance(value, int) else 0


async def _watch_disconnect(receive: Receive, gone: asyncio.Event) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            gone.set()
            return
