"""A fake LLM upstream on a real loopback server, with fault injection.

Each wire format registers its routes from its own module (`fake_openai`,
`fake_responses`, `fake_anthropic`, `fake_gemini`, `fake_bedrock`). Every request is recorded
(`requests`), and `fault(...)` queues a misbehaviour for the next matching
requests: an error status with Retry-After, a delay before the headers, a
stall between stream chunks, or a connection cut after N chunks.
"""

from __future__ import annotations

import asyncio
import importlib
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from aiohttp import web

_ROUTE_MODULES = (
    "aicp.testing.fake_openai",
    "aicp.testing.fake_responses",
    "aicp.testing.fake_anthropic",
    "aicp.testing.fake_gemini",
    "aicp.testing.fake_bedrock",
)


@dataclass
class Fault:
    #: Answer with this status (and an error body in the route's format).
    status: int | None = None
    retry_after: float | None = None
    retry_after_ms: float | None = None
    #: Wait this long before sending the response head.
    delay_s: float = 0.0
    #: Wait this long before each stream chunk after the first.
    stall_s: float = 0.0
    #: Close the connection abruptly after this many stream chunks.
    cut_after: int | None = None
    #: Apply only to requests whose path contains this.
    path: str | None = None
    times: int = 1
    message: str = "injected fault"


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any


@dataclass
class FakeUpstream:
    """Start with `with FakeUpstream() as up:` (a thread) or `await up.start()`."""

    reply: str = "Hello from the fake upstream"
    chunks: int = 4
    embedding_dim: int = 8
    models: list[str] = field(default_factory=lambda: ["fake-model", "fake-model-2"])
    requests: list[Recorded] = field(default_factory=list)
    #: Makes each OpenAI chat reply's text from the request body (None: `reply`), for
    #: tests whose answers must depend on the question (a judge, a RAG answer).
    respond: Callable[[Any], str] | None = None
    #: Called with each request that no queued fault matches; the fault it returns
    #: (None: none) applies to that request. None (the default): only queued faults.
    chaos: Callable[[Recorded], Fault | None] | None = None
    _faults: deque[Fault] = field(default_factory=deque)
    _runner: web.AppRunner | None = None
    _thread: threading.Thread | None = None
    _loop: asyncio.AbstractEventLoop | None = None
    port: int = 0

    # --- faults -------------------------------------------------------------

    def fault(self, **kwargs: Any) -> Fault:
        f = Fault(**kwargs)
        self._faults.append(f)
        return f

    def clear_faults(self) -> None:
        self._faults.clear()

    def take_fault(self, path: str) -> Fault | None:
        for f in list(self._faults):
            if f.path is None or f.path in path:
                f.times -= 1
                if f.times <= 0:
                    self._faults.remove(f)
                return f
        return None

    def record(self, request: web.Request, body: Any) -> None:
        self.requests.append(
            Recorded(request.method, request.path, dict(request.query), dict(request.headers), body)
        )

    async def arrive(self, request: web.Request, body: Any) -> Fault | None:
        """Record a request, take the fault meant for it and wait out the fault's head delay."""
        self.record(request, body)
        fault = self.take_fault(request.path)
        if fault is None and self.chaos is not None:
            fault = self.chaos(self.requests[-1])
        await apply_fault_head(fault)
        return fault

    # --- lifecycle ----------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def make_app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        for name in _ROUTE_MODULES:
            importlib.import_module(name).register(app, self)
        return app

    async def start(self) -> str:
        self._runner = web.AppRunner(self.make_app(), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port)
        await site.start()
        server = site._server
        sockets = getattr(server, "sockets", None)
        assert sockets, "the fake upstream is not listening"
        self.port = sockets[0].getsockname()[1]
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def __enter__(self) -> FakeUpstream:
        started = threading.Event()

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            loop.run_until_complete(self.start())
            started.set()
            loop.run_forever()
            loop.run_until_complete(self.stop())
            loop.close()

        self._thread = threading.Thread(target=run, name="fake-upstream", daemon=True)
        self._thread.start()
        if not started.wait(10):
            raise RuntimeError("fake upstream did not start")
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)


async def apply_fault_head(fault: Fault | None) -> None:
    if fault is not None and fault.delay_s:
        await asyncio.sleep(fault.delay_s)


def retry_headers(fault: Fault) -> dict[str, str]:
    headers = {}
    if fault.retry_after is not None:
        headers["retry-after"] = f"{fault.retry_after:g}"
    if fault.retry_after_ms is not None:
        headers["retry-after-ms"] = f"{fault.retry_after_ms:g}"
    return headers


async def send_chunks(
    request: web.Request,
    chunks: list[bytes],
    fault: Fault | None,
    content_type: str = "text/event-stream",
) -> web.StreamResponse:
    """Write a stream chunk by chunk, honouring stall and cut faults."""
    resp = web.StreamResponse(headers={"content-type": content_type})
    await resp.prepare(request)
    for i, chunk in enumerate(chunks):
        if fault is not None:
            if fault.cut_after is not None and i >= fault.cut_after:
                assert request.transport is not None
                request.transport.abort()  # the upstream dies mid-stream
                return resp
            if fault.stall_s and i > 0:
                await asyncio.sleep(fault.stall_s)
        await resp.write(chunk)
    await resp.write_eof()
    return resp
