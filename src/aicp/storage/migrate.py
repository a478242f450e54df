"""Schema migrations, applied at start-up and by `aicp db upgrade`.

Stub until the Alembic migrations land: creates the tables of schema.py.
"""

from __future__ import annotations

from aicp.storage.db import Database
from aicp.storage.schema import metadata


async def upgrade(db: Database) -> None:
    async with db.begin() as conn:
        await conn.run_sync(metadata.create_all)
