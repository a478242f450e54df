"""Events across gateway processes, over one Redis pub/sub channel (docs/events.md).

Every event emitted in this process is published on the channel; every event
another process published is handed to this bus's remote subscribers (the
WebSocket stream), so a consumer connected to any process sees them all.
Counters such as metrics subscribe locally only and never count twice.

The producer's path never waits on Redis: a local subscriber puts the event
in a bounded queue that a task drains (a full queue drops and counts). When
Redis goes away, each side logs once, keeps retrying, and logs when it is back;
meanwhile the gateway serves as before and its events stay local.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

import orjson

from aicp.observability.events import Event, EventBus

if TYPE_CHECKING:
    from redis.asyncio import Redis

log = logging.getLogger("aicp.events")

CHANNEL = "aicp:events"
#: Events waiting to be published; beyond this they are dropped (and counted).
QUEUE_SIZE = 10_000
#: Events published per round trip.
BATCH = 256
RETRY_MIN_S, RETRY_MAX_S = 0.2, 5.0
#: How long stop() waits for queued events to go out.
FLUSH_S = 0.5


class RedisFanout:
    def __init__(
        self,
        bus: EventBus,
        redis: Redis,
        channel: str = CHANNEL,
        queue_size: int = QUEUE_SIZE,
    ) -> None:
        self.bus = bus
        self.redis = redis
        self.channel = channel
        self.queue: asyncio.Queue[Event] = asyncio.Queue(queue_size)
        self.published = 0
        self.received = 0
        #: Events that never left this process (queue full, or Redis unavailable).
        self.dropped = 0
        self._down: set[str] = set()
        self._tasks: list[asyncio.Task[None]] = []
        self._unsubscribe: Callable[[], None] | None = None

    def start(self) -> None:
        self._unsubscribe = self.bus.subscribe(self._forward)
        self._tasks = [
            asyncio.create_task(self._publish(), name="aicp-events-publish"),
            asyncio.create_task(self._listen(), name="aicp-events-listen"),
        ]

    async def stop(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        if not self._down:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(FLUSH_S):
                    await self.queue.join()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []

    # --- out ------------------------------------------------------------------------

    def _forward(self, event: Event) -> None:
        try:
            self.queue.put_nowait(event)
        except asyncio.QueueFull:
            self.dropped += 1
            if self.dropped == 1:
                log.warning(
                    "event fan-out: more than %d events waiting for Redis; dropping (counted "
                    "in the fan-out's `dropped`)",
                    self.queue.maxsize,
                )

    async def _publish(self) -> None:
        queue = self.queue
        delay = RETRY_MIN_S
        while True:
            batch = [await queue.get()]
            while len(batch) < BATCH and not queue.empty():
                batch.append(queue.get_nowait())
            try:
                await self._send(batch)
            except Exception as exc:
                self.dropped += len(batch)
                self._failed("publishing", exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, RETRY_MAX_S)
                continue
            finally:
                for _ in batch:
                    queue.task_done()
            self.published += len(batch)
            delay = RETRY_MIN_S
            self._back("publishing")

    async def _send(self, batch: list[Event]) -> None:
        async with self.redis.pipeline(transaction=False) as pipe:
            for event in batch:
                pipe.publish(self.channel, orjson.dumps(event.as_dict(), default=str))
            await pipe.execute()

    # --- in -------------------------------------------------------------------------

    async def _listen(self) -> None:
        delay = RETRY_MIN_S
        while True:
            pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self.channel)
                self._back("listening")
                delay = RETRY_MIN_S
                async for message in pubsub.listen():
                    if message.get("type") == "message":
                        self._deliver(message["data"])
            except Exception as exc:
                self._failed("listening", exc)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]  # untyped in redis-py
            await asyncio.sleep(delay)
            delay = min(delay * 2, RETRY_MAX_S)

    def _deliver(self, raw: bytes | str) -> None:
        try:
            event = Event.from_dict(orjson.loads(raw))
        except Exception:
            log.warning("event fan-out: skipped a malformed message on %s", self.channel)
            return
        if event.origin == self.bus.origin:
            return  # our own, already delivered here when it was emitted
        self.received += 1
        self.bus.deliver_remote(event)

    # --- health ---------------------------------------------------------------------

    def _failed(self, what: str, exc: Exception) -> None:
        if what not in self._down:
            self._down.add(what)
            log.warning(
                "event fan-out: Redis failed while %s (%s: %s); events stay in this process "
                "until it is back, retrying",
                what,
                type(exc).__name__,
                exc,
            )

    def _back(self, what: str) -> None:
        if what in self._down:
            self._down.discard(what)
            log.info("event fan-out: Redis is back (%s)", what)
