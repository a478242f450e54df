"""Stage 6, recall (the answer cache), and stage 12, learn (what a served answer leaves
behind: a cache entry, route memory).

A cached answer never crosses a policy boundary: an entry answers only a request
of the same requested model and sensitivity, within the configured isolation
(team, user or key), and only when the deployment that produced it is one this
request's policies allow (docs/caching.md). Requests whose input the guard
redacted are neither answered from nor written to the cache: their answer holds
placeholders that are only this caller's.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import orjson

from aicp.memory.answers import (
    CachedStream,
    cached_reply,
    completion_from_stream,
    completion_of,
)
from aicp.memory.cache import CacheEntry, CacheStore, new_entry_id
from aicp.memory.cache_key import exact_key
from aicp.memory.inject import add_memory, wanted
from aicp.memory.projects import MemoryStore
from aicp.memory.route_service import RouteService
from aicp.memory.semantic_layer import SemanticLayer
from aicp.memory.settings import CacheSettings, MemorySettings
from aicp.observability.events import EventBus

if TYPE_CHECKING:
    from aicp.memory.semantic import Evidence
from aicp.plane.announce import emit_for
from aicp.plane.exchange import Exchange
from aicp.routing.router import Router


def cache_modes(headers: dict[str, str]) -> tuple[bool, bool]:
    """(read, write) from `x-aicp-cache: off|read|write|on` and `cache-control`."""
    read = write = True
    asked = headers.get("x-aicp-cache")
    if asked:
        value = asked.strip().lower()
        read, write = value in ("on", "read", "read-write"), value in ("on", "write", "read-write")
    control = headers.get("cache-control")
    if control:
        words = {w.strip().lower() for w in control.split(",")}
        if "no-cache" in words:
            read = False
        if "no-store" in words:
            read = write = False
    return read, write


def _scope_ok(e: CacheEntry, ex: Exchange, isolation: str) -> bool:
    p = ex.principal
    if isolation == "team":
        return e.team_id == p.team_id
    if isolation == "user":
        return e.user_id == p.user_id and e.team_id == p.team_id
    if isolation == "key":
        return e.key_id == p.key_id
    return True


class RecallStage:
    name = "recall"

    def __init__(
        self,
        store: CacheStore | None,
        settings: CacheSettings,
        router: Router,
        events: EventBus,
        memory: MemoryStore | None = None,
        memory_settings: MemorySettings | None = None,
        semantic: SemanticLayer | None = None,
    ) -> None:
        self.store = store
        self.semantic = semantic
        self.settings = settings
        self.router = router
        self.events = events
        self.memory = memory
        self.memory_settings = memory_settings or MemorySettings()

    async def __call__(self, ex: Exchange) -> None:
        if ex.operation != "chat":
            return
        if self.memory is not None:
            asked, project = wanted(ex, self.memory_settings.projects)
            if asked:
                ms = self.memory_settings
                added = await add_memory(ex, self.memory, project, ms.max_entries, ms.max_tokens)
                ex.trace.append(("memory", added))
        store = self.store
        if store is None:
            return
        p = ex.principal
        exact_on = self.settings.exact.applies(ex.model, p.project_id, p.key_id)
        layer = self.semantic
        semantic_on = layer is not None and self.settings.semantic.applies(
            ex.model, p.project_id, p.key_id
        )
        if not (exact_on or semantic_on):
            return
        if ex.placeholders is not None:
            ex.trace.append(("recall", {"result": "skipped", "reason": "redacted input"}))
            return
        read, write = cache_modes(ex.headers)
        write = write and ex.mode != "simulate"
        kind = "exact+semantic" if exact_on and semantic_on else "exact" if exact_on else "semantic"
        body = self._as_sent(ex)
        if exact_on:
            ex.cache_key = exact_key(ex.protocol, ex.operation, ex.model, body)
            ex.cache_write = write
            if read and await self._try(ex, store, store.candidates(ex.cache_key), None):
                return
        evidence = None
        if semantic_on and layer is not None:
            req = layer.request(ex, body)
            if req is not None:
                vector = await layer.vector(req)
                ex.semantic = (req, vector)
                ex.cache_write = write
                if read:
                    evidence = layer.lookup(ex, req, vector, time.time())
                    found = store.by_id.get(evidence.entry_id or "") if evidence.hit else None
                    if found is not None and await self._try(ex, store, [found], evidence):
                        return
        if not read:
            ex.trace.append(("recall", {"result": "bypass", "kind": kind}))
            return
        if ex.mode != "simulate":
            store.count(ex.model, None)
        record: dict[str, Any] = {"result": "miss", "kind": kind}
        if evidence is not None:
            record["semantic"] = evidence.as_dict()
        ex.trace.append(("recall", record))

    def _as_sent(self, ex: Exchange) -> Mapping[str, Any]:
        """The body with what routing adds to it: an alias the model registry drives
        sends its version's parameters where the client set none (`plane.stages.bound`),
        so two versions of one target that differ only in parameters share no entries."""
        route = ex.route
        binding = route.binding if route is not None else self.router.bindings.get(ex.model)
        added = binding.defaults_for(ex.body) if binding is not None else None
        return {**ex.body, **added} if added else ex.body

    async def _try(
        self,
        ex: Exchange,
        store: CacheStore,
        candidates: list[CacheEntry],
        evidence: Evidence | None,
    ) -> bool:
        """Answer from the first candidate this request may have; False when none."""
        entry = self._find(ex, candidates)
        data = None if entry is None else await store.reply_of(entry)
        if entry is None or data is None:
            return False
        if ex.mode != "simulate":
            store.count(ex.model, entry)
        self._answer(ex, entry, orjson.loads(data), evidence)
        return True

    def _find(self, ex: Exchange, candidates: list[CacheEntry]) -> CacheEntry | None:
        if not candidates:
            return None
        if ex.route is None:  # no policy stage resolved it
            ex.route = self.router.resolve(ex.model)
        chain = {d.key for d in ex.route.chain}
        allowed = ex.decision.allowed if ex.decision is not None else None
        now = time.time()
        isolation = self.settings.isolation
        for e in reversed(candidates):  # the newest first
            if (
                e.expires_at > now
                and e.sensitivity == ex.sensitivity
                and e.deployment in chain
                and (allowed is None or e.deployment in allowed)
                and _scope_ok(e, ex, isolation)
            ):
                return e
        return None

    def _answer(
        self, ex: Exchange, entry: CacheEntry, completion: Any, evidence: Evidence | None
    ) -> None:
        ex.cached = entry
        ex.cache_write = False
        record: dict[str, Any] = {
            "result": "hit",
            "kind": entry.kind,
            "entry": entry.id,
            "original_receipt": entry.receipt_id,
            "deployment": entry.deployment,
            "age_s": int(time.time() - entry.created_at),
            "tokens_saved": entry.prompt_tokens + entry.completion_tokens,
            "cost_saved_micros": entry.cost_micros,
        }
        if evidence is not None:
            record["semantic"] = evidence.as_dict()
        ex.trace.append(("recall", record))
        if ex.stream:
            stream = CachedStream(completion, ex.body)
            ex.upstream, ex.chunks, ex.first = stream, aiter(stream), None
        else:
            ex.reply = cached_reply(completion)
        if self.events.wants("cache.hit"):
            data = {"kind": entry.kind, "entry": entry.id, "original_receipt": entry.receipt_id}
            emit_for(self.events, "cache.hit", ex, data)


class LearnStage:
    """After the response: a served answer goes into the cache (when it may), and every
    attempt's outcome into route memory."""

    name = "learn"

    def __init__(
        self,
        store: CacheStore | None,
        settings: CacheSettings,
        routes: RouteService | None = None,
        semantic: SemanticLayer | None = None,
    ) -> None:
        self.store = store
        self.settings = settings
        self.routes = routes
        self.semantic = semantic

    async def __call__(self, ex: Exchange) -> None:
        store = self.store
        if store is not None and ex.cache_write:
            self._remember(store, ex)
        routes = self.routes
        if routes is not None and ex.attempts and ex.mode != "simulate":
            routes.observe(ex)

    def _remember(self, store: CacheStore, ex: Exchange) -> None:
        reply, served = ex.reply, ex.served
        if served is None or ex.error is not None or ex.status != 200 or ex.abandoned:
            return
        if reply is not None:
            completion = completion_of(reply, served.model)
        elif ex.stream and ex.response_body is not None:
            completion = completion_from_stream(ex.response_body, ex.protocol, served.model)
        else:
            return
        if completion is None:
            return
        data = orjson.dumps(completion)
        if len(data) > self.settings.max_entry_bytes:
            return
        p = ex.principal
        now = time.time()

        def entry(kind: str, lookup: str, ttl: float) -> CacheEntry:
            return CacheEntry(
                id=new_entry_id(),
                kind=kind,
                lookup=lookup,
                model=ex.model[:200],
                deployment=served.key[:200],
                sensitivity=ex.sensitivity,
                team_id=p.team_id,
                user_id=p.user_id,
                key_id=p.key_id,
                receipt_id=ex.receipt_id,
                prompt_tokens=ex.usage.prompt_tokens,
                completion_tokens=ex.usage.completion_tokens,
                cost_micros=round(ex.cost * 1_000_000),
                created_at=now,
                expires_at=now + ttl,
                reply=data,
            )

        if ex.cache_key is not None:
            store.put(entry("exact", ex.cache_key, self.settings.exact.ttl_s))
        layer = self.semantic
        if layer is not None and ex.semantic is not None:
            req, vector = ex.semantic
            made = entry("semantic", req.context, self.settings.semantic.ttl_s)
            made.vector = vector.tobytes()
            made.question = req.text
            store.put(made)
            layer.add(made, req, vector)
