"""The database: one async SQLAlchemy engine per app, SQLite by default.

The URL comes from `AICP_DATABASE_URL` (PostgreSQL in team mode, e.g.
`postgresql://user:pass@host/db`), else SQLite in the data directory
(`AICP_DATA_DIR`, default ./.aicp). Plain `postgresql://` and `sqlite://`
URLs get the async drivers (asyncpg, aiosqlite).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager, closing
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Row, make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from aicp.config import StorageSettings
from aicp.errors import ConfigError
from aicp.storage.inline import InlineSqlite

#: The file the embedded database lives in, inside the data directory.
SQLITE_FILE = "aicp.db"


def async_url(url: str) -> str:
    for plain, driver in (
        ("postgresql://", "postgresql+asyncpg://"),
        ("postgres://", "postgresql+asyncpg://"),
        ("sqlite://", "sqlite+aiosqlite://"),
    ):
        if url.startswith(plain):
            return driver + url[len(plain) :]
    return url


#: URL prefix -> the sync driver of code that runs in threads (pipelines, the registry).
_SYNC_DRIVERS = (
    ("postgresql+asyncpg://", "postgresql+psycopg://"),
    ("postgresql://", "postgresql+psycopg://"),
    ("postgres://", "postgresql+psycopg://"),
    ("sqlite+aiosqlite://", "sqlite://"),
)


def sync_url(url: str) -> str:
    """`url` with a sync driver: psycopg 3 for PostgreSQL, pysqlite for SQLite."""
    for prefix, driver in _SYNC_DRIVERS:
        if url.startswith(prefix):
            return driver + url[len(prefix) :]
    return url


def default_url(data_dir: Path) -> str:
    return f"sqlite:///{data_dir / SQLITE_FILE}"


def database_url(storage: StorageSettings) -> str:
    """AICP_DATABASE_URL, else SQLite in the data directory (created if missing)."""
    if storage.database_url:
        return storage.database_url
    data_dir = Path(storage.data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    return default_url(data_dir)


def redacted(url: str) -> str:
    """`url` with its password masked, for messages and logs."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<unparseable database URL>"


def upsert_insert(dialect: str) -> Callable[..., Any]:
    """The dialect's INSERT, which has `on_conflict_do_nothing` and `on_conflict_do_update`
    (SQLite's and PostgreSQL's share their signatures)."""
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert


def plain_row(row: Row[*tuple[Any, ...]]) -> dict[str, Any]:
    """A row as a dict with plain str keys: SQLAlchemy 2.1 names columns with
    `quoted_name`, a str subclass that JSON encoders (orjson) refuse as a key."""
    return {str(k): v for k, v in row._mapping.items()}


class Database:
    def __init__(self, url: str) -> None:
        self.url = async_url(url)
        self.is_sqlite = self.url.startswith("sqlite")
        kwargs: dict[str, Any] = {}
        if self.is_sqlite:
            prepare_sqlite_file(self.url)
        else:
            kwargs.update(pool_size=10, max_overflow=20, pool_pre_ping=True)
        try:
            self.engine: AsyncEngine = create_async_engine(self.url, **kwargs)
        except ModuleNotFoundError as exc:
            raise ConfigError(
                f"database {redacted(self.url)}: driver {exc.name!r} is not installed "
                "(PostgreSQL needs `pip install 'aicp[team]'`)"
            ) from None
        if self.is_sqlite:
            event.listen(self.engine.sync_engine, "connect", sqlite_pragmas(5000))
        self._inline: InlineSqlite | None = None

    @property
    def inline(self) -> InlineSqlite | None:
        """The hot-path writer of a SQLite file (storage/inline.py); None otherwise."""
        if self._inline is None and self.sqlite_path is not None:
            self._inline = InlineSqlite(self.sqlite_path)
        return self._inline

    @property
    def sqlite_path(self) -> str | None:
        """The SQLite file (None for PostgreSQL or an in-memory database)."""
        return sqlite_file(self.url)

    @property
    def dialect(self) -> str:
        """The dialect name: sqlite or postgresql."""
        return self.engine.dialect.name

    def begin(self) -> AbstractAsyncContextManager[AsyncConnection]:
        """`async with db.begin() as conn:` one transaction, committed on success."""
        return self.engine.begin()

    def connect(self) -> AsyncConnection:
        """`async with db.connect() as conn:` a connection; commit yourself."""
        return self.engine.connect()

    async def aclose(self) -> None:
        if self._inline is not None:
            self._inline.close()
            self._inline = None
        await self.engine.dispose()


def sqlite_file(url: str) -> str | None:
    """The file of a SQLite URL, any driver (None for PostgreSQL or an in-memory database)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return None
    database = parsed.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return database


def prepare_sqlite_file(url: str) -> None:
    """Create the file's directory and put the file in WAL mode, once, up front.

    WAL is a property of the file. Switching to it takes an exclusive lock that
    SQLite does not wait for (the busy timeout does not apply), so processes that
    create the database at the same moment retry here, before any connection of
    the pool exists, rather than fail on their first query.
    """
    database = sqlite_file(url)
    if database is None:
        return
    Path(database).parent.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + 10
    while True:
        try:
            with closing(sqlite3.connect(database, timeout=5)) as conn:
                conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def sqlite_pragmas(busy_timeout_ms: int) -> Callable[[Any, Any], None]:
    """A connect hook for SQLite engines (async here, sync in pipeline/store.py)."""

    def apply(dbapi_conn: Any, _record: Any) -> None:
        # WAL lets readers run beside the one writer (set on the file up front; this
        # covers a file replaced since). NORMAL sync is durable across a crash of the
        # process (not of the machine) in WAL mode and saves an fsync per commit. A busy
        # timeout instead of "database is locked" when two processes write at once.
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cur.execute("PRAGMA journal_mode")
        if cur.fetchone()[0] != "wal":
            cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    return apply


__all__ = [
    "AsyncConnection",
    "Database",
    "async_url",
    "database_url",
    "default_url",
    "plain_row",
    "prepare_sqlite_file",
    "redacted",
    "sqlite_file",
    "sqlite_pragmas",
    "sync_url",
]
