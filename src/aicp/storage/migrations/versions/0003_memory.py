"""Memory: cached answers, project memory, route memory, feedback.

Revision ID: 0003
Revises: 0002
Created: 2026-12-01

Project memory and feedback are append-only (a change to an entry is a new
version); the triggers of migration 0002 guard them too. Cache entries and
route memory are working state: they are replaced and expire.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from aicp.storage.migrations.shared import append_only, seq_column

revision = "0003"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None

APPEND_ONLY = ("memory_entries", "feedback")


def upgrade() -> None:
    op.create_table(
        "cache_entries",
        seq_column(),
        sa.Column("id", sa.String(40), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("lookup", sa.String(64), nullable=False),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("deployment", sa.String(200), nullable=False),
        sa.Column("sensitivity", sa.String(16), nullable=False),
        sa.Column("team_id", sa.String(64), nullable=True),
        sa.Column("user_id", sa.String(64), nullable=True),
        sa.Column("key_id", sa.String(64), nullable=True),
        sa.Column("receipt_id", sa.String(64), nullable=False),
        sa.Column("reply", sa.LargeBinary(), nullable=False),
        sa.Column("prompt_tokens", sa.Integer(), nullable=False),
        sa.Column("completion_tokens", sa.Integer(), nullable=False),
        sa.Column("cost_micros", sa.BigInteger(), nullable=False),
        sa.Column("vector", sa.LargeBinary(), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_cache_entries")),
        sa.UniqueConstraint("id", name=op.f("uq_cache_entries_id")),
    )
    op.create_index("ix_cache_entries_lookup", "cache_entries", ["lookup"])
    op.create_index("ix_cache_entries_expires", "cache_entries", ["expires_at"])
    op.create_table(
        "cache_invalidations",
        seq_column(),
        sa.Column("entry_id", sa.String(40), nullable=True),
        sa.Column("model", sa.String(200), nullable=True),
        sa.Column("user_id", sa.String(64), nullable=True),
        sa.Column("key_id", sa.String(64), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_cache_invalidations")),
    )
    op.create_table(
        "cache_stats",
        sa.Column("origin", sa.String(64), nullable=False),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("hits", sa.BigInteger(), nullable=False),
        sa.Column("misses", sa.BigInteger(), nullable=False),
        sa.Column("tokens_saved", sa.BigInteger(), nullable=False),
        sa.Column("cost_saved_micros", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("origin", "model", name=op.f("pk_cache_stats")),
    )
    op.create_table(
        "memory_entries",
        seq_column(),
        sa.Column("id", sa.String(40), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.String(64), nullable=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("text", sa.String(), nullable=False),
        sa.Column("tags", sa.JSON(), nullable=False),
        sa.Column("author", sa.String(200), nullable=True),
        sa.Column("retired", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_memory_entries")),
        sa.UniqueConstraint("id", "version", name="uq_memory_entries_id_version"),
    )
    op.create_index("ix_memory_entries_project", "memory_entries", ["project_id", "created_at"])
    op.create_table(
        "route_memory",
        sa.Column("origin", sa.String(64), nullable=False),
        sa.Column("task_class", sa.String(64), nullable=False),
        sa.Column("route", sa.String(200), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("origin", "task_class", "route", name=op.f("pk_route_memory")),
    )
    op.create_table(
        "feedback",
        seq_column(),
        sa.Column("receipt_id", sa.String(64), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("comment", sa.String(2000), nullable=True),
        sa.Column("key_id", sa.String(64), nullable=True),
        sa.Column("task_class", sa.String(64), nullable=True),
        sa.Column("route", sa.String(200), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_feedback")),
    )
    op.create_index("ix_feedback_receipt", "feedback", ["receipt_id"])
    for table in APPEND_ONLY:
        append_only(table)


def downgrade() -> None:
    for table in (
        "feedback",
        "route_memory",
        "memory_entries",
        "cache_stats",
        "cache_invalidations",
        "cache_entries",
    ):
        op.drop_table(table)
