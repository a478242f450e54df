"""Receipts: the Merkle log's leaves and nodes, signed checkpoints, bodies.

Revision ID: 0002
Revises: 0001
Created: 2026-12-01

The leaf, node and checkpoint tables are append-only in the database too:
triggers refuse UPDATE and DELETE (and TRUNCATE on PostgreSQL). The log's own
hashes are what detect tampering; the triggers stop accidents and careless
tools from rewriting history.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None

APPEND_ONLY = ("receipts", "receipt_nodes", "receipt_checkpoints")


def upgrade() -> None:
    op.create_table(
        "receipts",
        sa.Column("leaf_index", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("key_id", sa.String(64), nullable=True),
        sa.Column("team_id", sa.String(64), nullable=True),
        sa.Column("model", sa.String(200), nullable=True),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("leaf_hash", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("leaf_index", name=op.f("pk_receipts")),
        sa.UniqueConstraint("id", name=op.f("uq_receipts_id")),
    )
    op.create_index("ix_receipts_time", "receipts", ["created_at"])
    op.create_index("ix_receipts_key_time", "receipts", ["key_id", "created_at"])
    op.create_index("ix_receipts_team_time", "receipts", ["team_id", "created_at"])
    op.create_table(
        "receipt_nodes",
        sa.Column("level", sa.SmallInteger(), autoincrement=False, nullable=False),
        sa.Column("idx", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("hash", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("level", "idx", name=op.f("pk_receipt_nodes")),
    )
    op.create_table(
        "receipt_checkpoints",
        sa.Column("size", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("root_hash", sa.LargeBinary(), nullable=False),
        sa.Column("note", sa.String(2000), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("size", name=op.f("pk_receipt_checkpoints")),
    )
    op.create_table(
        "receipt_bodies",
        sa.Column("receipt_id", sa.String(64), nullable=False),
        sa.Column("kept", sa.String(16), nullable=False),
        sa.Column("request", sa.LargeBinary(), nullable=True),
        sa.Column("response", sa.LargeBinary(), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("receipt_id", name=op.f("pk_receipt_bodies")),
    )
    op.create_index("ix_receipt_bodies_time", "receipt_bodies", ["created_at"])
    if op.get_context().dialect.name == "postgresql":
        op.execute(
            "CREATE FUNCTION aicp_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ "
            "BEGIN RAISE EXCEPTION 'aicp: % is append-only: % refused', TG_TABLE_NAME, TG_OP "
            "USING ERRCODE = 'insufficient_privilege'; END $$"
        )
        for table in APPEND_ONLY:
            op.execute(
                f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION aicp_append_only()"
            )
            op.execute(
                f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
                "FOR EACH STATEMENT EXECUTE FUNCTION aicp_append_only()"
            )
    else:
        for table in APPEND_ONLY:
            for action in ("UPDATE", "DELETE"):
                op.execute(
                    f"CREATE TRIGGER {table}_no_{action.lower()} BEFORE {action} ON {table} "
                    f"BEGIN SELECT RAISE(ABORT, 'aicp: {table} is append-only: "
                    f"{action} refused'); END"
                )


def downgrade() -> None:
    # Dropping the tables drops their triggers.
    for table in ("receipt_bodies", "receipt_checkpoints", "receipt_nodes", "receipts"):
        op.drop_table(table)
    if op.get_context().dialect.name == "postgresql":
        op.execute("DROP FUNCTION aicp_append_only()")
