"""The DBOS workflow that executes a run; imported only when an engine starts.

One async workflow per run, its DBOS id the run id. Determinism, which DBOS
replay needs, comes from three choices:

- one step id per stage is reserved up front (`DBOS.reserve_step`), in the
  pipeline's order, so a stage has the same id however the scheduling went;
- stages run as concurrent tasks and the scheduler waits for them with
  `DBOS.asyncio_wait(FIRST_COMPLETED)`, which checkpoints which tasks were done,
  so a replay takes the same scheduling decisions (DAG order, not level by level);
- everything else the workflow does (statuses, events) is outside DBOS and
  written to be repeated.

Stage steps are preemptible: a cancelled workflow (pause, cancel) stops waiting
for them within a second. The stage's work itself runs shielded in a thread and
finishes (or is abandoned); if it finishes, its row records it and a resumed run
does not do it again.
"""

from __future__ import annotations

import asyncio
import functools
import threading
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from typing import Any

from dbos import DBOS, StepOptions, StepReservation
from dbos import error as dbos_error

from aicp.pipeline import runner_dbos
from aicp.pipeline.model import Pipeline, Stage
from aicp.pipeline.runner_approval import wait_for_approval
from aicp.pipeline.runner_exec import RunInfo, Runtime, describe
from aicp.pipeline.runner_runs import (
    begin_run,
    fail_run,
    finish_run,
    paused_by_dbos,
    ready,
)
from aicp.pipeline.runner_stage import Interrupted, Outcome, execute_stage

WORKFLOW_NAME = "aicp.pipeline.run"
QUEUE = "aicp_pipeline_runs"
#: DBOS recovers a pending workflow only in a process of the same application version:
#: bump this whenever the workflow's sequence of DBOS operations changes.
APP_VERSION = "aicp-pipelines-1"

Step = Callable[[RunInfo, str, dict[str, Any]], Coroutine[Any, Any, Outcome]]


class _Active:
    """The runtime of the engine that launched DBOS in this process.

    DBOS is a process singleton and finds workflows by name on recovery, so the
    workflow functions are module-level; this is the one place they can reach
    the engine from. Set by `activate`, cleared by `deactivate`.
    """

    lock = threading.Lock()
    runtime: Runtime | None = None


def activate(rt: Runtime) -> None:
    with _Active.lock:
        if _Active.runtime is not None:
            raise RuntimeError(
                "a pipeline engine is already running in this process (DBOS is one per "
                "process): stop() it before starting another"
            )
        _Active.runtime = rt


def deactivate(rt: Runtime) -> None:
    with _Active.lock:
        if _Active.runtime is rt:
            _Active.runtime = None


def active() -> Runtime:
    rt = _Active.runtime
    if rt is None:
        raise RuntimeError("no pipeline engine is running in this process")
    return rt


@DBOS.workflow(name=WORKFLOW_NAME)
async def run_pipeline(run_id: str) -> str:
    rt = active()
    try:
        return await _schedule(rt, run_id)
    except (dbos_error.DBOSWorkflowCancelledError, dbos_error.DBOSWorkflowConflictIDError):
        if await asyncio.to_thread(runner_dbos.status, run_id) == "CANCELLED":
            await asyncio.to_thread(paused_by_dbos, rt, run_id)
        raise
    except Exception as exc:
        await asyncio.to_thread(fail_run, rt, run_id, f"the run failed: {describe(exc)}")
        raise


async def _schedule(rt: Runtime, run_id: str) -> str:
    begun = await asyncio.to_thread(begin_run, rt, run_id)
    if isinstance(begun, str):
        return begun
    run, pipeline = begun, begun.pipeline
    slots = {name: DBOS.reserve_step() for name in pipeline.stages}
    outcomes: dict[str, Outcome] = {}
    running: dict[str, asyncio.Future[Outcome]] = {}
    failed: str | None = None
    limit = max(1, pipeline.concurrency)
    while True:
        if failed is None:
            for name in ready(pipeline, outcomes, running)[: limit - len(running)]:
                stage = pipeline.stages[name]
                upstream = {d: outcomes[d]["output"] for d in stage.depends_on}
                running[name] = _launch(slots[name], run, stage, upstream)
        if not running or (failed is not None and _only_waits(pipeline, running)):
            break
        tasks: list[Awaitable[Any]] = list(running.values())
        done, _ = await DBOS.asyncio_wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for name in [n for n, t in running.items() if t in done]:
            outcomes[name] = running.pop(name).result()
            if outcomes[name]["status"] != "succeeded" and failed is None:
                failed = name
    for task in running.values():  # approvals of a failed run: no one needs to decide now
        task.cancel()
    return await asyncio.to_thread(finish_run, rt, run, outcomes, failed, list(running))


def _only_waits(pipeline: Pipeline, running: Mapping[str, object]) -> bool:
    """Every running stage waits on the run itself (an approval: a person may take a day;
    a failed run won't), i.e. is one of the runner's own steps."""
    return all(pipeline.stages[name].type in _STEPS for name in running)


def _launch(
    slot: StepReservation, run: RunInfo, stage: Stage, upstream: dict[str, Any]
) -> asyncio.Future[Outcome]:
    """The stage's step, at the id reserved for it, as a task of this workflow."""
    options: StepOptions = {"name": f"aicp.stage:{stage.name}", "preemptible": True}
    step = _STEPS.get(stage.type, _stage_step)
    task = asyncio.ensure_future(slot.run_async(options, step, run, stage.name, upstream))
    task.add_done_callback(_retrieve)
    return task


async def _stage_step(run: RunInfo, name: str, upstream: dict[str, Any]) -> Outcome:
    rt, stage = active(), run.pipeline.stages[name]
    key = (run.run_id, name)
    work = rt.inflight.get(key)
    if work is None or work.done():
        work = asyncio.ensure_future(asyncio.to_thread(execute_stage, rt, run, stage, upstream))
        rt.inflight[key] = work
        work.add_done_callback(functools.partial(_forget, rt, key))
        work.add_done_callback(_retrieve)
    try:
        # Shielded: a preempted step (the run was paused) leaves the work to finish.
        outcome: Outcome = await asyncio.shield(work)
    except Interrupted as exc:
        # Not recorded by DBOS: the stage runs again when the run resumes.
        raise dbos_error.DBOSWorkflowCancelledError(str(exc)) from None
    return outcome


async def _approval_step(run: RunInfo, name: str, upstream: dict[str, Any]) -> Outcome:
    return await wait_for_approval(active(), run, run.pipeline.stages[name])


_STEPS: dict[str, Step] = {"approval": _approval_step}


def _forget(rt: Runtime, key: tuple[str, str], work: asyncio.Future[Any]) -> None:
    if rt.inflight.get(key) is work:  # not a later execution's work
        del rt.inflight[key]


def _retrieve(task: asyncio.Future[Any]) -> None:
    # Tasks left behind by a cancelled workflow: their errors are expected, not "never retrieved".
    if not task.cancelled():
        task.exception()
