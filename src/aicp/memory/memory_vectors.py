"""The local embeddings of memory entries, kept in `memory_vectors`.

A vector is computed once per entry version and embedder, by whichever gateway
process needs it first, and read by every other. Two processes may compute the
same one at once: both get the same floats (the embedder is deterministic), and
the second insert is dropped by `ON CONFLICT DO NOTHING`.

numpy is imported by the functions that need it: they only run with an
embedder, so without the `semantic` extra this module still imports.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection

from aicp.storage.db import Database, upsert_insert
from aicp.storage.schema import memory_vectors

if TYPE_CHECKING:
    from aicp.memory.embed import Matrix
    from aicp.memory.projects import MemoryEntry

log = logging.getLogger("aicp.memory")

#: Stored byte order, whatever the machine's.
DTYPE = "<f4"
#: Entry ids per query (well under SQLite's and asyncpg's limits on bound parameters).
CHUNK = 500


class NamedEmbedder(Protocol):
    """A local embedder whose `name` says which vectors it computes (weights and dims)."""

    @property
    def name(self) -> str: ...

    @property
    def dims(self) -> int: ...

    def embed(self, texts: list[str]) -> Matrix: ...


def embedding_text(title: str, text: str) -> str:
    """What an entry's vector embeds: its title and text."""
    return f"{title}. {text}"


async def attach_vectors(
    db: Database, entries: Sequence[MemoryEntry], embedder: NamedEmbedder
) -> None:
    """Set every entry's `vector`: the stored one, else computed now and stored."""
    if not entries:
        return
    async with db.connect() as conn:
        stored = await load_vectors(conn, entries, embedder)
    missing = []
    for e in entries:
        e.vector = stored.get((e.id, e.version))
        if e.vector is None:
            missing.append(e)
    if not missing:
        return
    rows = embedder.embed([embedding_text(e.title, e.text) for e in missing])
    for e, row in zip(missing, rows, strict=True):
        e.vector = row
    try:
        async with db.begin() as conn:
            await store_vectors(conn, missing, embedder)
    except SQLAlchemyError:
        # A cache of derived data: searching goes on with the vectors in hand, and the
        # next process to miss them computes them again.
        log.warning("memory: could not store %d entry vectors", len(missing), exc_info=True)


async def load_vectors(
    conn: AsyncConnection, entries: Sequence[MemoryEntry], embedder: NamedEmbedder
) -> dict[tuple[str, int], Matrix]:
    """The stored vectors of these entry versions, by (id, version)."""
    import numpy as np

    wanted = {(e.id, e.version) for e in entries}
    ids = sorted({e.id for e in entries})
    c = memory_vectors.c
    found: dict[tuple[str, int], Matrix] = {}
    for start in range(0, len(ids), CHUNK):
        query = select(c.id, c.version, c.vector).where(
            c.embedder == embedder.name,
            c.dims == embedder.dims,
            c.id.in_(ids[start : start + CHUNK]),
        )
        for r in await conn.execute(query):
            key = (r.id, int(r.version))
            # Other versions of the same ids come along; a short blob is not trusted.
            if key in wanted and len(r.vector) == 4 * embedder.dims:
                found[key] = np.frombuffer(r.vector, dtype=DTYPE).astype(np.float32)
    return found


async def store_vectors(
    conn: AsyncConnection, entries: Sequence[MemoryEntry], embedder: NamedEmbedder
) -> None:
    """Insert the entries' vectors; one another process stored first is kept as it is."""
    import numpy as np

    if not entries:
        return
    now = time.time()
    rows = [
        {
            "id": e.id,
            "version": e.version,
            "embedder": embedder.name,
            "dims": embedder.dims,
            "vector": np.asarray(e.vector, dtype=DTYPE).tobytes(),
            "created_at": now,
        }
        for e in entries
    ]
    query = upsert_insert(conn.dialect.name)(memory_vectors).on_conflict_do_nothing(
        index_elements=["id", "version", "embedder"]
    )
    await conn.execute(query, rows)
