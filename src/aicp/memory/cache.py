"""The answer cache's store: an in-memory index over the `cache_entries` table.

Lookups never wait on the database: every process holds the index of live
entries (ids, keys, scope, expiry; the reply bytes of the entries it wrote or
served) and reads what other processes wrote, and what `DELETE /admin/cache`
removed, every `cache.sync_s` seconds. Writes are queued and inserted in
batches after the response went out. Hits, misses and savings are counted
in memory and written per process to `cache_stats`, summed when read.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, insert, select

from aicp.memory.settings import CacheSettings
from aicp.observability.events import new_origin
from aicp.storage.db import Database
from aicp.storage.periodic import Periodic
from aicp.storage.schema import cache_entries, cache_invalidations, cache_stats

log = logging.getLogger("aicp.cache")

#: Entries loaded and synced per query.
_PAGE = 5000


@dataclass(slots=True, eq=False)
class CacheEntry:
    id: str
    kind: str  # "exact" | "semantic"
    lookup: str
    model: str
    deployment: str
    sensitivity: str
    team_id: str | None
    user_id: str | None
    key_id: str | None
    receipt_id: str
    prompt_tokens: int
    completion_tokens: int
    cost_micros: int
    created_at: float
    expires_at: float
    #: The answer as an OpenAI chat completion (JSON); None until read from the database.
    reply: bytes | None = field(default=None, repr=False)
    vector: bytes | None = field(default=None, repr=False)
    #: A semantic entry's question (the last user turn); None for exact entries.
    question: str | None = field(default=None, repr=False)

    def row(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "lookup": self.lookup,
            "model": self.model,
            "deployment": self.deployment,
            "sensitivity": self.sensitivity,
            "team_id": self.team_id,
            "user_id": self.user_id,
            "key_id": self.key_id,
            "receipt_id": self.receipt_id,
            "reply": self.reply,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "cost_micros": self.cost_micros,
            "vector": self.vector,
            "question": self.question,
            "created_at": self.created_at,
            "expires_at": self.expires_at,
        }


def new_entry_id() -> str:
    return f"ce_{time.time_ns() // 1_000_000:012x}{os.urandom(6).hex()}"


_META = [c for c in cache_entries.c if c.name not in ("reply", "seq")]


def _entry(row: Any) -> CacheEntry:
    data = {c.name: getattr(row, c.name) for c in _META}
    vector = data.pop("vector", None)
    return CacheEntry(**data, vector=None if vector is None else bytes(vector))


@dataclass(slots=True)
class Counts:
    hits: int = 0
    misses: int = 0
    tokens_saved: int = 0
    cost_saved_micros: int = 0


class CacheStore:
    def __init__(
        self, db: Database, settings: CacheSettings, clock: Callable[[], float] = time.time
    ) -> None:
        self.db = db
        self.settings = settings
        self.clock = clock
        self.origin = new_origin()
        self.by_id: dict[str, CacheEntry] = {}
        self.exact: dict[str, list[CacheEntry]] = {}
        #: Called with each semantic entry added from elsewhere, and each id removed.
        self.on_add: Callable[[CacheEntry], None] | None = None
        self.on_remove: Callable[[CacheEntry], None] | None = None
        self.counts: dict[str, Counts] = {}
        self._queue: list[CacheEntry] = []
        self._seq = 0
        self._inval_seq = 0
        self._sync = Periodic("aicp-cache-sync", settings.sync_s, self.sync, log)

    # --- lifecycle ----------------------------------------------------------------

    async def start(self) -> None:
        async with self.db.connect() as conn:
            top = (
                await conn.execute(
                    select(cache_invalidations.c.seq)
                    .order_by(cache_invalidations.c.seq.desc())
                    .limit(1)
                )
            ).scalar()
        self._inval_seq = int(top or 0)
        await self._load()
        self._sync.start()

    async def aclose(self) -> None:
        await self._sync.stop()
        await self._flush()

    async def sync(self) -> None:
        """Write what is queued, read what others wrote and removed, drop the expired."""
        await self._flush()
        await self._load()
        async with self.db.connect() as conn:
            rows = (
                await conn.execute(
                    select(cache_invalidations)
                    .where(cache_invalidations.c.seq > self._inval_seq)
                    .order_by(cache_invalidations.c.seq)
                )
            ).all()
        for r in rows:
            self._inval_seq = max(self._inval_seq, int(r.seq))
            self._drop(self._matching(r.entry_id, r.model, r.user_id, r.key_id))
        now = self.clock()
        self._drop([e for e in self.by_id.values() if e.expires_at <= now])

    async def _load(self) -> None:
        now = self.clock()
        while True:
            async with self.db.connect() as conn:
                rows = (
                    await conn.execute(
                        select(cache_entries.c.seq, *_META)
                        .where(cache_entries.c.seq > self._seq, cache_entries.c.expires_at > now)
                        .order_by(cache_entries.c.seq)
                        .limit(_PAGE)
                    )
                ).all()
            for r in rows:
                self._seq = max(self._seq, int(r.seq))
                if r.id not in self.by_id:
                    entry = _entry(r)
                    self._index(entry)
                    if entry.kind == "semantic" and self.on_add is not None:
                        self.on_add(entry)
            if len(rows) < _PAGE:
                return

    async def _flush(self) -> None:
        queue, self._queue = self._queue, []
        counts, self.counts = self.counts, {}
        if not queue and not counts:
            return
        now = self.clock()
        try:
            async with self.db.begin() as conn:
                if queue:
                    await conn.execute(insert(cache_entries), [e.row() for e in queue])
                for model, c in counts.items():
                    await self._add_counts(conn, model, c, now)
        except Exception:
            log.exception("cache: writing %d entries failed; they are lost", len(queue))

    async def _add_counts(self, conn: Any, model: str, c: Counts, now: float) -> None:
        t = cache_stats.c
        where = (t.origin == self.origin) & (t.model == model)
        found = (await conn.execute(select(t.hits).where(where))).first()
        if found is None:
            await conn.execute(
                insert(cache_stats).values(
                    origin=self.origin,
                    model=model,
                    hits=c.hits,
                    misses=c.misses,
                    tokens_saved=c.tokens_saved,
                    cost_saved_micros=c.cost_saved_micros,
                    updated_at=now,
                )
            )
            return
        await conn.execute(
            cache_stats.update()
            .where(where)
            .values(
                hits=t.hits + c.hits,
                misses=t.misses + c.misses,
                tokens_saved=t.tokens_saved + c.tokens_saved,
                cost_saved_micros=t.cost_saved_micros + c.cost_saved_micros,
                updated_at=now,
            )
        )

    # --- the index ----------------------------------------------------------------

    def _index(self, entry: CacheEntry) -> None:
        self.by_id[entry.id] = entry
        if entry.kind == "exact":
            self.exact.setdefault(entry.lookup, []).append(entry)

    def _drop(self, entries: Iterable[CacheEntry]) -> int:
        n = 0
        for entry in list(entries):
            if self.by_id.pop(entry.id, None) is None:
                continue
            n += 1
            if entry.kind == "exact":
                same = self.exact.get(entry.lookup)
                if same is not None:
                    same[:] = [e for e in same if e.id != entry.id]
                    if not same:
                        del self.exact[entry.lookup]
            elif self.on_remove is not None:
                self.on_remove(entry)
        return n

    def _matching(
        self, entry_id: str | None, model: str | None, user_id: str | None, key_id: str | None
    ) -> list[CacheEntry]:
        return [
            e
            for e in self.by_id.values()
            if (entry_id is None or e.id == entry_id)
            and (model is None or e.model == model)
            and (user_id is None or e.user_id == user_id)
            and (key_id is None or e.key_id == key_id)
        ]

    def candidates(self, lookup: str) -> list[CacheEntry]:
        return self.exact.get(lookup) or []

    def put(self, entry: CacheEntry) -> None:
        """Index an entry at once and queue it for the database."""
        self._index(entry)
        self._queue.append(entry)

    async def reply_of(self, entry: CacheEntry) -> bytes | None:
        if entry.reply is not None:
            return entry.reply
        async with self.db.connect() as conn:
            data = (
                await conn.execute(
                    select(cache_entries.c.reply).where(cache_entries.c.id == entry.id)
                )
            ).scalar()
        if data is None:  # removed meanwhile
            self._drop([entry])
            return None
        entry.reply = bytes(data)
        return entry.reply

    # --- counting -----------------------------------------------------------------

    def count(self, model: str, hit: CacheEntry | None) -> None:
        c = self.counts.get(model)
        if c is None:
            c = self.counts[model] = Counts()
        if hit is None:
            c.misses += 1
            return
        c.hits += 1
        c.tokens_saved += hit.prompt_tokens + hit.completion_tokens
        c.cost_saved_micros += hit.cost_micros

    # --- admin ----------------------------------------------------------------------

    async def invalidate(
        self,
        *,
        entry_id: str | None = None,
        model: str | None = None,
        user_id: str | None = None,
        key_id: str | None = None,
    ) -> int:
        """Remove matching entries here, in the database and (at their next sync) in every
        other process. Returns how many rows went."""
        await self._flush()
        t = cache_entries.c
        where = []
        if entry_id is not None:
            where.append(t.id == entry_id)
        if model is not None:
            where.append(t.model == model)
        if user_id is not None:
            where.append(t.user_id == user_id)
        if key_id is not None:
            where.append(t.key_id == key_id)
        async with self.db.begin() as conn:
            done = await conn.execute(delete(cache_entries).where(*where))
            await conn.execute(
                insert(cache_invalidations).values(
                    entry_id=entry_id,
                    model=model,
                    user_id=user_id,
                    key_id=key_id,
                    created_at=self.clock(),
                )
            )
        self._drop(self._matching(entry_id, model, user_id, key_id))
        return int(done.rowcount or 0)

    async def stats(self) -> dict[str, Any]:
        await self._flush()
        async with self.db.connect() as conn:
            rows = (await conn.execute(select(cache_stats))).all()
        by_model: dict[str, Counts] = {}
        for r in rows:
            c = by_model.setdefault(r.model, Counts())
            c.hits += int(r.hits)
            c.misses += int(r.misses)
            c.tokens_saved += int(r.tokens_saved)
            c.cost_saved_micros += int(r.cost_saved_micros)
        total = Counts()
        for c in by_model.values():
            total.hits += c.hits
            total.misses += c.misses
            total.tokens_saved += c.tokens_saved
            total.cost_saved_micros += c.cost_saved_micros
        now = self.clock()
        live = [e for e in self.by_id.values() if e.expires_at > now]
        return {
            **_view(total),
            "entries": {
                "exact": sum(1 for e in live if e.kind == "exact"),
                "semantic": sum(1 for e in live if e.kind == "semantic"),
            },
            "models": {m: _view(c) for m, c in sorted(by_model.items())},
        }


def _view(c: Counts) -> dict[str, Any]:
    looked = c.hits + c.misses
    return {
        "hits": c.hits,
        "misses": c.misses,
        "hit_rate": round(c.hits / looked, 4) if looked else None,
        "tokens_saved": c.tokens_saved,
        "cost_saved_usd": c.cost_saved_micros / 1_000_000,
    }
