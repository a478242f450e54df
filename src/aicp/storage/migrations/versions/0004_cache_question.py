"""The semantic cache's question text, to rebuild the in-memory index on start-up.

Revision ID: 0004
Revises: 0003
Created: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision: str | None = "0003"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.add_column("cache_entries", sa.Column("question", sa.String(), nullable=True))


def downgrade() -> None:
    op.drop_column("cache_entries", "question")
