"""The event bus: producers emit typed events and never know who listens.

Every stage of the request path, the breakers, the budgets and the admin API
emit here; logs, metrics, the WebSocket stream and the Redis fan-out are
subscribers. A subscriber is a plain callable that must not block: it runs
inside `emit`, on the producer's task. One that raises is logged (once per
subscriber) and skipped, so a consumer can never fail a request.

A subscriber may name the types it wants; `emit` and `wants(type)` cost one
dict lookup, so producers check `wants` before they build a payload, and no
payload is built for a type nobody consumes (the default metrics and request
log want a handful; the WebSocket stream and the Redis fan-out want all).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger("aicp.events")

#: The taxonomy (docs/events.md): type -> what it means. `emit` refuses other types,
#: so a typo in a producer fails its tests instead of silently emitting nothing useful.
EVENT_TYPES: dict[str, str] = {
    "llm.request.started": "a request was authenticated and entered the path",
    "llm.request.completed": "a request was answered (its receipt is committed)",
    "llm.request.failed": "a request ended with an error sent to the client",
    "route.decided": "the route stage chose a target and its fallback chain",
    "route.fallback": "execute moved on to the next deployment of the chain",
    "route.retry": "execute retried a deployment after a retryable failure",
    "policy.denied": "policy forbade every route of a request",
    "policy.override": "an admin forced a route or bypassed a policy",
    "guardrail.triggered": "a guardrail flagged, redacted or blocked content",
    "breaker.opened": "a deployment's circuit breaker opened",
    "breaker.half_open": "an open breaker lets probes through",
    "breaker.closed": "a deployment's circuit breaker closed again",
    "budget.soft_limit": "spend reached a budget's soft limit",
    "budget.exceeded": "a request was refused by a hard budget limit",
    "ratelimit.exceeded": "a request was refused by an RPM or TPM limit",
    "key.created": "a virtual key was created",
    "key.updated": "a virtual key was changed",
    "key.rotated": "a virtual key was rotated",
    "key.revoked": "a virtual key was revoked",
    "receipt.checkpoint": "a signed checkpoint of the receipt log was issued",
    "config.reloaded": "configuration or policy files were reloaded",
    "cache.hit": "the recall stage answered a request from the cache",
    "compression.applied": "the compress stage sent fewer tokens than the client did",
    "memory.added": "a project or global memory entry (or a new version of one) was stored",
    "feedback.received": "a client scored the answer of a receipt",
    "pipeline.run.started": "a pipeline run started (or was resumed after a restart)",
    "pipeline.run.completed": "a pipeline run finished with every stage done",
    "pipeline.run.failed": "a pipeline run stopped on a failed stage or gate",
    "pipeline.run.cancelled": "a pipeline run was cancelled",
    "pipeline.run.paused": "a pipeline run was paused",
    "pipeline.run.resumed": "a paused pipeline run was resumed",
    "pipeline.run.waiting_approval": "a pipeline run waits for a human decision",
    "pipeline.stage.started": "a pipeline stage started an attempt",
    "pipeline.stage.completed": "a pipeline stage finished and its result was checkpointed",
    "pipeline.stage.failed": "a pipeline stage failed for good",
    "pipeline.stage.retry": "a pipeline stage attempt failed and will be retried",
    "pipeline.approval.decided": "an approval was decided, or took its default on timeout",
    "registry.promoted": "a registered model version became production; its alias moved",
    "registry.rolled_back": "production went back to the previous version; its alias moved",
    "registry.registered": "a model version was registered",
}


@dataclass(slots=True)
class Event:
    """One event. Not frozen: a frozen dataclass costs ~1.9 us to build, a plain one
    ~0.3 us, and every request builds several; consumers must not mutate events."""

    type: str
    #: UTC epoch seconds.
    time: float
    data: dict[str, Any] = field(default_factory=dict)
    #: What WebSocket filters and authorization look at.
    request_id: str | None = None
    key_id: str | None = None
    team_id: str | None = None
    model: str | None = None
    #: The process that emitted it (the Redis fan-out skips its own events).
    origin: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "time": self.time,
            "request_id": self.request_id,
            "key_id": self.key_id,
            "team_id": self.team_id,
            "model": self.model,
            "origin": self.origin,
            "data": self.data,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Event:
        return cls(
            type=str(d["type"]),
            time=float(d["time"]),
            data=dict(d.get("data") or {}),
            request_id=d.get("request_id"),
            key_id=d.get("key_id"),
            team_id=d.get("team_id"),
            model=d.get("model"),
            origin=str(d.get("origin") or ""),
        )


Subscriber = Callable[[Event], None]


def new_origin() -> str:
    """A name for one emitter or writer in this process (host, pid, a random suffix: two
    gateways in one process stay apart), short enough for a 64-character column."""
    return f"{os.uname().nodename[:40]}:{os.getpid()}:{os.urandom(3).hex()}"


class EventBus:
    """In-process publish/subscribe; `remote` subscribers also hear other processes."""

    def __init__(self, origin: str | None = None, clock: Callable[[], float] = time.time) -> None:
        self.origin = origin or new_origin()
        self.clock = clock
        #: (subscriber, the types it wants or None for all)
        self._local: list[tuple[Subscriber, frozenset[str] | None]] = []
        self._remote: list[Subscriber] = []
        #: Subscribers per type, made on first use and dropped on every (un)subscribe.
        self._by_type: dict[str, tuple[Subscriber, ...]] = {}
        self._broken: set[int] = set()

    def subscribe(
        self, fn: Subscriber, *, remote: bool = False, types: Collection[str] | None = None
    ) -> Callable[[], None]:
        """Call `fn` for every event emitted here of `types` (default: all), and, with
        `remote`, for every event fanned in from other processes. Returns the function
        that unsubscribes."""
        wanted = None if types is None else frozenset(types)
        unknown = (wanted or frozenset()) - EVENT_TYPES.keys()
        if unknown:
            raise ValueError(f"unknown event types {sorted(unknown)}")
        entry = (fn, wanted)
        self._local.append(entry)
        if remote:
            self._remote.append(fn)
        self._by_type.clear()

        def unsubscribe() -> None:
            if entry in self._local:
                self._local.remove(entry)
            if fn in self._remote:
                self._remote.remove(fn)
            self._by_type.clear()

        return unsubscribe

    def _for(self, type: str) -> tuple[Subscriber, ...]:
        subs = self._by_type.get(type)
        if subs is None:
            subs = tuple(fn for fn, wanted in self._local if wanted is None or type in wanted)
            self._by_type[type] = subs
        return subs

    def wants(self, type: str) -> bool:
        """Does anyone consume `type`? Producers ask before they build its payload."""
        return bool(self._for(type))

    def emit(
        self,
        type: str,
        data: dict[str, Any] | None = None,
        *,
        request_id: str | None = None,
        key_id: str | None = None,
        team_id: str | None = None,
        model: str | None = None,
    ) -> None:
        if type not in EVENT_TYPES:
            raise ValueError(f"unknown event type {type!r} (add it to EVENT_TYPES)")
        subs = self._for(type)
        if not subs:
            return
        event = Event(
            type, self.clock(), data or {}, request_id, key_id, team_id, model, self.origin
        )
        self._dispatch(subs, event)

    def deliver_remote(self, event: Event) -> None:
        """An event from another process (the Redis fan-out): remote subscribers only,
        so that counters such as metrics never count it twice."""
        if event.origin != self.origin:
            self._dispatch(self._remote, event)

    def _dispatch(self, subs: Collection[Subscriber], event: Event) -> None:
        for fn in tuple(subs):
            try:
                fn(event)
            except Exception:
                if id(fn) not in self._broken:
                    self._broken.add(id(fn))
                    log.exception("event subscriber %r failed; later failures are silent", fn)
