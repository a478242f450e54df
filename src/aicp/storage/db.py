"""The database: one async SQLAlchemy engine per app, SQLite by default.

The URL comes from `AICP_DATABASE_URL` (PostgreSQL in team mode, e.g.
`postgresql://user:pass@host/db`), else SQLite in the data directory
(`AICP_DATA_DIR`, default ./.aicp). Plain `postgresql://` and `sqlite://`
URLs get the async drivers (asyncpg, aiosqlite).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine


def async_url(url: str) -> str:
    for plain, driver in (
        ("postgresql://", "postgresql+asyncpg://"),
        ("postgres://", "postgresql+asyncpg://"),
        ("sqlite://", "sqlite+aiosqlite://"),
    ):
        if url.startswith(plain):
            return driver + url[len(plain) :]
    return url


def default_url(data_dir: Path) -> str:
    return f"sqlite:///{data_dir / 'aicp.db'}"


class Database:
    def __init__(self, url: str) -> None:
        self.url = async_url(url)
        self.is_sqlite = self.url.startswith("sqlite")
        kwargs: dict[str, Any] = {}
        if not self.is_sqlite:
            kwargs.update(pool_size=10, max_overflow=20, pool_pre_ping=True)
        self.engine: AsyncEngine = create_async_engine(self.url, **kwargs)
        if self.is_sqlite:
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)

    def begin(self) -> Any:
        """`async with db.begin() as conn:` one transaction."""
        return self.engine.begin()

    def connect(self) -> Any:
        return self.engine.connect()

    async def aclose(self) -> None:
        await self.engine.dispose()


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    # WAL lets readers run beside the one writer; a busy timeout instead of
    # "database is locked" when two processes write at once.
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=5000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


__all__ = ["AsyncConnection", "Database", "async_url", "default_url"]
