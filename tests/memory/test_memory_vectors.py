"""Memory entry vectors in the database: computed once per entry version by the first
store that needs one, read by every other store on the database (SQLite and PostgreSQL)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

np = pytest.importorskip("numpy", reason="the semantic extra (numpy) is not installed")
pytest.importorskip("wordllama", reason="memory vectors need the `semantic` extra")

from sqlalchemy import insert, select, text  # noqa: E402 (after the skips)

from aicp.memory.embed import WordLlamaEmbedder  # noqa: E402
from aicp.memory.memory_vectors import store_vectors  # noqa: E402
from aicp.memory.projects import GAP_S, GAP_WINDOW, MemoryEntry, MemoryStore, _Seen  # noqa: E402
from aicp.memory.settings import MemorySettings  # noqa: E402
from aicp.storage.db import Database  # noqa: E402
from aicp.storage.migrate import upgrade  # noqa: E402
from aicp.storage.schema import memory_entries, memory_vectors  # noqa: E402

if TYPE_CHECKING:
    from aicp.memory.embed import Matrix

LUNCH = {"title": "Lunch", "text": "The team lunch is on Fridays at noon."}
DEPLOY = {"title": "Deploys", "text": "Deploy with make ship after review."}
EAT = "where do we eat on friday"
#: The triggers that keep memory_entries append-only (migration 0003), by dialect.
DROP_UPDATE_TRIGGER = {
    "sqlite": "DROP TRIGGER memory_entries_no_update",
    "postgresql": "DROP TRIGGER memory_entries_append_only ON memory_entries",
}


class Counting:
    """The real local embedder, keeping the texts it was asked to embed."""

    def __init__(self, inner: WordLlamaEmbedder) -> None:
        self.inner = inner
        self.texts: list[str] = []

    @property
    def name(self) -> str:
        return self.inner.name

    @property
    def dims(self) -> int:
        return self.inner.dims

    def embed(self, texts: list[str]) -> Matrix:
        self.texts.extend(texts)
        return self.inner.embed(texts)


@pytest.fixture(scope="module")
def wordllama() -> WordLlamaEmbedder:
    return WordLlamaEmbedder()


@pytest.fixture
async def other_db(database: Database, database_url: str) -> AsyncIterator[Database]:
    """A second engine on the test's database, as another gateway process has."""
    db = Database(database_url)
    try:
        yield db
    finally:
        await db.aclose()


def make_store(db: Database, wordllama: WordLlamaEmbedder) -> tuple[MemoryStore, Counting]:
    # refresh_s=0: every read refreshes, as one does once the cache is a few seconds old.
    embedder = Counting(wordllama)
    return MemoryStore(db, MemorySettings(), embedder=embedder, refresh_s=0), embedder


async def add(
    store: MemoryStore, entry: dict[str, str], entry_id: str | None = None
) -> MemoryEntry:
    return await store.add(
        title=entry["title"],
        text=entry["text"],
        kind="note",
        project_id="p1",
        tags=[],
        author=None,
        entry_id=entry_id,
    )


async def stored(db: Database) -> list[Any]:
    c = memory_vectors.c
    async with db.connect() as conn:
        query = select(memory_vectors).order_by(c.id, c.version)
        return list((await conn.execute(query)).all())


async def insert_entry(db: Database, entry_id: str, entry: dict[str, str]) -> None:
    """An entry row as another process writes it, before any vector exists."""
    row = {"id": entry_id, "version": 1, "project_id": "p1", "kind": "note", "tags": []}
    async with db.begin() as conn:
        await conn.execute(
            insert(memory_entries).values(**row, **entry, retired=False, created_at=time.time())
        )


def vector(blob: bytes) -> Matrix:
    found: Matrix = np.frombuffer(blob, dtype="<f4")
    return found


async def test_add_stores_the_vector_of_the_version_it_wrote(
    database: Database, wordllama: WordLlamaEmbedder
) -> None:
    store, embedder = make_store(database, wordllama)
    entry = await add(store, LUNCH)
    (row,) = await stored(database)
    assert (row.id, row.version, row.embedder, row.dims) == (
        entry.id,
        1,
        wordllama.name,
        256,
    )
    assert wordllama.name.startswith("wordllama-l2-256-")  # and the weights' fingerprint
    expected = wordllama.embed(["Lunch. The team lunch is on Fridays at noon."])[0]
    assert np.array_equal(vector(row.vector), expected)
    # Embedded once, when written: the refresh after the write read it back.
    assert embedder.texts == ["Lunch. The team lunch is on Fridays at noon."]


async def test_a_second_store_uses_the_stored_vectors_without_embedding(
    database: Database, other_db: Database, wordllama: WordLlamaEmbedder
) -> None:
    a, _ = make_store(database, wordllama)
    for entry in (LUNCH, DEPLOY, {"title": "Billing", "text": "Billing runs on PostgreSQL."}):
        await add(a, entry)
    b, embedder = make_store(other_db, wordllama)
    now = time.time()
    found = await b.search(EAT, projects={"p1"}, now=now)
    assert embedder.texts == [EAT]  # the question only
    expected = await a.search(EAT, projects={"p1"}, now=now)
    assert [(e.id, score) for e, score in found] == [(e.id, score) for e, score in expected]
    assert found[0][0].title == "Lunch"


async def test_an_entry_added_by_one_store_is_found_by_the_others_semantic_search(
    database: Database, other_db: Database, wordllama: WordLlamaEmbedder
) -> None:
    a, _ = make_store(database, wordllama)
    b, embedder = make_store(other_db, wordllama)
    await add(a, DEPLOY)
    assert all(e.title != "Lunch" for e, _ in await b.search(EAT, projects={"p1"}))
    lunch = await add(a, LUNCH)
    found = await b.search(EAT, projects={"p1"})
    # No word in common ("fridays" is not "friday"): found by meaning, with A's vector.
    assert found and found[0][0].id == lunch.id
    assert embedder.texts == [EAT, EAT]


async def test_a_new_version_gets_its_own_vector(
    database: Database, other_db: Database, wordllama: WordLlamaEmbedder
) -> None:
    a, _ = make_store(database, wordllama)
    first = await add(a, LUNCH)
    moved = {"title": "Lunch", "text": "The team lunch moved to Thursdays."}
    await add(a, moved, entry_id=first.id)
    rows = await stored(database)
    assert [(r.id, r.version) for r in rows] == [(first.id, 1), (first.id, 2)]
    assert rows[0].vector != rows[1].vector
    b, embedder = make_store(other_db, wordllama)
    latest = await b.get(first.id)
    assert latest is not None and latest.version == 2
    assert np.array_equal(latest.vector, vector(rows[1].vector))
    assert embedder.texts == []


async def test_a_refresh_reads_only_rows_it_has_not_seen(
    database: Database, other_db: Database, wordllama: WordLlamaEmbedder
) -> None:
    a, _ = make_store(database, wordllama)
    b, embedder = make_store(other_db, wordllama)
    deploy = await add(a, DEPLOY)
    assert await b.get(deploy.id) is not None
    # Rewrite a row B has read into a newer version (the trigger would refuse it): a
    # reload of every row would take it for the latest.
    async with database.begin() as conn:
        await conn.execute(text(DROP_UPDATE_TRIGGER[database.dialect]))
        await conn.execute(text("UPDATE memory_entries SET version = 9, title = 'Rewritten'"))
    lunch = await add(a, LUNCH)
    seen = await b.get(lunch.id)
    kept = await b.get(deploy.id)
    assert seen is not None and seen.title == "Lunch"
    assert kept is not None and (kept.version, kept.title) == (1, "Deploys")
    assert embedder.texts == []


async def test_a_vector_another_process_stored_is_used_as_it_is(
    database: Database, other_db: Database, wordllama: WordLlamaEmbedder
) -> None:
    await insert_entry(database, "mem_theirs", LUNCH)
    theirs = np.zeros(256, dtype=np.float32)
    theirs[7] = 1.0
    async with database.begin() as conn:
        await conn.execute(
            insert(memory_vectors).values(
                id="mem_theirs",
                version=1,
                embedder=wordllama.name,
                dims=256,
                vector=theirs.astype("<f4").tobytes(),
                created_at=time.time(),
            )
        )
    b, embedder = make_store(other_db, wordllama)
    entry = await b.get("mem_theirs")
    assert entry is not None and np.array_equal(entry.vector, theirs)
    assert embedder.texts == []


async def test_a_missing_vector_is_computed_once_and_stored_for_the_others(
    database: Database, other_db: Database, wordllama: WordLlamaEmbedder
) -> None:
    await insert_entry(database, "mem_bare", LUNCH)
    b, first = make_store(other_db, wordllama)
    assert await b.get("mem_bare") is not None
    assert first.texts == ["Lunch. The team lunch is on Fridays at noon."]
    assert [(r.id, r.version) for r in await stored(database)] == [("mem_bare", 1)]
    c, second = make_store(database, wordllama)
    assert await c.get("mem_bare") is not None and second.texts == []


async def test_storing_a_vector_twice_keeps_the_first(
    database: Database, wordllama: WordLlamaEmbedder
) -> None:
    # Two processes that embedded the same entry at once: the later insert is dropped.
    await insert_entry(database, "mem_race", LUNCH)
    entry = MemoryEntry("mem_race", 1, "p1", "note", "Lunch", LUNCH["text"], [], None, False, 0.0)
    for value in (1.0, 2.0):
        entry.vector = np.full(256, value, dtype=np.float32)
        async with database.begin() as conn:
            await store_vectors(conn, [entry], wordllama)
    (row,) = await stored(database)
    assert np.array_equal(vector(row.vector), np.full(256, 1.0, dtype=np.float32))


async def test_a_row_that_commits_after_a_later_one_is_still_read(
    postgres_url: str, wordllama: WordLlamaEmbedder
) -> None:
    # PostgreSQL hands out seqs when writes start: a slow write shows up below the
    # highest seq a refresh has already read.
    db, other = Database(postgres_url), Database(postgres_url)
    try:
        await upgrade(db)
        a, _ = make_store(db, wordllama)
        b, embedder = make_store(other, wordllama)
        async with db.begin() as slow:
            await slow.execute(
                insert(memory_entries).values(
                    id="mem_slow",
                    version=1,
                    project_id="p1",
                    kind="note",
                    tags=[],
                    retired=False,
                    created_at=time.time(),
                    **LUNCH,
                )
            )
            quick = await add(a, DEPLOY)
            assert await b.get(quick.id) is not None
            assert await b.get("mem_slow") is None
        late = await b.get("mem_slow")
        assert late is not None and late.vector is not None
        assert embedder.texts == ["Lunch. The team lunch is on Fridays at noon."]
    finally:
        await db.aclose()
        await other.aclose()


def test_other_weights_get_another_embedder_name(
    wordllama: WordLlamaEmbedder, tmp_path: Path
) -> None:
    from aicp.memory.embed import wordllama_files

    weights, tokenizer = wordllama_files()
    copy = tmp_path / "weights.safetensors"
    data = bytearray(weights.read_bytes())
    copy.write_bytes(bytes(data))
    assert WordLlamaEmbedder(files=(copy, tokenizer)).name == wordllama.name
    header = int.from_bytes(data[:8], "little")  # safetensors: header length, header, data
    data[8 + header + 64] ^= 1  # one weight's bit: still a valid file, other weights
    copy.write_bytes(bytes(data))
    assert WordLlamaEmbedder(files=(copy, tokenizer)).name != wordllama.name


def test_seqs_skipped_over_are_asked_for_again_until_they_expire() -> None:
    seen = _Seen()
    seen.saw([1, 2, 5], now=0.0)  # 3 and 4 not yet committed
    assert seen.top == 5 and sorted(seen.gaps) == [3, 4]
    assert " IN " in str(seen.unseen(1.0)).upper()  # above 5, or 3 or 4
    seen.saw([4, 6], now=2.0)  # 4 committed late, 6 new
    assert sorted(seen.gaps) == [3]
    seen.unseen(GAP_S + 1.0)  # 3 rolled back for good: no longer asked for
    assert seen.gaps == {}
    seen.saw([6 + GAP_WINDOW + 10], now=70.0)  # only the window below the top is tracked
    assert len(seen.gaps) == GAP_WINDOW - 1
    assert min(seen.gaps) == 6 + 10 + 1
