"""Pipelines and the model registry: definitions, runs, stages, events, approvals,
the gateway aliases registered models drive, and the registry's audit log.

Revision ID: 0005
Revises: 0004
Created: 2026-12-01

Run events and the registry audit log are append-only (triggers as in 0002).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from aicp.storage.migrations.shared import append_only, seq_column

revision = "0005"
down_revision: str | None = "0004"
branch_labels: str | None = None
depends_on: str | None = None

APPEND_ONLY = ("pipeline_events", "registry_audit")


def upgrade() -> None:
    op.create_table(
        "pipeline_definitions",
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("origin", sa.JSON(), nullable=False),
        sa.Column("created_by", sa.String(64), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_pipeline_definitions")),
    )
    op.create_table(
        "pipeline_runs",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("pipeline", sa.String(200), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("origin", sa.JSON(), nullable=False),
        sa.Column("key_id", sa.String(64), nullable=True),
        sa.Column("team_id", sa.String(64), nullable=True),
        sa.Column("mlflow_run_id", sa.String(64), nullable=True),
        sa.Column("error", sa.String(), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("started_at", sa.Float(), nullable=True),
        sa.Column("finished_at", sa.Float(), nullable=True),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pipeline_runs")),
    )
    op.create_index("ix_pipeline_runs_pipeline", "pipeline_runs", ["pipeline", "created_at"])
    op.create_index("ix_pipeline_runs_status", "pipeline_runs", ["status"])
    op.create_table(
        "pipeline_stages",
        sa.Column("run_id", sa.String(64), nullable=False),
        sa.Column("stage", sa.String(200), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("output", sa.JSON(), nullable=True),
        sa.Column("error", sa.String(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("receipts", sa.JSON(), nullable=False),
        sa.Column("cost_micros", sa.BigInteger(), nullable=False),
        sa.Column("metrics", sa.JSON(), nullable=False),
        sa.Column("report", sa.JSON(), nullable=True),
        sa.Column("started_at", sa.Float(), nullable=True),
        sa.Column("finished_at", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("run_id", "stage", name=op.f("pk_pipeline_stages")),
    )
    op.create_table(
        "pipeline_events",
        seq_column(),
        sa.Column("run_id", sa.String(64), nullable=False),
        sa.Column("type", sa.String(64), nullable=False),
        sa.Column("time", sa.Float(), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_pipeline_events")),
    )
    op.create_index("ix_pipeline_events_run", "pipeline_events", ["run_id", "seq"])
    op.create_table(
        "pipeline_approvals",
        sa.Column("run_id", sa.String(64), nullable=False),
        sa.Column("stage", sa.String(200), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("message", sa.String(2000), nullable=True),
        sa.Column("default", sa.String(20), nullable=False),
        sa.Column("requested_at", sa.Float(), nullable=False),
        sa.Column("deadline", sa.Float(), nullable=True),
        sa.Column("decided_at", sa.Float(), nullable=True),
        sa.Column("decided_by", sa.String(64), nullable=True),
        sa.Column("comment", sa.String(2000), nullable=True),
        sa.PrimaryKeyConstraint("run_id", "stage", name=op.f("pk_pipeline_approvals")),
    )
    op.create_table(
        "model_bindings",
        sa.Column("registered_model", sa.String(200), nullable=False),
        sa.Column("alias", sa.String(200), nullable=False),
        sa.Column("version", sa.String(32), nullable=True),
        sa.Column("target", sa.String(200), nullable=True),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.Column("updated_by", sa.String(64), nullable=True),
        sa.PrimaryKeyConstraint("registered_model", name=op.f("pk_model_bindings")),
        sa.UniqueConstraint("alias", name=op.f("uq_model_bindings_alias")),
    )
    op.create_table(
        "registry_audit",
        seq_column(),
        sa.Column("time", sa.Float(), nullable=False),
        sa.Column("actor", sa.String(64), nullable=True),
        sa.Column("action", sa.String(20), nullable=False),
        sa.Column("registered_model", sa.String(200), nullable=False),
        sa.Column("version", sa.String(32), nullable=True),
        sa.Column("previous_version", sa.String(32), nullable=True),
        sa.Column("alias", sa.String(200), nullable=True),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_registry_audit")),
    )
    op.create_index("ix_registry_audit_model", "registry_audit", ["registered_model", "seq"])
    for table in APPEND_ONLY:
        append_only(table)


def downgrade() -> None:
    for table in (
        "registry_audit",
        "model_bindings",
        "pipeline_approvals",
        "pipeline_events",
        "pipeline_stages",
        "pipeline_runs",
        "pipeline_definitions",
    ):
        op.drop_table(table)
