"""A run's beginning and end as the workflow records them (status, events, tracking).

These run again each time DBOS executes the workflow (first start, recovery
after a crash, resume after a pause); each step is written to be harmless the
second time: statuses move only from the states they expect, and the tracker
opens its run once.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Mapping
from typing import Any

from aicp.pipeline.model import FINAL_RUN, Pipeline, Stage
from aicp.pipeline.runner_exec import RunInfo, Runtime, describe
from aicp.pipeline.runner_params import typed_params
from aicp.pipeline.runner_stage import Outcome
from aicp.pipeline.store import ACTIVE


def begin_run(rt: Runtime, run_id: str) -> RunInfo | str:
    """The run to execute; or its status, when there is nothing (more) to do."""
    row = rt.store.run_row(run_id)
    if row is None:
        raise LookupError(f"pipeline run {run_id!r} is not in the database")
    if row["status"] in FINAL_RUN:
        return str(row["status"])
    try:
        pipeline = rt.pipeline_for(run_id, row["origin"])
        params = typed_params(pipeline, row["params"] or {})
    except Exception as exc:
        fail_run(rt, run_id, f"the pipeline cannot be loaded again: {describe(exc)}")
        return "failed"
    run = RunInfo(run_id, pipeline, params, row["key_id"], row["team_id"])
    # Paused too: DBOS runs this workflow only once it is no longer cancelled.
    rt.store.set_status(run_id, "running", when=("pending", "paused"), started=True)
    rt.events.emit(
        "pipeline.run.started", run, status="running", resumed=row["started_at"] is not None
    )
    if row["mlflow_run_id"] is None and rt.tracker is not None:
        current = rt.store.load_run(run_id)
        tracked = rt.track("run_started", current, pipeline) if current is not None else None
        if isinstance(tracked, str):
            rt.store.set_mlflow_run_id(run_id, tracked)
    return run


def finish_run(
    rt: Runtime,
    run: RunInfo,
    outcomes: Mapping[str, Outcome],
    failed: str | None,
    abandoned: Collection[str] = (),
) -> str:
    """End the run: failed if a stage did (`abandoned` ones were still waiting then)."""
    status, error = "succeeded", None
    if failed is not None:
        status, error = "failed", run_error(run.pipeline.stages[failed], outcomes[failed])
        rt.store.mark_stages(run.run_id, "skipped", when=("pending",))
        for name in abandoned:
            rt.store.update_stage(run.run_id, name, when=("running",), status="cancelled")
    _end(rt, run.run_id, run, status, error)
    return status


def fail_run(rt: Runtime, run_id: str, error: str) -> None:
    """The workflow itself failed (not a stage): the run ends with that error."""
    row = rt.store.run_row(run_id)
    if row is None:
        return
    rt.store.mark_stages(run_id, "skipped", when=("pending",))
    _end(rt, run_id, row, "failed", error)


def paused_by_dbos(rt: Runtime, run_id: str) -> None:
    """DBOS cancelled the workflow while the run looked active: it is paused (resumable)."""
    row = rt.store.run_row(run_id)
    if row is not None and rt.store.set_status(run_id, "paused", when=ACTIVE):
        rt.events.emit("pipeline.run.paused", row, status="paused", reason="workflow cancelled")


def run_error(stage: Stage, outcome: Outcome) -> str:
    if stage.type == "approval":  # its own words: "approval 'x': rejected by ..."
        return str(outcome["error"])
    return f"stage {stage.name!r} failed: {outcome['error']}"


def _end(
    rt: Runtime, run_id: str, who: RunInfo | Mapping[str, Any], status: str, error: str | None
) -> None:
    """The run's final status (unless it has one), its event and tracking; `who` names
    the run in the event (a RunInfo or its pipeline_runs row)."""
    if rt.store.set_status(run_id, status, when=(*ACTIVE, "paused"), error=error, finished=True):
        row = rt.store.run_row(run_id) or {}
        started = row.get("started_at") or row.get("created_at") or time.time()
        kind = "completed" if status == "succeeded" else "failed"
        rt.events.emit(
            f"pipeline.run.{kind}",
            who,
            status=status,
            error=error,
            duration_s=time.time() - started,
        )
        rt.track_run(rt.store.load_run(run_id))
    rt.pipelines.pop(run_id, None)


def ready(
    pipeline: Pipeline, outcomes: Mapping[str, Outcome], busy: Mapping[str, object]
) -> list[str]:
    """Stages not yet started whose dependencies all succeeded, in the pipeline's order."""
    out = []
    for name, stage in pipeline.stages.items():
        if name in outcomes or name in busy:
            continue
        # `depends_on` holds the stages the inputs name too (model.Stage).
        if all(d in outcomes and outcomes[d]["status"] == "succeeded" for d in stage.depends_on):
            out.append(name)
    return out
