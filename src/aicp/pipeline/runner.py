"""The durable runner: executes compiled `Pipeline`s on DBOS, resumable after a crash.

    engine = PipelineEngine(database_url=..., data_dir=...)
    engine.start()                  # launches DBOS; unfinished runs of this database resume
    run_id = engine.submit(pipeline, {"n": 3})
    engine.wait(run_id, timeout=60)
    engine.stop()

A run is one DBOS workflow (its id is the run id) in DBOS's system database:
SQLite at `data_dir/dbos.sqlite` by default, or the aicp PostgreSQL database
itself (DBOS keeps its own `dbos` schema). Our tables (pipeline_runs, _stages,
_events, _approvals) are the record people read; stage rows double as
checkpoints, beside DBOS's step outputs.

Control works from any process that has started an engine on the same
databases: `cancel` (final, at the next stage boundary), `pause` / `resume`
(DBOS cancel / resume: finished stages are not run again). `decide` (an
approval) and every reader need no DBOS at all.

DBOS is one per process: one engine runs at a time. Processes that share a
system database must have distinct `executor_id`s while they run together (a
process that starts recovers the pending runs of its executor id, so the one
that replaces a crashed process should reuse its id).
"""

from __future__ import annotations

import builtins
import time
import uuid
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

from sqlalchemy.exc import IntegrityError

from aicp.errors import InvalidRequest, RequestError
from aicp.pipeline import runner_dbos as dbos
from aicp.pipeline.builtins import TYPES
from aicp.pipeline.distributed import RayRunner
from aicp.pipeline.model import FINAL_RUN, Llm, Pipeline, PipelineRun, Tracker
from aicp.pipeline.runner_exec import (
    Events,
    EventSink,
    LlmFactory,
    Resolver,
    Runtime,
    ServicesFactory,
    describe,
)
from aicp.pipeline.runner_params import check_params
from aicp.pipeline.runner_runs import fail_run, paused_by_dbos
from aicp.pipeline.store import ACTIVE, PipelineStore
from aicp.storage.db import sync_url

#: The system database DBOS gets in the data directory when none is given.
DBOS_SQLITE = "dbos.sqlite"
#: A run still `pending` this long after it was created, unknown to DBOS, never started.
NEVER_STARTED_S = 60.0


def default_resolve(origin: Mapping[str, str]) -> Pipeline:
    from aicp.pipeline.load import from_origin

    return from_origin(origin)


class PipelineEngine:
    def __init__(
        self,
        *,
        database_url: str,
        system_database_url: str | None = None,
        data_dir: Path | str,
        llm: Llm | None = None,
        llm_for: LlmFactory | None = None,
        services_for: ServicesFactory | None = None,
        tracker: Tracker | None = None,
        on_event: EventSink | None = None,
        resolve: Resolver | None = None,
        ray_address: str | None = None,
        app_name: str = "aicp",
        executor_id: str = "local",
        poll_interval_s: float = 0.25,
        dbos_log_level: str = "WARNING",
    ) -> None:
        self.data_dir = Path(data_dir)
        self.store = PipelineStore(database_url)
        self.system_database_url = system_database_url or self._default_system_url(database_url)
        self.events_sink = Events(self.store, on_event)
        self._runtime_args: dict[str, Any] = {
            "llm": llm,
            "llm_for": llm_for,
            "services_for": services_for,
            "tracker": tracker,
            "resolve": resolve or default_resolve,
            "poll_s": poll_interval_s,
        }
        self.ray_address = ray_address
        self.app_name = app_name
        self.executor_id = executor_id
        self.dbos_log_level = dbos_log_level
        self._rt: Runtime | None = None
        #: Pipelines submitted to this engine, by run id: kept across stop() and start().
        self._pipelines: dict[str, Pipeline] = {}

    def _default_system_url(self, database_url: str) -> str:
        url = sync_url(database_url)
        if url.startswith("postgresql"):
            return url
        return f"sqlite:///{self.data_dir / DBOS_SQLITE}"

    # --- lifecycle ----------------------------------------------------------------------

    @property
    def started(self) -> bool:
        return self._rt is not None

    def start(self) -> None:
        """Launch DBOS; pending runs of this system database (and executor id) resume."""
        if self._rt is not None:
            raise RuntimeError("this pipeline engine is already started")
        rt = Runtime(
            store=self.store,
            events=self.events_sink,
            ray=RayRunner(self.ray_address),
            pipelines=self._pipelines,
            **self._runtime_args,
        )
        dbos.launch(
            rt,
            system_database_url=self.system_database_url,
            app_name=self.app_name,
            executor_id=self.executor_id,
            log_level=self.dbos_log_level,
        )
        self._rt = rt
        self._reconcile()

    def stop(self) -> None:
        """Shut DBOS down (runs in progress resume at the next start); idempotent."""
        rt, self._rt = self._rt, None
        if rt is None:
            return
        try:
            dbos.destroy(rt)
        finally:
            rt.ray.shutdown()

    def close(self) -> None:
        self.stop()
        self.store.close()

    # --- runs ---------------------------------------------------------------------------

    def submit(
        self,
        pipeline: Pipeline,
        params: Mapping[str, Any] | None = None,
        *,
        key_id: str | None = None,
        team_id: str | None = None,
        run_id: str | None = None,
    ) -> str:
        """Start a run; its id. InvalidRequest for wrong parameters or an unknown stage type."""
        rt = self._running()
        unknown = sorted({s.type for s in pipeline.stages.values()} - set(TYPES))
        if unknown:
            raise InvalidRequest(f"pipeline {pipeline.name!r}: unknown stage type {unknown[0]!r}")
        stored = check_params(pipeline, params)
        run_id = run_id or f"run_{uuid.uuid4().hex}"
        try:
            self.store.create_run(
                run_id=run_id,
                pipeline=pipeline.name,
                params=stored,
                origin=pipeline.origin,
                stages=list(pipeline.stages),
                key_id=key_id,
                team_id=team_id,
            )
        except IntegrityError:
            raise RequestError(
                f"a run {run_id!r} exists already", status=409, code="run_exists"
            ) from None
        rt.pipelines[run_id] = pipeline
        try:
            dbos.enqueue(run_id)
        except Exception as exc:
            fail_run(rt, run_id, f"the run could not be started: {describe(exc)}")
            raise
        return run_id

    def get(self, run_id: str) -> PipelineRun | None:
        return self.store.load_run(run_id)

    def list(
        self, *, pipeline: str | None = None, status: str | None = None, limit: int = 50
    ) -> builtins.list[PipelineRun]:
        return self.store.list_runs(pipeline=pipeline, status=status, limit=limit)

    def wait(
        self, run_id: str, timeout: float, *, until: Collection[str] = FINAL_RUN
    ) -> PipelineRun:
        """The run once its status is one of `until` (final by default), or at `timeout`."""
        deadline = time.monotonic() + timeout
        while True:
            run = self._run(run_id)
            if run.status in until or time.monotonic() >= deadline:
                return run
            time.sleep(0.05)

    def cancel(self, run_id: str) -> PipelineRun:
        """Stop the run for good: no stage starts after this; running ones are abandoned."""
        rt = self._running()
        row = self._row(run_id)
        if row["status"] in FINAL_RUN:
            raise _conflict(run_id, row["status"], "cancelled")
        if self.store.set_status(run_id, "cancelled", when=(*ACTIVE, "paused"), finished=True):
            self.store.mark_stages(run_id, "cancelled", when=("pending", "running"))
            dbos.cancel(run_id)
            rt.pipelines.pop(run_id, None)
            self.events_sink.emit("pipeline.run.cancelled", row, status="cancelled")
            rt.track_run(self.store.load_run(run_id))
        return self._run(run_id)

    def pause(self, run_id: str) -> PipelineRun:
        """Start no further stage; `resume` goes on from the checkpoints."""
        self._running()
        row = self._row(run_id)
        if row["status"] == "paused":
            return self._run(run_id)
        if row["status"] not in ACTIVE:
            raise _conflict(run_id, row["status"], "paused")
        # DBOS first: once the row says paused, the workflow is stopped or stopping.
        dbos.cancel(run_id)
        if self.store.set_status(run_id, "paused", when=ACTIVE):
            self.events_sink.emit("pipeline.run.paused", row, status="paused")
        return self._run(run_id)

    def resume(self, run_id: str) -> PipelineRun:
        self._running()
        row = self._row(run_id)
        if row["status"] in ACTIVE:
            return self._run(run_id)
        if row["status"] != "paused":
            raise _conflict(run_id, row["status"], "resumed")
        if self.store.set_status(run_id, "running", when=("paused",)):
            try:
                dbos.resume(run_id)
            except Exception:
                self.store.set_status(run_id, "paused", when=("running",))
                raise
            self.events_sink.emit("pipeline.run.resumed", row, status="running")
        return self._run(run_id)

    # --- approvals and events (no DBOS needed) --------------------------------------

    def pending_approvals(self, run_id: str | None = None) -> builtins.list[dict[str, Any]]:
        return self.store.approvals(run_id)

    def decide(
        self,
        run_id: str,
        stage: str,
        approve: bool,
        *,
        by: str | None = None,
        comment: str | None = None,
    ) -> dict[str, Any]:
        """Settle a pending approval; the waiting run sees it within its poll interval."""
        status = "approved" if approve else "rejected"
        if not self.store.decide_approval(run_id, stage, status, by=by, comment=comment):
            raise self._undecidable(run_id, stage)
        row = self._row(run_id)
        self.events_sink.emit(
            "pipeline.approval.decided",
            row,
            stage=stage,
            status=status,
            approved=approve,
            by=by,
            comment=comment,
            default=False,
        )
        return self.store.approval(run_id, stage) or {}

    def events(
        self, run_id: str, after: int = 0, limit: int = 1000
    ) -> builtins.list[dict[str, Any]]:
        """The run's persisted events after `seq` `after`, oldest first."""
        return self.store.events(run_id, after, limit)

    # --- helpers ------------------------------------------------------------------------

    def _running(self) -> Runtime:
        if self._rt is None:
            raise RuntimeError("the pipeline engine is not started: call start() first")
        return self._rt

    def _row(self, run_id: str) -> dict[str, Any]:
        row = self.store.run_row(run_id)
        if row is None:
            raise _not_found(run_id)
        return row

    def _run(self, run_id: str) -> PipelineRun:
        run = self.store.load_run(run_id)
        if run is None:
            raise _not_found(run_id)
        return run

    def _undecidable(self, run_id: str, stage: str) -> RequestError:
        row = self.store.approval(run_id, stage)
        if row is None:
            return RequestError(
                f"run {run_id!r} has no approval {stage!r}", status=404, code="not_found"
            )
        run = self.store.run_row(run_id) or {}
        if row["status"] != "pending":
            why = f"is already {row['status']}"
        elif run.get("status") in FINAL_RUN:
            why = f"belongs to a run that is {run['status']}"
        else:
            why = "has passed its deadline (its default applies)"
        return RequestError(
            f"approval {stage!r} of run {run_id!r} {why}", status=409, code="approval_closed"
        )

    def _reconcile(self) -> None:
        """Runs whose DBOS workflow ended while our row did not follow (a crash between)."""
        rt = self._running()
        for row in self.store.runs_in(ACTIVE):
            status = dbos.status(row["id"])
            if status == "CANCELLED":
                paused_by_dbos(rt, row["id"])
            elif status in ("ERROR", "MAX_RECOVERY_ATTEMPTS_EXCEEDED"):
                fail_run(rt, row["id"], f"the durable engine ended the run ({status})")
            elif status is None and row["created_at"] < time.time() - NEVER_STARTED_S:
                fail_run(rt, row["id"], "the run was never handed to the durable engine")


def _not_found(run_id: str) -> RequestError:
    return RequestError(f"no pipeline run {run_id!r}", status=404, code="not_found")


def _conflict(run_id: str, status: str, wanted: str) -> RequestError:
    return RequestError(
        f"pipeline run {run_id!r} is {status}: it cannot be {wanted}", status=409, code="run_state"
    )
