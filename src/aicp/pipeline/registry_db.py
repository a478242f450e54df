"""The registry's own database access: a sync engine and one writer at a time.

The registry runs in worker threads and the CLI, so it uses a sync SQLAlchemy
engine on the app's database: plain SQLite, or PostgreSQL through psycopg 3
(`postgresql://` and `postgresql+asyncpg://` URLs are rewritten).

Every write (register, promote, rollback) extends one hash chain, so writers
take turns: on SQLite the transaction starts with `BEGIN IMMEDIATE` (the
file's write lock, waited for through the busy timeout); on PostgreSQL it
takes a transaction-scoped advisory lock first. Inside, the writer reads the
chain's last hash and appends after it, and nobody else can in between.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, func, select
from sqlalchemy.engine import make_url

from aicp.storage.db import sync_url

#: Every aicp process takes this PostgreSQL advisory lock to write the registry
#: ("aicr" in ASCII; migrations use "aicp").
REGISTRY_LOCK = 0x61696372

#: How long a SQLite writer waits for another one (ms).
BUSY_TIMEOUT_MS = 30_000


class RegistryDb:
    def __init__(self, url: str) -> None:
        self.url = sync_url(url)
        self.is_sqlite = make_url(self.url).get_backend_name() == "sqlite"
        kwargs: dict[str, Any] = {} if self.is_sqlite else {"pool_pre_ping": True}
        self.engine: Engine = create_engine(self.url, **kwargs)
        if self.is_sqlite:
            event.listen(self.engine, "connect", _sqlite_connect)
            event.listen(self.engine, "begin", _sqlite_begin)
        self._writer = self.engine.execution_options(aicp_write=True)

    @contextmanager
    def read(self) -> Iterator[Connection]:
        with self.engine.connect() as conn:
            yield conn

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """One transaction holding the registry's write lock, committed on success."""
        with self._writer.begin() as conn:
            if not self.is_sqlite:
                conn.execute(select(func.pg_advisory_xact_lock(REGISTRY_LOCK)))
            yield conn

    def close(self) -> None:
        self.engine.dispose()


def _sqlite_connect(dbapi_conn: Any, _record: Any) -> None:
    # The sqlite3 module's own transaction handling would issue a plain BEGIN
    # before the first write only; we issue BEGIN ourselves (see _sqlite_begin).
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    cur.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def _sqlite_begin(conn: Connection) -> None:
    write = conn.get_execution_options().get("aicp_write", False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")
