"""The LLM endpoints: one raw ASGI handler per (protocol, operation).

Each handler reads and checks the body, runs the request path, and writes the
reply or the stream in the client's protocol. Errors before the response
starts become an error body with the right status; errors after a stream
started become the stream's own error event, then the stream ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
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
from aicp.errors import (
    AicpError,
    GuardrailBlocked,
    InvalidRequest,
    ReceiptNotRecorded,
    UpstreamUnavailable,
)
from aicp.plane.announce import emit_for
from aicp.plane.exchange import Exchange
from aicp.plane.outcome import outcome
from aicp.plane.simulate import simulate
from aicp.protocol.jsonutil import Json, dumps
from aicp.protocol.validate import parse_json
from aicp.providers.base import ANTHROPIC, OPENAI, RESPONSES, Reply, Stream
from aicp.receipts.build import body_hash

if TYPE_CHECKING:
    from aicp.state import AppState

log = logging.getLogger("aicp.gateway")

Validator = Callable[[Json], None]
Handler = Callable[[Scope, Receive, Send], Awaitable[None]]


#: Values of `x-aicp-mode`.
MODES = ("live", "simulate", "offline")


def requested_modes(headers: dict[str, str]) -> frozenset[str]:
    """`x-aicp-mode`: one mode, or `simulate, offline` for a simulation of offline mode."""
    value = headers.get("x-aicp-mode")
    if value is None:
        return frozenset()
    modes = frozenset(part.strip().lower() for part in value.split(","))
    if not modes <= set(MODES) or ("live" in modes and len(modes) > 1):
        raise InvalidRequest(
            f"x-aicp-mode must be one of {', '.join(MODES)} (or 'simulate, offline'), "
            f"not {value[:40]!r}",
            param="x-aicp-mode",
            code="invalid_mode",
        )
    return modes


#: The ASGI scope key of an in-process caller (api/inprocess.py: `Caller`).
IN_PROCESS = "aicp.in_process"


class Endpoint:
    def __init__(
        self,
        state: AppState,
        protocol: str,
        operation: str,
        validate: Validator,
        *,
        simulate_only: bool = False,
    ) -> None:
        self.state = state
        self.protocol = protocol
        self.operation = operation
        self.validate = validate
        self.keep_bodies = state.settings.receipts.bodies != "none"
        #: POST /v1/route/simulate: every request is a simulation.
        self.simulate_only = simulate_only

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = header_dict(scope)
        state = self.state
        ex = Exchange(request_id(headers), self.protocol, self.operation, {}, headers)
        # In-process callers (api/inprocess.py) speak through the ASGI scope, which no
        # client can set: a replay's mark, a pipeline stage's labels and key.
        caller = scope.get(IN_PROCESS)
        if caller is not None:
            caller.mark(ex)
        try:
            ex.raw = raw = await read_body(receive, headers, state.settings.server.max_body_bytes)
            body = parse_json(raw)
            self.validate(body)
            ex.body = body
            ex.stream = body.get("stream") is True and self.operation == "chat"
            modes = requested_modes(headers)
            if "offline" in modes or state.settings.mode == "offline":
                ex.offline = True
                ex.mode = "offline"
            if self.simulate_only or "simulate" in modes:
                await self._simulate(ex, send)
                return
            await state.path.run(ex)
        except AicpError as err:
            await self._fail(send, err, ex)
            return
        except Exception:
            log.exception("request %s failed inside the gateway", ex.id)
            await self._fail(send, AicpError("internal error in the gateway"), ex)
            return
        if ex.upstream is not None:
            await self._stream(ex, ex.upstream, receive, send)
        else:
            assert ex.reply is not None
            await self._reply(ex, ex.reply, send)

    async def _finish(self, ex: Exchange) -> None:
        """The response stages, then the receipt's commit: only after both may the
        response complete (receipts.durable), so a client that holds a whole
        response can count on its receipt."""
        state = self.state
        try:
            await state.path.finish(ex)
        except Exception:
            log.exception("request %s: a response stage failed", ex.id)
        if ex.durable is not None and state.settings.receipts.durable:
            try:
                await ex.durable
            except Exception:
                log.error("request %s: its receipt %s was not recorded", ex.id, ex.receipt_id)
                raise ReceiptNotRecorded(
                    "the request's receipt could not be recorded; the response is withheld"
                ) from None
        kind = "llm.request.failed" if ex.error is not None else "llm.request.completed"
        if state.events.wants(kind):
            emit_for(state.events, kind, ex, outcome(ex))

    async def _simulate(self, ex: Exchange, send: Send) -> None:
        """Every stage but execute; the answer is the decision record (api/simulate.py)."""
        from aicp.api.simulate import decision_record

        try:
            await simulate(self.state.path, ex)
        except ReceiptNotRecorded as err:
            # The response stages ran already: answer without running them again.
            headers = [JSON_TYPE, *self._headers(ex, err.headers)]
            await send_bytes(send, err.status, error_body(err, self.protocol), headers)
            return
        payload = dumps(decision_record(self.state, ex))
        await send_bytes(send, 200, payload, [JSON_TYPE, *self._headers(ex, ex.response_headers)])

    def _headers(self, ex: Exchange, more: dict[str, str]) -> list[tuple[bytes, bytes]]:
        out = extra_headers(ex.id, more)
        out.append((b"x-aicp-receipt-id", ex.receipt_id.encode()))
        return out

    async def _fail(self, send: Send, err: AicpError, ex: Exchange) -> None:
        ex.error = err
        ex.status = err.status
        payload = error_body(err, self.protocol)
        self._keep(ex, payload)
        # The response stages run for failures too: a reservation taken before the
        # failure (a budget, a token allowance) is released, and the failure recorded.
        # Without its receipt the client still gets its error.
        with contextlib.suppress(ReceiptNotRecorded):
            await self._finish(ex)
        more = {**ex.response_headers, **err.headers}
        await send_bytes(send, err.status, payload, [JSON_TYPE, *self._headers(ex, more)])

    def _keep(self, ex: Exchange, payload: bytes) -> None:
        ex.response_hash = body_hash(payload)
        if self.keep_bodies:
            ex.response_body = payload

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
        self._keep(ex, payload)
        try:
            await self._finish(ex)
        except ReceiptNotRecorded as err:
            headers = [JSON_TYPE, *self._headers(ex, err.headers)]
            await send_bytes(send, err.status, error_body(err, self.protocol), headers)
            return
        headers = [JSON_TYPE, *self._headers(ex, ex.response_headers)]
        await send_bytes(send, 200, payload, headers)

    async def _stream(self, ex: Exchange, upstream: Stream, receive: Receive, send: Send) -> None:
        encoder = None if upstream.passthrough else _encoder(ex)
        encode = None if encoder is None else encoder.feed
        # A translated stream's end is `encoder.close()`, written by us after the commit;
        # a pass-through stream's is the upstream's own terminal event, held back here.
        hold = _Terminal(ex.protocol) if encoder is None else None
        close = b""
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [*SSE_HEADERS, *self._headers(ex, ex.response_headers)],
            }
        )
        gone = asyncio.Event()
        watcher = asyncio.create_task(_watch_disconnect(receive, gone))
        failed: bool | None = False  # None: no verdict (the client left)
        sent = 0
        digest = hashlib.sha256()
        # The bytes are kept for the receipt's bodies, and for the cache (memory/stages.py).
        kept: list[bytes] | None = [] if self.keep_bodies or ex.cache_write else None
        try:
            first = ex.first
            if first is not None:
                data = _enc(first, encode)
                sent += len(data)
                if hold is not None:
                    data = hold.feed(data)
                digest.update(data)
                if kept is not None:
                    kept.append(data)
                ex.first_byte_at = time.perf_counter()
                await send({"type": "http.response.body", "body": data, "more_body": True})
            assert ex.chunks is not None
            async for item in ex.chunks:
                if gone.is_set():
                    break
                data = _enc(item, encode)
                sent += len(data)
                if hold is not None:
                    data = hold.feed(data)
                    if not data:
                        continue
                digest.update(data)
                if kept is not None:
                    kept.append(data)
                if ex.first_byte_at is None:
                    ex.first_byte_at = time.perf_counter()
                await send({"type": "http.response.body", "body": data, "more_body": True})
            else:
                if encoder is not None:
                    close = encoder.close()
        except GuardrailBlocked as err:
            # The gateway's own decision (guardrails/output.py): the upstream did nothing
            # wrong, so its breaker hears a success; the receipt carries the error.
            close = stream_error_event(err, ex.protocol, _next_sequence(encoder))
            ex.error = err
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
        if failed:
            ex.status = 502
        if hold is not None:
            close = hold.held + close
        digest.update(close)
        ex.response_hash = "sha256:" + digest.hexdigest()
        if kept is not None:
            kept.append(close)
            ex.response_body = b"".join(kept)
        try:
            await self._finish(ex)
        except ReceiptNotRecorded as err:
            # Headers are gone: the stream ends with an error event instead of its close.
            close = stream_error_event(err, ex.protocol, _next_sequence(encoder))
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


#: The event that ends a stream, by protocol: a pass-through stream's is held back
#: until the receipt is committed, as the close of a translated stream is.
TERMINAL = {
    OPENAI: b"data: [DONE]",
    ANTHROPIC: b"event: message_stop",
    RESPONSES: b"event: response.completed",
}


class _Terminal:
    """Splits a pass-through stream before its terminal event.

    `feed` returns what may go to the client now; from the terminal event on,
    everything is `held`. A chunk that ends in what could be the start of the
    terminal event (a marker split across network reads) keeps that tail back
    too; it is the beginning of a line the client could not parse yet anyway.
    """

    __slots__ = ("held", "marker")

    def __init__(self, protocol: str) -> None:
        self.marker = TERMINAL.get(protocol, b"")
        self.held = b""

    def feed(self, data: bytes) -> bytes:
        marker = self.marker
        if not marker:
            return data
        if self.held:
            data = self.held + data
            self.held = b""
        at = data.find(marker)
        if at >= 0:
            self.held = data[at:]
            return data[:at]
        for k in range(min(len(marker) - 1, len(data)), 0, -1):
            if data.endswith(marker[:k]):
                self.held = data[-k:]
                return data[:-k]
        return data
