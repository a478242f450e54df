"""Memory vectors: the local embedding of each memory entry version, per embedder,
so that every gateway process reads it instead of computing it again.

Revision ID: 0006
Revises: 0005
Created: 2026-12-01

Vectors are derived from `memory_entries` and may be computed again, so the
table is not append-only.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision: str | None = "0005"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "memory_vectors",
        sa.Column("id", sa.String(40), nullable=False),
        sa.Column("version", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("embedder", sa.String(64), nullable=False),
        sa.Column("dims", sa.Integer(), nullable=False),
        sa.Column("vector", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id", "version", "embedder", name=op.f("pk_memory_vectors")),
    )


def downgrade() -> None:
    op.drop_table("memory_vectors")
