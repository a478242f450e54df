"""Schema migrations (Alembic), applied at start-up and by `aicp db upgrade`.

The migration scripts ship inside the package (`storage/migrations`) and run on
the app's own async engine: Alembic gets a sync view of one connection through
`run_sync`, passed in `config.attributes`, so this works inside a running
event loop and needs no alembic.ini.

Several processes may start at once (uvicorn workers, replicas). The upgrade
is one transaction (PostgreSQL and SQLite both have transactional DDL) taken
under a lock: a transaction-scoped advisory lock on PostgreSQL, the database's
write lock (`BEGIN IMMEDIATE`) on SQLite. The second process waits, then finds
the schema at head and does nothing.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection

from aicp.errors import AicpError
from aicp.storage.db import Database, redacted

log = logging.getLogger("aicp.storage")

MIGRATIONS = Path(__file__).with_name("migrations")

#: Every aicp process takes the same PostgreSQL advisory lock ("aicp" in ASCII).
ADVISORY_LOCK = 0x61696370


def alembic_config(connection: Connection | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("path_separator", "os")
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def head() -> str:
    """The newest revision this version of aicp knows."""
    revision = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if revision is None:  # pragma: no cover - the package ships its migrations
        raise AicpError(f"no migrations found in {MIGRATIONS}")
    return revision


async def current(db: Database) -> str | None:
    """The revision the database is at; None for a database aicp never touched."""
    async with db.connect() as conn:
        return await conn.run_sync(_current)


async def upgrade(db: Database) -> str:
    """Bring the database to head; returns the revision it is at afterwards."""
    target = head()
    before = await current(db)
    if before == target:
        return target
    _check_known(db, before)
    async with _one_alembic_at_a_time(), db.begin() as conn:
        await _lock(conn)
        before = await conn.run_sync(_current)
        if before != target:
            _check_known(db, before)
            await conn.run_sync(_upgrade)
        after = await conn.run_sync(_current)
    if before != after:
        log.info("database %s migrated from %s to %s", redacted(db.url), before, after)
    return after or target


def _current(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


def _upgrade(connection: Connection) -> None:
    command.upgrade(alembic_config(connection), "head")


def _check_known(db: Database, revision: str | None) -> None:
    """A database migrated by a newer aicp cannot be run by this one; say so plainly."""
    if revision is None:
        return
    script = ScriptDirectory.from_config(alembic_config())
    if revision not in {r.revision for r in script.walk_revisions()}:
        raise AicpError(
            f"database {redacted(db.url)} is at schema revision {revision}, which this "
            f"version of aicp does not know (its newest is {head()}): upgrade aicp"
        )


#: Alembic keeps the running migration's `op` and `context` in module globals, so
#: two migrations in one process (two databases, or two threads) must not
#: interleave. Process-wide, hence a module-level lock.
_ALEMBIC = threading.Lock()


@asynccontextmanager
async def _one_alembic_at_a_time() -> AsyncIterator[None]:
    # Polled rather than awaited in a thread (an asyncio.Event cannot span threads and
    # loops): a cancelled waiter then holds nothing.
    while not _ALEMBIC.acquire(blocking=False):  # noqa: ASYNC110 - see above
        await asyncio.sleep(0.01)
    try:
        yield
    finally:
        _ALEMBIC.release()


async def _lock(conn: AsyncConnection) -> None:
    if conn.dialect.name == "postgresql":
        # Released when the transaction ends, whatever happens to this process.
        await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": ADVISORY_LOCK})
    elif conn.dialect.name == "sqlite":
        # Takes the write lock now rather than at the first DDL statement, so two
        # processes cannot both decide that the tables are missing.
        await conn.exec_driver_sql("BEGIN IMMEDIATE")
