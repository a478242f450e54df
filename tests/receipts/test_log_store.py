"""The log in the database: group commit, append-only triggers, proofs from stored nodes,
retention. Each test runs on SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from sqlalchemy import delete, select, text, update
from sqlalchemy.exc import DBAPIError

from aicp.config import ReceiptSettings
from aicp.receipts import merkle
from aicp.receipts.log import ReceiptLog
from aicp.receipts.signing import load_signer
from aicp.receipts.store import Pending
from aicp.storage.db import Database
from aicp.storage.schema import receipt_bodies, receipt_checkpoints, receipt_nodes, receipts


def make_log(db: Database, tmp_path: Path, **settings: object) -> ReceiptLog:
    rs = ReceiptSettings.model_validate({"checkpoint_interval_s": 0, **settings})
    return ReceiptLog(db, load_signer(None, str(tmp_path), rs.origin), rs)


def pending(i: int, created_at: float | None = None, bodies: bool = False) -> Pending:
    future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    data = b'{"id":"rcpt_%028x","n":%d}' % (i, i)
    return Pending(
        f"rcpt_{i:028x}",
        created_at if created_at is not None else time.time(),
        f"key{i % 3}",
        None,
        "m",
        200,
        data,
        ("full", b"request %d" % i, b"response %d" % i) if bodies else None,
        future,
    )


async def test_concurrent_receipts_share_commits_and_get_consecutive_indexes(
    database: Database, tmp_path: Path
) -> None:
    log = make_log(database, tmp_path)
    log.start()
    try:
        futures = [log.append(pending(i)) for i in range(300)]
        indexes = await asyncio.wait_for(asyncio.gather(*futures), 30)
    finally:
        await log.aclose()
    assert sorted(indexes) == list(range(300))
    assert log.written == 300 and log.batches < 300 / 4  # group commit, not one per receipt
    async with database.connect() as conn:
        rows = (await conn.execute(select(receipts.c.data).order_by(receipts.c.leaf_index))).all()
    leaves = [merkle.leaf_hash(bytes(r.data)) for r in rows]
    assert await log.root_at(300) == merkle.root(leaves)
    assert await log.root_at(77) == merkle.root(leaves[:77])


async def test_proofs_from_stored_nodes_verify(database: Database, tmp_path: Path) -> None:
    log = make_log(database, tmp_path)
    log.start()
    try:
        await asyncio.gather(*(log.append(pending(i)) for i in range(37)))
    finally:
        await log.aclose()
    root = await log.root_at(37)
    async with database.connect() as conn:
        rows = (
            await conn.execute(select(receipts.c.leaf_hash).order_by(receipts.c.leaf_index))
        ).all()
    for index in (0, 1, 17, 31, 32, 36):
        path = await log.inclusion(index, 37)
        assert merkle.verify_inclusion(bytes(rows[index].leaf_hash), index, 37, path, root)
    proof = await log.consistency(20, 37)
    assert merkle.verify_consistency(20, 37, await log.root_at(20), root, proof)


async def test_a_writer_resumes_a_log_another_writer_grew(
    database: Database, tmp_path: Path
) -> None:
    first, second = make_log(database, tmp_path), make_log(database, tmp_path)
    for log in (first, second):
        log.start()
    try:
        a = await asyncio.gather(*(first.append(pending(i)) for i in range(5)))
        b = await asyncio.gather(*(second.append(pending(i)) for i in range(5, 12)))
        c = await asyncio.gather(*(first.append(pending(i)) for i in range(12, 15)))
    finally:
        await first.aclose()
        await second.aclose()
    assert sorted(a + b + c) == list(range(15))
    async with database.connect() as conn:
        rows = (await conn.execute(select(receipts.c.data).order_by(receipts.c.leaf_index))).all()
    assert await first.root_at(15) == merkle.root([merkle.leaf_hash(bytes(r.data)) for r in rows])


async def test_receipt_tables_refuse_update_and_delete(database: Database, tmp_path: Path) -> None:
    log = make_log(database, tmp_path)
    log.start()
    try:
        await asyncio.gather(*(log.append(pending(i)) for i in range(3)))
        await log.checkpoint()
    finally:
        await log.aclose()
    changes = [
        update(receipts).values(status=500),
        delete(receipts).where(receipts.c.leaf_index == 2),
        update(receipt_nodes).values(hash=b"\x00" * 32),
        delete(receipt_nodes),
        update(receipt_checkpoints).values(note="forged"),
        delete(receipt_checkpoints),
    ]
    for change in changes:
        with pytest.raises(DBAPIError, match="append-only"):
            async with database.begin() as conn:
                await conn.execute(change)
    async with database.connect() as conn:
        assert (await conn.execute(select(receipts.c.status))).scalars().all() == [200] * 3
    if database.dialect == "postgresql":
        with pytest.raises(DBAPIError, match="append-only"):
            async with database.begin() as conn:
                await conn.execute(text("TRUNCATE receipts"))


async def test_retention_deletes_old_bodies_and_keeps_receipts(
    database: Database, tmp_path: Path
) -> None:
    writer = make_log(database, tmp_path, body_retention_days=0)
    writer.start()
    old = time.time() - 2 * 86400
    try:
        await asyncio.gather(
            writer.append(pending(0, created_at=old, bodies=True)),
            writer.append(pending(1, bodies=True)),
        )
    finally:
        await writer.aclose()
    log = make_log(database, tmp_path, body_retention_days=1)
    assert await log.delete_old_bodies() == 1
    async with database.connect() as conn:
        kept = (await conn.execute(select(receipt_bodies.c.receipt_id))).scalars().all()
        count = len((await conn.execute(select(receipts.c.id))).all())
    assert kept == [f"rcpt_{1:028x}"] and count == 2
    assert (await log.bodies(f"rcpt_{1:028x}")).request == b"request 1"


async def test_a_checkpoint_per_size_even_when_two_processes_sign_at_once(
    database: Database, tmp_path: Path
) -> None:
    a, b = make_log(database, tmp_path), make_log(database, tmp_path)
    a.start()
    try:
        await asyncio.gather(*(a.append(pending(i)) for i in range(4)))
    finally:
        await a.aclose()
    one, two = await asyncio.gather(a.checkpoint(), b.checkpoint())
    assert one.size == two.size == 4 and one.root == two.root
    async with database.connect() as conn:
        sizes = (await conn.execute(select(receipt_checkpoints.c.size))).scalars().all()
    assert sizes == [4]


class CommitsThenFails(ReceiptLog):
    """A writer whose first transaction commits and then reports an error (a connection
    lost right after COMMIT)."""

    failed = False

    async def _write(self, batch: list[Pending]) -> int:
        first = await super()._write(batch)
        if not self.failed:
            self.failed = True
            raise ConnectionError("lost after commit")
        return first


async def test_a_batch_committed_before_an_error_is_not_written_twice(
    database: Database, tmp_path: Path
) -> None:
    rs = ReceiptSettings(checkpoint_interval_s=0, body_retention_days=0)
    log = CommitsThenFails(database, load_signer(None, str(tmp_path), rs.origin), rs)
    log.start()
    try:
        indexes = await asyncio.gather(*(log.append(pending(i)) for i in range(5)))
        more = await log.append(pending(5))
    finally:
        await log.aclose()
    assert sorted(indexes) == [0, 1, 2, 3, 4] and more == 5
    async with database.connect() as conn:
        rows = (await conn.execute(select(receipts.c.leaf_index))).scalars().all()
    assert sorted(rows) == [0, 1, 2, 3, 4, 5]
