"""The receipt log: one sequenced Merkle log in the database, group-committed.

Every gateway process appends through its own writer task, and writers take
turns: each batch is one transaction under the log's lock (a PostgreSQL
transaction-scoped advisory lock; SQLite's write lock via BEGIN IMMEDIATE).
Inside it the writer reads the log's size, reloads its right edge (one row
per set bit of the size) if another process appended since, gives each
receipt the next leaf index, and inserts the leaves, the perfect subtrees
they complete and the bodies. So processes on one host or many hosts on one
PostgreSQL share one log with one sequence, as transparency logs do with one
integrating writer at a time (docs/receipts.md says why not a log per process).

Group commit: requests add their receipt to a queue and wait on a future;
the writer takes everything queued (up to `max_batch`) into one transaction,
so under load many receipts share one commit.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy.exc import IntegrityError

from aicp.config import ReceiptSettings
from aicp.errors import AicpError, ConfigError
from aicp.observability.events import EventBus
from aicp.receipts import merkle
from aicp.receipts.signing import Checkpoint, CheckpointError, Signer, Verifier
from aicp.receipts.store import (
    Pending,
    PostgresWriter,
    append_sqlite,
    load_edge,
    proof,
    size_of,
)
from aicp.storage.db import Database
from aicp.storage.schema import receipt_bodies, receipt_checkpoints, receipts

log = logging.getLogger("aicp.receipts")

#: How often the SQLite WAL is checkpointed (off the loop) while receipts are written.
WAL_CHECKPOINT_S = 1.0

#: The least time between checkpoints signed because a receipt was asked for.
MIN_ON_DEMAND_S = 1.0

#: How often bodies past their retention are deleted.
RETENTION_EVERY_S = 3600.0


class ReceiptNotFound(LookupError):
    pass


class ReceiptLog:
    def __init__(
        self,
        db: Database,
        signer: Signer,
        settings: ReceiptSettings,
        events: EventBus | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.db = db
        self.signer = signer
        self.settings = settings
        self.events = events
        self.clock = clock
        self.origin = settings.origin
        self._verifier = Verifier.parse(signer.verifier_key)
        self._queue: list[Pending] = []
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._closing = False
        #: The log as this process last wrote it: size and compact range (right edge).
        self._size = -1
        self._edge: list[tuple[int, bytes]] = []
        self.batches = 0
        self.written = 0
        self._sqlite = db.inline
        self._postgres = PostgresWriter(db.url) if db.dialect == "postgresql" else None
        if self._sqlite is None and self._postgres is None:
            raise ConfigError(f"the receipt log needs a SQLite file or PostgreSQL, not {db.url}")

    @property
    def queue_depth(self) -> int:
        return len(self._queue)

    def start(self) -> None:
        if self._tasks:
            return
        self._tasks.append(asyncio.create_task(self._write_loop(), name="aicp-receipts-writer"))
        if self.settings.checkpoint_interval_s > 0:
            self._tasks.append(
                asyncio.create_task(self._checkpoint_loop(), name="aicp-receipts-checkpoints")
            )
        if self._sqlite is not None:
            self._tasks.append(asyncio.create_task(self._wal_loop(), name="aicp-receipts-wal"))
        if self.settings.body_retention_days > 0:
            self._tasks.append(
                asyncio.create_task(self._retention_loop(), name="aicp-receipts-retention")
            )

    def append(self, pending: Pending) -> asyncio.Future[int]:
        """Queue a receipt; the future resolves to its leaf index once committed."""
        self._queue.append(pending)
        self._wake.set()
        return pending.future

    async def aclose(self) -> None:
        """Write what is queued, then stop (shutdown loses no receipt)."""
        self._closing = True
        self._wake.set()
        writer, others = (self._tasks[0], self._tasks[1:]) if self._tasks else (None, [])
        for task in others:
            task.cancel()
        if writer is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await writer
        for task in others:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        if self._queue:  # never started (tests), or the writer died: one last try
            await self._flush(self._take())
        if self._postgres is not None:
            await self._postgres.close()

    # --- writing ---------------------------------------------------------------

    def _take(self) -> list[Pending]:
        n = self.settings.max_batch
        batch, self._queue = self._queue[:n], self._queue[n:]
        return batch

    async def _write_loop(self) -> None:
        while True:
            if not self._queue:
                if self._closing:
                    return
                self._wake.clear()
                await self._wake.wait()
                # One more turn of the loop: requests finishing in this one join the batch.
                await asyncio.sleep(0)
                continue
            await self._flush(self._take())

    async def _flush(self, batch: list[Pending]) -> None:
        for attempt in range(3):
            try:
                first = await self._write(batch)
                indexes = [first + i for i in range(len(batch))]
            except Exception as exc:
                self._size = -1  # reload the edge from the database next time
                # The commit may have happened before the error (a connection lost after
                # COMMIT): then the receipts are in the log and must not go in twice.
                found = await self._written(batch)
                if found is not None:
                    indexes = found
                elif attempt == 2:
                    log.exception("receipts: a batch of %d could not be written", len(batch))
                    for p in batch:
                        if not p.future.done():
                            p.future.set_exception(exc)
                    return
                else:
                    log.warning("receipts: writing a batch failed (%r); retrying", exc)
                    await asyncio.sleep(0.05 * (attempt + 1))
                    continue
            for p, index in zip(batch, indexes, strict=True):
                if not p.future.done():
                    p.future.set_result(index)
            self.batches += 1
            self.written += len(batch)
            return

    async def _write(self, batch: list[Pending]) -> int:
        if self._sqlite is not None:
            known, edge_then = self._size, self._edge
            size, edge = await self._sqlite.transaction(
                lambda conn: append_sqlite(conn, batch, known, edge_then)
            )
        else:
            assert self._postgres is not None
            size, edge = await self._postgres.write(batch, self._size, self._edge)
        # Only after the commit: a failed transaction must not move our idea of the log.
        self._size = size + len(batch)
        self._edge = edge
        return size

    async def _written(self, batch: list[Pending]) -> list[int] | None:
        """The leaf indexes of a batch that is already in the log, else None."""
        try:
            async with self.db.connect() as conn:
                rows = await conn.execute(
                    select(receipts.c.id, receipts.c.leaf_index).where(
                        receipts.c.id.in_([p.id for p in batch])
                    )
                )
                found = {r.id: r.leaf_index for r in rows}
        except Exception:
            return None
        if len(found) != len(batch):
            return None
        return [int(found[p.id]) for p in batch]

    # --- checkpoints ------------------------------------------------------------

    async def size(self) -> int:
        async with self.db.connect() as conn:
            return await size_of(conn)

    async def root_at(self, size: int) -> bytes:
        async with self.db.connect() as conn:
            return merkle.right_edge_root(await load_edge(conn, size))

    async def latest_checkpoint(self) -> Checkpoint | None:
        found = await self._latest()
        return None if found is None else found[0]

    async def _latest(self) -> tuple[Checkpoint, float] | None:
        async with self.db.connect() as conn:
            c = receipt_checkpoints.c
            row = (
                await conn.execute(select(c.note, c.created_at).order_by(c.size.desc()).limit(1))
            ).first()
        return None if row is None else (self._parse(row.note), float(row.created_at))

    async def checkpoint_at_least(self, size: int) -> Checkpoint:
        """The newest checkpoint, or a new one when the newest is smaller than `size`.

        New ones on demand come at most one a second (MIN_ON_DEMAND_S): a client that
        fetches every receipt right after its request would otherwise have one
        checkpoint signed per request."""
        found = await self._latest()
        if found is not None:
            latest, made_at = found
            if latest.size >= size:
                return latest
            wait = MIN_ON_DEMAND_S - (self.clock() - made_at)
            if wait > 0:
                await asyncio.sleep(wait)
        made = await self.checkpoint()
        if made.size < size:  # pragma: no cover - the receipt was read from the log
            raise RuntimeError(f"the log has {made.size} receipts, fewer than {size}")
        return made

    async def checkpoint(self) -> Checkpoint:
        """Sign the log as it is now (on demand, and every checkpoint_interval_s)."""
        async with self.db.connect() as conn:
            size = await size_of(conn)
            existing = (
                await conn.execute(
                    select(receipt_checkpoints.c.note).where(receipt_checkpoints.c.size == size)
                )
            ).first()
            if existing is not None:
                return self._parse(existing.note)
            root = merkle.right_edge_root(await load_edge(conn, size))
        cp = self.signer.sign(self.origin, size, root)
        try:
            async with self.db.begin() as conn:
                await conn.execute(
                    insert(receipt_checkpoints).values(
                        size=size, root_hash=root, note=cp.note, created_at=self.clock()
                    )
                )
        except IntegrityError:
            # Another process signed this size first; its note is as good as ours.
            async with self.db.connect() as conn:
                note = (
                    await conn.execute(
                        select(receipt_checkpoints.c.note).where(receipt_checkpoints.c.size == size)
                    )
                ).scalar_one()
            return self._parse(note)
        if self.events is not None:
            self.events.emit("receipt.checkpoint", {"tree_size": size, "root_hash": root.hex()})
        return cp

    def _parse(self, note: str) -> Checkpoint:
        # A stored note is checked as any verifier would: a forged row fails here too.
        try:
            return self._verifier.open(note)
        except CheckpointError as exc:
            raise AicpError(
                f"a stored checkpoint does not verify with this gateway's key ({exc}): "
                "processes sharing a database must share receipts.signing_key",
                code="checkpoint_key_mismatch",
            ) from None

    async def _checkpoint_loop(self) -> None:
        while True:
            await asyncio.sleep(self.settings.checkpoint_interval_s)
            try:
                latest = await self.latest_checkpoint()
                if await self.size() > (latest.size if latest else 0):
                    await self.checkpoint()
            except Exception:
                log.exception("receipts: the periodic checkpoint failed")

    async def _wal_loop(self) -> None:
        # The inline writer never checkpoints (a checkpoint fsyncs, and the writer runs
        # on the loop); this keeps the WAL from growing while anything is written.
        done = 0
        while True:
            await asyncio.sleep(WAL_CHECKPOINT_S)
            writer = self._sqlite
            if writer is None or writer.commits == done:
                continue
            done = writer.commits
            try:
                await writer.checkpoint()
            except Exception as exc:
                log.warning("receipts: WAL checkpoint failed: %r", exc)

    async def _retention_loop(self) -> None:
        while True:
            try:
                await self.delete_old_bodies()
            except Exception:
                log.exception("receipts: deleting bodies past retention failed")
            await asyncio.sleep(RETENTION_EVERY_S)

    async def delete_old_bodies(self) -> int:
        cutoff = self.clock() - self.settings.body_retention_days * 86400
        async with self.db.begin() as conn:
            result = await conn.execute(
                delete(receipt_bodies).where(receipt_bodies.c.created_at < cutoff)
            )
        return int(result.rowcount or 0)

    # --- reading and proofs -------------------------------------------------------

    async def get(self, receipt_id: str) -> Any:
        async with self.db.connect() as conn:
            row = (await conn.execute(select(receipts).where(receipts.c.id == receipt_id))).first()
        if row is None:
            raise ReceiptNotFound(receipt_id)
        return row

    async def bodies(self, receipt_id: str) -> Any:
        async with self.db.connect() as conn:
            return (
                await conn.execute(
                    select(receipt_bodies).where(receipt_bodies.c.receipt_id == receipt_id)
                )
            ).first()

    async def inclusion(self, index: int, size: int) -> list[bytes]:
        async with self.db.connect() as conn:
            return await proof(conn, lambda get: merkle.inclusion_proof(index, size, get))

    async def consistency(self, old: int, new: int) -> list[bytes]:
        async with self.db.connect() as conn:
            return await proof(conn, lambda get: merkle.consistency_proof(old, new, get))

    async def bundle(self, receipt_id: str) -> dict[str, Any]:
        """The receipt with everything needed to verify it offline."""
        row = await self.get(receipt_id)
        cp = await self.checkpoint_at_least(row.leaf_index + 1)
        path = await self.inclusion(row.leaf_index, cp.size)
        import orjson

        return {
            "receipt": orjson.loads(row.data),
            "leaf_index": row.leaf_index,
            "leaf_hash": bytes(row.leaf_hash).hex(),
            "tree_size": cp.size,
            "root_hash": cp.root.hex(),
            "audit_path": [h.hex() for h in path],
            "checkpoint": cp.note,
            "verifier_key": self.signer.verifier_key,
        }
