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
"""

from __future__ import annotations

import math
import os
import re
import time
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

from sqlalchemy import func, insert, select

from aicp.errors import RequestError
from aicp.guardrails.secrets import SecretsDetector
from aicp.memory.settings import MemorySettings
from aicp.storage.db import Database
from aicp.storage.schema import memory_entries

KINDS = ("decision", "context", "handoff", "runbook", "note")
_WORD = re.compile(r"[a-z0-9][a-z0-9_.-]*")
#: Cosine similarity of local embeddings below which two texts count as unrelated.
SIMILAR = 0.25
#: Reloaded from the database when older than this (other processes' writes).
REFRESH_S = 5.0
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


class MemoryStore:
    def __init__(self, db: Database, settings: MemorySettings) -> None:
        self.db = db
        self.settings = settings
        self.secrets = SecretsDetector()
        #: The latest version of every entry, by id.
        self._latest: dict[str, MemoryEntry] = {}
        self._loaded = -math.inf
        #: The local embedder (None: not tried yet; False: not installed).
        self._local: Any = None

    async def _refresh(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._loaded < REFRESH_S:
            return
        async with self.db.connect() as conn:
            rows = (await conn.execute(select(memory_entries).order_by(memory_entries.c.seq))).all()
        latest: dict[str, MemoryEntry] = {}
        for r in rows:
            latest[r.id] = _entry(r)
        embedder = self._embedder()
        if embedder is not None:
            old = self._latest
            for e in latest.values():
                known = old.get(e.id)
                if known is not None and known.version == e.version and known.vector is not None:
                    e.vector = known.vector
                else:
                    e.vector = embedder.embed([f"{e.title}. {e.text}"])[0]
        self._latest, self._loaded = latest, now

    def _embedder(self) -> Any:
        """The local embedder when the `semantic` extra is installed, else None (lexical
        ranking only)."""
        if self._local is False:
            return None
        if self._local is None:
            try:
                from aicp.memory.embed import WordLlamaEmbedder

                self._local = WordLlamaEmbedder()
            except Exception:
                self._local = False
                return None
        return self._local

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
