"""Alembic migrations, run by `aicp.storage.migrate` (no alembic.ini needed)."""
