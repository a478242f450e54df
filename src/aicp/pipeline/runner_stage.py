"""One stage of one run: its attempts, retries with backoff, timeouts and checkpoint.

Runs in a worker thread. The stage's row in pipeline_stages is the first
checkpoint: a stage whose row says it finished is never run again, whether the
caller is a DBOS replay, a resumed run, or a step that DBOS could not record
because the run was paused while the stage was finishing.

A timed-out attempt is abandoned, not stopped: Python cannot kill a thread, so
its work may go on in the background; its result is ignored. (On Ray the task
is cancelled.)
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, Literal

from aicp.pipeline import values
from aicp.pipeline.builtins import stage_type
from aicp.pipeline.model import Ref, Stage, StageFailed, StageResult, Unknown
from aicp.pipeline.runner_exec import RunContext, RunInfo, Runtime, describe
from aicp.storage.schema import MICROS

#: A stage's outcome as the workflow keeps it: status, output (JSON) and error.
Outcome = dict[str, Any]

#: The statuses a stage ends in.
FINISHED = ("succeeded", "failed")


class Interrupted(Exception):
    """The run was paused or cancelled between two attempts: stop, record nothing."""


class AttemptTimeout(Exception):
    pass


def finished_outcome(rt: Runtime, run_id: str, stage: str) -> Outcome | None:
    """The outcome recorded in the stage's row, if it finished before."""
    return _recorded(rt.store.stage_row(run_id, stage))


def _recorded(row: Mapping[str, Any] | None) -> Outcome | None:
    if row is None or row["status"] not in FINISHED:
        return None
    return {"status": row["status"], "output": row["output"], "error": row["error"]}


def execute_stage(rt: Runtime, run: RunInfo, stage: Stage, upstream: Mapping[str, Any]) -> Outcome:
    """Run `stage` to its end (or reuse its recorded end); never raises but `Interrupted`."""
    row = rt.store.stage_row(run.run_id, stage.name)
    done = _recorded(row)
    if done is not None:
        return done
    return _Execution(rt, run, stage, row or {}).run(upstream)


class _Execution:
    def __init__(self, rt: Runtime, run: RunInfo, stage: Stage, row: Mapping[str, Any]) -> None:
        self.rt, self.run_info, self.stage = rt, run, stage
        self.ctx = RunContext(
            run.run_id,
            stage,
            run.params,
            lambda: rt.llm_of(run, stage.name),
            lambda: rt.services_of(run, stage.name),
        )
        #: Attempts made before (by an execution that died): numbering goes on from them.
        self.before = int(row.get("attempts") or 0)
        self.attempt = self.before
        self.started = float(row.get("started_at") or time.time())

    def run(self, upstream: Mapping[str, Any]) -> Outcome:
        try:
            inputs = stage_inputs(self.stage, upstream, self.run_info.params)
        except Exception as exc:
            return self._fail(f"its inputs do not fit: {describe(exc)}", None)
        failures = 0
        while True:
            self._check_running()
            self._begin_attempt()
            try:
                value = run_attempt(self.rt, self.stage, self.ctx, inputs)
                output = values.encode(self.stage.output, value)
            except (StageFailed, values.NotSerializable) as exc:
                return self._fail(describe(exc), getattr(exc, "report", None))
            except Exception as exc:
                failures += 1
                if failures > self.stage.retries:
                    return self._fail(describe(exc), None)
                self._retry(describe(exc), self.stage.backoff_s * 2 ** (failures - 1))
                continue
            return self._succeed(output)

    def _check_running(self) -> None:
        row = self.rt.store.run_row(self.run_info.run_id)
        if row is not None and row["status"] in ("paused", "cancelled"):
            self.rt.store.update_stage(
                self.run_info.run_id, self.stage.name, when=("running",), status="pending"
            )
            raise Interrupted(f"run {self.run_info.run_id} is {row['status']}")

    def _begin_attempt(self) -> None:
        self.attempt += 1
        first = self.attempt == self.before + 1
        extra = {"started_at": self.started} if first else {}
        self.rt.store.update_stage(
            self.run_info.run_id,
            self.stage.name,
            when=("pending", "running"),
            status="running",
            attempts=self.attempt,
            **extra,
        )
        self._emit("pipeline.stage.started", "running")

    def _retry(self, error: str, delay: float) -> None:
        self._emit("pipeline.stage.retry", "running", error=error, delay_s=delay)
        time.sleep(delay)

    def _succeed(self, output: Any) -> Outcome:
        self._finish("succeeded", output=output, error=None, report=None)
        return {"status": "succeeded", "output": output, "error": None}

    def _fail(self, error: str, report: dict[str, Any] | None) -> Outcome:
        self._finish("failed", output=None, error=error, report=report)
        return {"status": "failed", "output": None, "error": error}

    def _finish(self, status: Literal["succeeded", "failed"], **columns: Any) -> None:
        now = time.time()
        result = StageResult(
            stage=self.stage.name,
            status=status,
            output=columns["output"],
            error=columns["error"],
            attempts=max(self.attempt, 1),
            started_at=self.started,
            finished_at=now,
            receipts=list(self.ctx.receipts),
            cost_usd=self.ctx.cost_usd,
            metrics=dict(self.ctx.metrics),
            report=columns["report"],
        )
        self.rt.store.update_stage(
            self.run_info.run_id,
            self.stage.name,
            when=("pending", "running"),
            status=status,
            attempts=result.attempts,
            receipts=result.receipts,
            cost_micros=round(result.cost_usd * MICROS),
            metrics=result.metrics,
            started_at=self.started,
            finished_at=now,
            **columns,
        )
        kind = "completed" if status == "succeeded" else "failed"
        self._emit(
            f"pipeline.stage.{kind}", status, error=columns["error"], duration_s=now - self.started
        )
        self.rt.track_stage(self.run_info.run_id, result)

    def _emit(self, type_: str, status: str, **data: Any) -> None:
        self.rt.events.emit(
            type_, self.run_info, stage=self.stage.name, status=status, attempt=self.attempt, **data
        )


def run_attempt(rt: Runtime, stage: Stage, ctx: RunContext, inputs: dict[str, Any]) -> Any:
    """One try of the stage's work, within its `timeout_s`."""
    if stage.distributed:
        return rt.ray.run(stage, ctx, inputs, stage.timeout_s)
    kind = stage_type(stage.type)
    if stage.timeout_s is None:
        return kind.run(ctx, inputs)
    return call_with_timeout(kind.run, (ctx, inputs), stage.timeout_s)


def call_with_timeout(func: Callable[..., Any], args: tuple[Any, ...], timeout_s: float) -> Any:
    """`func(*args)` in its own thread, given up on (not stopped) after `timeout_s`."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = func(*args)
        except BaseException as exc:
            box["error"] = exc

    worker = threading.Thread(target=target, name="aicp-stage-attempt", daemon=True)
    worker.start()
    worker.join(timeout_s)
    if worker.is_alive():
        raise AttemptTimeout(f"the attempt timed out after {timeout_s:g} s (its work is abandoned)")
    if "error" in box:
        raise box["error"]
    return box.get("value")


def _from_stage(ref: Ref, upstream: Mapping[str, Any], params: Mapping[str, Any]) -> Any:
    return upstream[ref.name]


def _from_param(ref: Ref, upstream: Mapping[str, Any], params: Mapping[str, Any]) -> Any:
    return params.get(ref.name)


def _constant(ref: Ref, upstream: Mapping[str, Any], params: Mapping[str, Any]) -> Any:
    return ref.value


_SOURCES: dict[str, Callable[[Ref, Mapping[str, Any], Mapping[str, Any]], Any]] = {
    "stage": _from_stage,
    "param": _from_param,
    "value": _constant,
}


def stage_inputs(
    stage: Stage, upstream: Mapping[str, Any], params: Mapping[str, Any]
) -> dict[str, Any]:
    """The stage's arguments: upstream outputs typed as it accepts them, params, constants."""
    out: dict[str, Any] = {}
    for arg, ref in stage.inputs.items():
        value = _SOURCES[ref.kind](ref, upstream, params)
        if ref.kind != "value":
            value = values.decode(stage.accepts.get(arg, Unknown), value)
        out[arg] = value
    return out
