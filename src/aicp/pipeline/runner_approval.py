"""Approval stages: the run waits, durably, for a person (or for its deadline).

The request is a pipeline_approvals row with its deadline; `decide()` settles it
from any process with one conditional UPDATE, and so does the timeout, so a
decision and a deadline that arrive together cannot both win. The waiting
step only reads the row, which makes it safe to preempt (pause, cancel) and to
run again after a restart: the deadline is the one stored when the approval
was first requested.

What the options mean and what the stage returns is the `approval` type's
(builtins/approval.py): `{approved, by, comment, timed_out}`; a rejection
fails the run unless `on_reject: continue`.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from aicp.pipeline.builtins import approval as approval_type
from aicp.pipeline.model import Stage
from aicp.pipeline.runner_exec import RunInfo, Runtime
from aicp.pipeline.runner_stage import Outcome, finished_outcome


async def wait_for_approval(rt: Runtime, run: RunInfo, stage: Stage) -> Outcome:
    done = await asyncio.to_thread(finished_outcome, rt, run.run_id, stage.name)
    if done is not None:
        return done
    await asyncio.to_thread(_request, rt, run, stage)
    while True:
        row = await asyncio.to_thread(rt.store.approval, run.run_id, stage.name)
        assert row is not None  # _request made it
        if row["status"] != "pending":
            return await asyncio.to_thread(_settle, rt, run, stage, row)
        deadline = row["deadline"]
        left = rt.poll_s if deadline is None else deadline - time.time()
        if left <= 0:
            await asyncio.to_thread(_time_out, rt, run, stage)
            continue
        await asyncio.sleep(min(rt.poll_s, left))


def _request(rt: Runtime, run: RunInfo, stage: Stage) -> None:
    s = approval_type.settings(stage)
    created = rt.store.request_approval(
        run.run_id, stage.name, message=s.message, default=s.default, timeout_s=s.timeout_s
    )
    if created:
        rt.store.update_stage(
            run.run_id, stage.name, status="running", attempts=1, started_at=time.time()
        )
        rt.events.emit("pipeline.stage.started", run, stage=stage.name, status="running", attempt=1)
    row = rt.store.approval(run.run_id, stage.name)
    still_open = row is not None and row["status"] == "pending"
    # Again after a resume or a restart, whose run status says `running`.
    if still_open and rt.store.set_status(run.run_id, "waiting_approval", when=("running",)):
        rt.events.emit(
            "pipeline.run.waiting_approval",
            run,
            stage=stage.name,
            status="waiting_approval",
            message=s.message,
            timeout_s=s.timeout_s,
            default=s.default,
        )


def _time_out(rt: Runtime, run: RunInfo, stage: Stage) -> None:
    s = approval_type.settings(stage)
    if rt.store.decide_approval(run.run_id, stage.name, "timed_out", before_deadline=False):
        rt.events.emit(
            "pipeline.approval.decided",
            run,
            stage=stage.name,
            status="timed_out",
            approved=s.default == "approve",
            by=None,
            comment=None,
            default=True,
        )


def _settle(rt: Runtime, run: RunInfo, stage: Stage, row: dict[str, Any]) -> Outcome:
    decision = None
    if row["status"] != "timed_out":
        approved = row["status"] == "approved"
        decision = {"approved": approved, "by": row["decided_by"], "comment": row["comment"]}
    output = approval_type.decide(stage, decision)
    failure = approval_type.failure(stage, output)
    if not rt.store.approvals(run.run_id):  # no other approval of the run is pending
        rt.store.set_status(run.run_id, "running", when=("waiting_approval",))
    now = time.time()
    status = "succeeded" if failure is None else "failed"
    error = None if failure is None else str(failure)
    kept = output if failure is None else None
    rt.store.update_stage(
        run.run_id,
        stage.name,
        when=("pending", "running"),
        status=status,
        output=kept,
        error=error,
        report=output,
        finished_at=now,
    )
    started = row["requested_at"]
    kind = "completed" if failure is None else "failed"
    rt.events.emit(
        f"pipeline.stage.{kind}",
        run,
        stage=stage.name,
        status=status,
        attempt=1,
        error=error,
        duration_s=now - started,
    )
    result = rt.store.stage_result(run.run_id, stage.name)
    if result is not None:
        rt.track_stage(run.run_id, result)
    return {"status": status, "output": kept, "error": error}
