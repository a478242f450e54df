"""The hot-path SQLite writer: one stdlib connection used on the event loop's thread.

The receipt log (every response waits for its commit) and the spend ledger
write through this one connection, inline: a transaction is a few hundred
microseconds of plain work. Measured (docs/decisions.md), the alternatives
cost more: aiosqlite makes every statement a hop to its thread; a thread of
our own drops and retakes the GIL around every statement, and with the loop
busy each retake waits, so a transaction that holds SQLite's write lock on
another thread can stall every other writer for milliseconds.

The connection has no busy timeout: when another process holds the write
lock, `BEGIN IMMEDIATE` fails at once and `transaction` sleeps and tries
again, so the loop never blocks on a lock. It never checkpoints the WAL
either (a checkpoint fsyncs); `checkpoint` runs on a thread, and the owner
calls it periodically.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")

#: How long a transaction waits for another process's write lock before failing.
LOCK_WAIT_S = 10.0


def is_busy(exc: BaseException) -> bool:
    """SQLite's 'database is locked' / 'busy': another writer holds the lock."""
    text = str(exc).lower()
    return isinstance(exc, sqlite3.OperationalError) and ("locked" in text or "busy" in text)


class InlineSqlite:
    def __init__(self, path: str) -> None:
        self.path = path
        self.thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="aicp-wal")
        self._conn: sqlite3.Connection | None = None
        #: Transactions committed (the WAL checkpoint runs only when this moved).
        self.commits = 0

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            conn = sqlite3.connect(
                self.path, timeout=0, isolation_level=None, check_same_thread=False
            )
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA wal_autocheckpoint=0")
            self._conn = conn
        return self._conn

    async def transaction(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """`work(conn)` inside BEGIN IMMEDIATE ... COMMIT, retried while the lock is held
        elsewhere; `work` must not await (it runs inline) and may be run more than once
        only if it failed before writing (it is never retried after it started)."""
        conn = self._connection()
        delay, waited = 0.0002, 0.0
        while True:
            try:
                conn.execute("BEGIN IMMEDIATE")
                break
            except sqlite3.OperationalError as exc:
                if not is_busy(exc) or waited > LOCK_WAIT_S:
                    raise
            await asyncio.sleep(delay)
            waited += delay
            delay = min(delay * 2, 0.002)
        try:
            result = work(conn)
            conn.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            raise
        self.commits += 1
        return result

    def _checkpoint(self) -> None:
        with contextlib.closing(sqlite3.connect(self.path, timeout=5)) as conn:
            conn.execute("PRAGMA wal_checkpoint(PASSIVE)")

    async def checkpoint(self) -> None:
        """A passive WAL checkpoint, on a thread (it fsyncs)."""
        await asyncio.get_running_loop().run_in_executor(self.thread, self._checkpoint)

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        self.thread.shutdown()
