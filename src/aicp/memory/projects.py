"""Project and global memory: append-only, versioned entries (decisions, context,
handoffs, runbooks) that requests may carry into their context.

Every change is a new row (`memory_entries` refuses UPDATE and DELETE): adding
to an entry's id makes its next version, retiring it writes a version marked
retired. Text is scanned by the secrets detector before it is stored, and an
entry holding a secret is refused. Search ranks the latest versions by how many
of the query's words they share (weighted by rarity, as BM25 does, without its
length normalisation) plus, with the `semantic` extra, how close their local
embeddings are, times a recency weight that halves every
`memory.half_life_days`; entries are few (thousands, not millions), so they are
ranked in memory from a cache refreshed on every write and every few seconds.
A refresh reads only the rows it has not seen; the embeddings of entry versions
are kept in `memory_vectors` (memory/memory_vectors.py), so each is computed once
whichever process sees it first.
"""

from __future__ import annotations

import asyncio
import math
import os
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any, Literal

from sqlalchemy import ColumnElement, func, insert, or_, select

from aicp.errors import RequestError
from aicp.guardrails.secrets import SecretsDetector
from aicp.memory.memory_vectors import NamedEmbedder, attach_vectors, embedding_text, store_vectors
from aicp.memory.settings import MemorySettings
from aicp.storage.db import Database
from aicp.storage.schema import memory_entries

KINDS = ("decision", "context", "handoff", "runbook", "note")
_WORD = re.compile(r"[a-z0-9][a-z0-9_.-]*")
#: Cosine similarity of local embeddings below which two texts count as unrelated.
SIMILAR = 0.25
#: Reloaded from the database when older than this (other processes' writes).
REFRESH_S = 5.0
#: How long a missing seq below the highest seen is looked for again (see `_Seen`).
GAP_S = 60.0
#: Only this many seqs below the highest seen can be missing for an uncommitted write.
GAP_WINDOW = 1000
_STOP = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "by",
        "for",
        "from",
        "how",
        "i",
        "in",
        "is",
        "it",
        "of",
        "on",
        "or",
        "that",
        "the",
        "this",
        "to",
        "was",
        "what",
        "when",
        "where",
        "which",
        "who",
        "why",
        "with",
        "do",
        "does",
        "we",
        "you",
        "our",
    ]
)


def words(text: str) -> list[str]:
    return [w for w in _WORD.findall(text.lower()) if w not in _STOP]


@dataclass(slots=True)
class MemoryEntry:
    id: str
    version: int
    project_id: str | None
    kind: str
    title: str
    text: str
    tags: list[str]
    author: str | None
    retired: bool
    created_at: float
    terms: frozenset[str] = field(default=frozenset(), repr=False)
    #: The local embedding of title and text, when the `semantic` extra is installed.
    vector: Any = field(default=None, repr=False)

    def view(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "version": self.version,
            "project_id": self.project_id,
            "kind": self.kind,
            "title": self.title,
            "text": self.text,
            "tags": self.tags,
            "author": self.author,
            "retired": self.retired,
            "created_at": self.created_at,
        }


def _entry(row: Any) -> MemoryEntry:
    e = MemoryEntry(
        row.id,
        int(row.version),
        row.project_id,
        row.kind,
        row.title,
        row.text,
        list(row.tags or []),
        row.author,
        bool(row.retired),
        float(row.created_at),
    )
    e.terms = frozenset(words(f"{e.title} {e.text} {' '.join(e.tags)}"))
    return e


@dataclass(slots=True)
class _Seen:
    """Which `memory_entries` rows this store has read, so a refresh reads only the rest.

    On PostgreSQL a seq is taken when a write starts and shows when it commits, so
    a slow writer's row may appear below the highest seq already read. Missing seqs
    just below the highest are therefore asked for again for `GAP_S` seconds (a
    rolled-back write leaves its seq missing for good). SQLite writes one at a time,
    so it has no such gaps.
    """

    top: int = 0
    #: Missing seq -> when it was first found missing (monotonic).
    gaps: dict[int, float] = field(default_factory=dict)

    def unseen(self, now: float) -> ColumnElement[bool]:
        """The rows to read: above the highest seen, or missing below it (not for long)."""
        self.gaps = {s: t for s, t in self.gaps.items() if now - t < GAP_S}
        newer = memory_entries.c.seq > self.top
        return or_(newer, memory_entries.c.seq.in_(sorted(self.gaps))) if self.gaps else newer

    def saw(self, seqs: Sequence[int], now: float) -> None:
        """Record the seqs a refresh read; those it skipped over become gaps."""
        got = set(seqs)
        for seq in got:
            self.gaps.pop(seq, None)
        top = max(got, default=self.top)
        if top > self.top:
            for seq in range(max(self.top, top - GAP_WINDOW) + 1, top):
                if seq not in got:
                    self.gaps[seq] = now
            self.top = top


class MemoryStore:
    def __init__(
        self,
        db: Database,
        settings: MemorySettings,
        *,
        embedder: NamedEmbedder | None = None,
        refresh_s: float = REFRESH_S,
    ) -> None:
        """`embedder`: None loads the `semantic` extra's local one when it is installed
        (else search is lexical only). `refresh_s`: how stale the cache may get."""
        self.db = db
        self.settings = settings
        self.secrets = SecretsDetector()
        self.refresh_s = refresh_s
        #: The latest version of every entry, by id.
        self._latest: dict[str, MemoryEntry] = {}
        self._seen = _Seen()
        self._loaded = -math.inf
        # One refresh at a time: two would read the same rows and embed them twice.
        self._refreshing = asyncio.Lock()
        #: The local embedder (None: not tried yet; False: not installed).
        self._local: NamedEmbedder | Literal[False] | None = embedder

    async def _refresh(self, force: bool = False) -> None:
        async with self._refreshing:
            now = time.monotonic()
            if not force and now - self._loaded < self.refresh_s:
                return
            async with self.db.connect() as conn:
                query = select(memory_entries).where(self._seen.unseen(now))
                rows = (await conn.execute(query.order_by(memory_entries.c.seq))).all()
            changed: dict[str, MemoryEntry] = {}
            for r in rows:
                known = changed.get(r.id) or self._latest.get(r.id)
                # A late commit may bring an older version than one already read.
                if known is None or int(r.version) > known.version:
                    changed[r.id] = _entry(r)
            embedder = self._embedder()
            if embedder is not None:
                # Retired versions are never searched: no vector needed.
                live = [e for e in changed.values() if not e.retired]
                await attach_vectors(self.db, live, embedder)
            self._seen.saw([int(r.seq) for r in rows], now)
            self._latest.update(changed)
            self._loaded = now

    def _embedder(self) -> NamedEmbedder | None:
        """The local embedder when the `semantic` extra is installed, else None (lexical
        ranking only)."""
        if self._local is None:
            try:
                from aicp.memory.embed import WordLlamaEmbedder

                self._local = WordLlamaEmbedder()
            except Exception:
                self._local = False
        return None if self._local is False else self._local

    async def add(
        self,
        *,
        text: str,
        title: str,
        kind: str,
        project_id: str | None,
        tags: list[str],
        author: str | None,
        entry_id: str | None = None,
        retired: bool = False,
    ) -> MemoryEntry:
        """A new entry, or (with `entry_id`) the next version of one. A secret in the text,
        title or tags is refused with a 422 naming its kind, never its value."""
        if kind not in KINDS:
            raise RequestError(f"kind: one of {', '.join(KINDS)}", status=422, param="kind")
        found = self.secrets.scan("\n".join([title, text, *tags]))
        if found:
            kinds = ", ".join(sorted({f.kind for f in found}))
            raise RequestError(
                f"the memory entry holds a secret ({kinds}); remove it and try again",
                status=422,
                code="secret_in_memory",
            )
        embedder = self._embedder()
        # Embedded before the write: the transaction (SQLite's write lock) stays short.
        vector = None
        if embedder is not None and not retired:
            vector = embedder.embed([embedding_text(title, text)])[0]
        async with self.db.begin() as conn:
            version = 1
            if entry_id is not None:
                top = (
                    await conn.execute(
                        select(func.max(memory_entries.c.version)).where(
                            memory_entries.c.id == entry_id
                        )
                    )
                ).scalar()
                if top is None:
                    raise RequestError(
                        f"no memory entry {entry_id!r}", status=404, code="not_found"
                    )
                version = int(top) + 1
            row = {
                "id": entry_id or f"mem_{time.time_ns() // 1_000_000:012x}{os.urandom(5).hex()}",
                "version": version,
                "project_id": project_id,
                "kind": kind,
                "title": title,
                "text": text,
                "tags": tags,
                "author": author,
                "retired": retired,
                "created_at": time.time(),
            }
            await conn.execute(insert(memory_entries).values(**row))
            entry = _entry(SimpleNamespace(**row))
            if embedder is not None and vector is not None:
                entry.vector = vector
                await store_vectors(conn, [entry], embedder)
        await self._refresh(force=True)
        return entry

    async def history(self, entry_id: str) -> list[MemoryEntry]:
        async with self.db.connect() as conn:
            rows = (
                await conn.execute(
                    select(memory_entries)
                    .where(memory_entries.c.id == entry_id)
                    .order_by(memory_entries.c.version)
                )
            ).all()
        return [_entry(r) for r in rows]

    async def get(self, entry_id: str) -> MemoryEntry | None:
        await self._refresh()
        return self._latest.get(entry_id)

    async def search(
        self,
        query: str,
        *,
        projects: set[str | None],
        limit: int = 10,
        now: float | None = None,
    ) -> list[tuple[MemoryEntry, float]]:
        """Live latest versions in `projects` (None: global memory), best first."""
        await self._refresh()
        pool = [e for e in self._latest.values() if not e.retired and e.project_id in projects]
        q = set(words(query))
        if not pool:
            return []
        now = now if now is not None else time.time()
        half_life = self.settings.half_life_days * 86400
        df: dict[str, int] = {}
        for e in pool:
            for w in q & e.terms:
                df[w] = df.get(w, 0) + 1
        n = len(pool)
        embedder = self._embedder() if q else None
        qv = embedder.embed([query])[0] if embedder is not None else None
        scored = []
        for e in pool:
            shared = q & e.terms
            lexical = sum(math.log(1 + (n - df[w] + 0.5) / (df[w] + 0.5)) for w in shared)
            # Meaning as well as words: the cosine of the two embeddings, counted when it
            # says more than chance (static embeddings of unrelated texts sit at 0.1-0.2).
            close = 0.0
            if qv is not None and e.vector is not None:
                close = max(0.0, float(qv @ e.vector) - SIMILAR)
            if q and not shared and close <= 0:
                continue
            relevance = lexical + 4.0 * close if q else 1.0
            recency = 0.5 ** (max(0.0, now - e.created_at) / half_life)
            scored.append((e, relevance * (0.5 + 0.5 * recency)))
        scored.sort(key=lambda pair: pair[1], reverse=True)
        return scored[:limit]
