"""Alembic's entry point: run the migrations on the connection aicp hands over.

`aicp.storage.migrate` opens the connection (and the transaction, and the lock
that keeps concurrent start-ups apart) and passes it in `config.attributes`;
this script never makes its own engine.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from aicp.storage.schema import metadata


def run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        # SQLite cannot ALTER most things; batch mode rebuilds the table instead.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    raise RuntimeError("aicp migrations run online only: use `aicp db upgrade`")
_connection = context.config.attributes.get("connection")
if not isinstance(_connection, Connection):
    raise RuntimeError("run aicp migrations through aicp.storage.migrate or `aicp db upgrade`")
run(_connection)
