"""The pipeline tables (storage/schema.py) through a synchronous SQLAlchemy engine.

The runner works in threads (DBOS's executor, stage workers), so this store is
sync: one engine on the aicp database, `sqlite:///...` or PostgreSQL through
psycopg 3. Every write is a single statement, most of them conditional on the
current status (`UPDATE ... WHERE status IN (...)`), so two processes racing
(a decision against a timeout, a pause against the run finishing) cannot both
win and no transaction reads before it writes (which on SQLite would risk a
lock upgrade failing without waiting for the busy timeout).
"""

from __future__ import annotations

import time
from collections.abc import Collection, Iterable, Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Engine

from aicp.pipeline.model import FINAL_RUN, PipelineRun, StageResult
from aicp.storage.db import plain_row, prepare_sqlite_file, sqlite_pragmas, sync_url, upsert_insert
from aicp.storage.schema import (
    MICROS,
    pipeline_approvals,
    pipeline_events,
    pipeline_runs,
    pipeline_stages,
)

#: Statuses a run is still in motion in (not final, not paused).
ACTIVE = ("pending", "running", "waiting_approval")


def create_sync_engine(url: str) -> Engine:
    """An engine on `url`; SQLite files get WAL, a busy timeout and foreign keys."""
    url = sync_url(url)
    if not url.startswith("sqlite"):
        return sa.create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=10)
    prepare_sqlite_file(url)
    engine = sa.create_engine(url, connect_args={"timeout": 30})
    # A longer busy timeout than the gateway's: stage writers queue behind each other.
    event.listen(engine, "connect", sqlite_pragmas(30_000))
    return engine


class PipelineStore:
    def __init__(self, database_url: str) -> None:
        self.engine = create_sync_engine(database_url)
        self._insert = upsert_insert(self.engine.dialect.name)

    def close(self) -> None:
        self.engine.dispose()

    # Most methods are one statement (see the module docstring), run by one of these.

    def _one(self, query: sa.Select[Any]) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        return None if row is None else plain_row(row)

    def _all(self, query: sa.Select[Any]) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            return [plain_row(r) for r in conn.execute(query)]

    def _write(self, statement: sa.Executable) -> int:
        """Run one write in its own transaction; how many rows it touched."""
        with self.engine.begin() as conn:
            return conn.execute(statement).rowcount

    def _changed(self, statement: sa.Executable) -> bool:
        return self._write(statement) == 1

    # --- runs -------------------------------------------------------------------------

    def create_run(
        self,
        *,
        run_id: str,
        pipeline: str,
        params: Mapping[str, Any],
        origin: Mapping[str, str],
        stages: Iterable[str],
        key_id: str | None = None,
        team_id: str | None = None,
    ) -> None:
        now = time.time()
        stage_rows = [
            {"run_id": run_id, "stage": name, "status": "pending", "attempts": 0}
            | {"receipts": [], "cost_micros": 0, "metrics": {}}
            for name in stages
        ]
        with self.engine.begin() as conn:
            conn.execute(
                pipeline_runs.insert().values(
                    id=run_id,
                    pipeline=pipeline,
                    status="pending",
                    params=dict(params),
                    origin=dict(origin),
                    key_id=key_id,
                    team_id=team_id,
                    created_at=now,
                    updated_at=now,
                )
            )
            if stage_rows:
                conn.execute(pipeline_stages.insert(), stage_rows)

    def run_row(self, run_id: str) -> dict[str, Any] | None:
        return self._one(pipeline_runs.select().where(pipeline_runs.c.id == run_id))

    def load_run(self, run_id: str) -> PipelineRun | None:
        row = self.run_row(run_id)
        return None if row is None else self._run(row, self.stage_results(run_id))

    def list_runs(
        self, *, pipeline: str | None = None, status: str | None = None, limit: int = 50
    ) -> list[PipelineRun]:
        query = pipeline_runs.select().order_by(pipeline_runs.c.created_at.desc()).limit(limit)
        if pipeline is not None:
            query = query.where(pipeline_runs.c.pipeline == pipeline)
        if status is not None:
            query = query.where(pipeline_runs.c.status == status)
        rows = self._all(query)
        stages: dict[str, dict[str, StageResult]] = {row["id"]: {} for row in rows}
        if rows:  # every run's stages in one query, not one a run
            for row in self._all(self._stages_query(pipeline_stages.c.run_id.in_(list(stages)))):
                stages[row["run_id"]][row["stage"]] = _stage_result(row)
        return [self._run(row, stages[row["id"]]) for row in rows]

    def runs_in(self, statuses: Collection[str]) -> list[dict[str, Any]]:
        return self._all(pipeline_runs.select().where(pipeline_runs.c.status.in_(list(statuses))))

    def set_status(
        self,
        run_id: str,
        status: str,
        *,
        when: Collection[str],
        error: str | None = None,
        started: bool = False,
        finished: bool = False,
    ) -> bool:
        """Move the run to `status` if it is in one of `when`; whether it moved."""
        now = time.time()
        values: dict[str, Any] = {"status": status, "updated_at": now}
        if error is not None:
            values["error"] = error
        if started:
            values["started_at"] = sa.func.coalesce(pipeline_runs.c.started_at, now)
        if finished:
            values["finished_at"] = now
        query = (
            pipeline_runs.update()
            .where(pipeline_runs.c.id == run_id, pipeline_runs.c.status.in_(list(when)))
            .values(**values)
        )
        return self._changed(query)

    def set_mlflow_run_id(self, run_id: str, mlflow_run_id: str) -> None:
        query = (
            pipeline_runs.update()
            .where(pipeline_runs.c.id == run_id, pipeline_runs.c.mlflow_run_id.is_(None))
            .values(mlflow_run_id=mlflow_run_id)
        )
        self._write(query)

    # --- stages -----------------------------------------------------------------------

    def stage_row(self, run_id: str, stage: str) -> dict[str, Any] | None:
        c = pipeline_stages.c
        return self._one(pipeline_stages.select().where(c.run_id == run_id, c.stage == stage))

    def stage_result(self, run_id: str, stage: str) -> StageResult | None:
        row = self.stage_row(run_id, stage)
        return None if row is None else _stage_result(row)

    def stage_results(self, run_id: str) -> dict[str, StageResult]:
        query = self._stages_query(pipeline_stages.c.run_id == run_id)
        return {row["stage"]: _stage_result(row) for row in self._all(query)}

    @staticmethod
    def _stages_query(where: sa.ColumnElement[bool]) -> sa.Select[Any]:
        """Stage rows in the order a run shows them: by start, unstarted last."""
        c = pipeline_stages.c
        return (
            pipeline_stages.select().where(where).order_by(c.started_at.asc().nulls_last(), c.stage)
        )

    def update_stage(
        self, run_id: str, stage: str, *, when: Collection[str] | None = None, **values: Any
    ) -> bool:
        """Set columns of a stage row (if its status is in `when`); whether it changed."""
        c = pipeline_stages.c
        query = pipeline_stages.update().where(c.run_id == run_id, c.stage == stage)
        if when is not None:
            query = query.where(c.status.in_(list(when)))
        return self._changed(query.values(**values))

    def mark_stages(self, run_id: str, status: str, *, when: Collection[str]) -> None:
        c = pipeline_stages.c
        query = (
            pipeline_stages.update()
            .where(c.run_id == run_id, c.status.in_(list(when)))
            .values(status=status)
        )
        self._write(query)

    # --- events -----------------------------------------------------------------------

    def append_event(self, run_id: str, type_: str, data: Mapping[str, Any], when: float) -> int:
        query = pipeline_events.insert().values(run_id=run_id, type=type_, time=when, data=data)
        with self.engine.begin() as conn:
            key = conn.execute(query).inserted_primary_key
        return int(key[0]) if key else 0

    def events(self, run_id: str, after: int = 0, limit: int = 1000) -> list[dict[str, Any]]:
        c = pipeline_events.c
        query = (
            sa.select(c.seq, c.type, c.time, c.data)
            .where(c.run_id == run_id, c.seq > after)
            .order_by(c.seq)
            .limit(limit)
        )
        return self._all(query)

    # --- approvals --------------------------------------------------------------------

    def request_approval(
        self, run_id: str, stage: str, *, message: str | None, default: str, timeout_s: float | None
    ) -> bool:
        """Record a pending approval unless one exists; whether this call created it."""
        now = time.time()
        query = (
            self._insert(pipeline_approvals)
            .values(
                run_id=run_id,
                stage=stage,
                status="pending",
                message=message,
                default=default,
                requested_at=now,
                deadline=None if timeout_s is None else now + timeout_s,
            )
            .on_conflict_do_nothing(index_elements=["run_id", "stage"])
        )
        return self._changed(query)

    def approval(self, run_id: str, stage: str) -> dict[str, Any] | None:
        c = pipeline_approvals.c
        return self._one(pipeline_approvals.select().where(c.run_id == run_id, c.stage == stage))

    def decide_approval(
        self,
        run_id: str,
        stage: str,
        status: str,
        *,
        by: str | None = None,
        comment: str | None = None,
        before_deadline: bool = True,
    ) -> bool:
        """Settle a pending approval (a person's decision only before its deadline)."""
        now = time.time()
        c = pipeline_approvals.c
        query = pipeline_approvals.update().where(
            c.run_id == run_id, c.stage == stage, c.status == "pending"
        )
        if before_deadline:
            query = query.where(sa.or_(c.deadline.is_(None), c.deadline > now), _run_open())
        values = {"status": status, "decided_at": now, "decided_by": by, "comment": comment}
        return self._changed(query.values(**values))

    def approvals(self, run_id: str | None = None) -> list[dict[str, Any]]:
        """Pending approvals of runs still going (a finished run's are moot)."""
        c = pipeline_approvals.c
        query = (
            pipeline_approvals.select()
            .where(c.status == "pending", _run_open())
            .order_by(c.requested_at)
        )
        if run_id is not None:
            query = query.where(c.run_id == run_id)
        return self._all(query)

    @staticmethod
    def _run(row: Mapping[str, Any], stages: dict[str, StageResult]) -> PipelineRun:
        return PipelineRun(
            id=row["id"],
            pipeline=row["pipeline"],
            status=row["status"],
            params=dict(row["params"] or {}),
            stages=stages,
            created_at=row["created_at"],
            finished_at=row["finished_at"],
            error=row["error"],
            key_id=row["key_id"],
            team_id=row["team_id"],
            mlflow_run_id=row["mlflow_run_id"],
        )


def _run_open() -> sa.ColumnElement[bool]:
    """The approval's run has not ended."""
    runs = pipeline_runs.c
    return sa.exists().where(
        runs.id == pipeline_approvals.c.run_id, runs.status.not_in(list(FINAL_RUN))
    )


def _stage_result(row: Mapping[str, Any]) -> StageResult:
    return StageResult(
        stage=row["stage"],
        status=row["status"],
        output=row["output"],
        error=row["error"],
        attempts=row["attempts"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        receipts=list(row["receipts"] or []),
        cost_usd=(row["cost_micros"] or 0) / MICROS,
        metrics=dict(row["metrics"] or {}),
        report=row["report"],
    )
