"""What several migrations build the same way. A migration's effect must never
change once released, so what lives here is only ever added to, not edited."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


def seq_column() -> sa.Column:  # type: ignore[type-arg]
    """An append-only table's sequence: BIGINT on PostgreSQL, SQLite's rowid alias."""
    return sa.Column(
        "seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True
    )


def append_only(table: str) -> None:
    """Refuse UPDATE and DELETE on `table` (PostgreSQL: migration 0002's function)."""
    if op.get_context().dialect.name == "postgresql":
        op.execute(
            f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION aicp_append_only()"
        )
        return
    for action in ("UPDATE", "DELETE"):
        op.execute(
            f"CREATE TRIGGER {table}_no_{action.lower()} BEFORE {action} ON {table} "
            f"BEGIN SELECT RAISE(ABORT, 'aicp: {table} is append-only: {action} refused'); END"
        )
