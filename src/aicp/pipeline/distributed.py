"""Stages marked `distributed: true` do their work on Ray; the runner keeps the checkpoint.

Ray starts lazily, the first time such a stage runs: `ray.init` on the
engine's `ray_address` (None: a local instance in this process's session),
without the dashboard. Each attempt is one Ray task with the stage's resource
hints (`num_cpus`, `num_gpus`, `memory`), never retried by Ray (the stage's own
`retries` apply), and cancelled when the attempt times out.

The task gets a picklable stand-in for the stage context: receipts and metrics
it records come back with the result; it has no gateway (an `llm` stage cannot
be distributed).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from aicp.pipeline.builtins import stage_type
from aicp.pipeline.model import EmbedReply, LlmReply, Stage, StageContext, StageFailed

#: Resource hints passed to the Ray task as the options of the same name.
RESOURCE_OPTIONS = ("num_cpus", "num_gpus", "memory")


class RemoteStageError(Exception):
    """An attempt's work raised on Ray (the message names the original exception)."""


class RemoteTimeout(Exception):
    pass


class NoLlm:
    """The gateway of a context that has none: every call fails the stage, saying `why`."""

    def __init__(self, why: str) -> None:
        self.why = why

    def _refuse(self) -> StageFailed:
        return StageFailed(self.why)

    def chat(self, model: str, messages: list[dict[str, Any]], **params: Any) -> LlmReply:
        raise self._refuse()

    def embed(self, model: str, inputs: list[str]) -> EmbedReply:
        raise self._refuse()


@dataclass
class RemoteContext:
    """What a stage sees on a Ray worker (pickled there and back)."""

    run_id: str
    stage: Stage
    params: Mapping[str, Any]
    receipts: list[str] = field(default_factory=list)
    cost_usd: float = 0.0
    metrics: dict[str, float] = field(default_factory=dict)

    @property
    def llm(self) -> NoLlm:
        return NoLlm("a distributed stage has no gateway: run llm calls in a local stage")

    @property
    def services(self) -> Mapping[str, Any]:
        """None on a Ray worker: the registry and the like live in the gateway process."""
        return {}

    def record_receipt(self, receipt_id: str | None, cost_usd: float) -> None:
        if receipt_id:
            self.receipts.append(receipt_id)
        self.cost_usd += float(cost_usd or 0.0)

    def log_metric(self, name: str, value: float) -> None:
        self.metrics[name] = float(value)


def run_remotely(type_name: str, ctx: RemoteContext, inputs: dict[str, Any]) -> dict[str, Any]:
    """The Ray task: the stage type's work, its failure described rather than raised."""
    out: dict[str, Any] = {"ok": False, "value": None, "final": False, "report": None}
    try:
        out["value"] = stage_type(type_name).run(ctx, inputs)
        out["ok"] = True
    except StageFailed as exc:
        out |= {"final": True, "error": str(exc), "report": exc.report}
    except Exception as exc:
        out["error"] = f"{type(exc).__name__}: {exc}"
    out |= {"receipts": ctx.receipts, "cost_usd": ctx.cost_usd, "metrics": ctx.metrics}
    return out


class RayRunner:
    """One engine's use of Ray: connected on first use, shut down with the engine."""

    def __init__(self, address: str | None) -> None:
        self.address = address
        self._lock = threading.Lock()
        self._task: Any = None
        self._started_here = False

    def run(
        self, stage: Stage, ctx: StageContext, inputs: dict[str, Any], timeout_s: float | None
    ) -> Any:
        ray, task = self._connect(stage)
        options = {k: stage.resources[k] for k in RESOURCE_OPTIONS if k in stage.resources}
        remote_ctx = RemoteContext(ctx.run_id, stage, dict(ctx.params))
        ref = task.options(max_retries=0, **options).remote(stage.type, remote_ctx, inputs)
        try:
            got: dict[str, Any] = ray.get(ref, timeout=timeout_s)
        except ray.exceptions.GetTimeoutError:
            ray.cancel(ref, force=True)
            raise RemoteTimeout(
                f"the attempt timed out after {timeout_s:g} s (its Ray task was cancelled)"
            ) from None
        for receipt in got["receipts"]:
            ctx.record_receipt(receipt, 0.0)
        ctx.record_receipt(None, got["cost_usd"])
        for name, value in got["metrics"].items():
            ctx.log_metric(name, value)
        if got["ok"]:
            return got["value"]
        if got["final"]:
            raise StageFailed(got["error"], report=got["report"])
        raise RemoteStageError(f"{got['error']} (on Ray)")

    def _connect(self, stage: Stage) -> tuple[Any, Any]:
        try:
            import ray
        except ImportError:
            raise StageFailed(
                f"{stage.where()} is distributed, but Ray is not installed: install the "
                "`ray` extra (pip install 'aicp[ray]')"
            ) from None
        with self._lock:
            if self._task is None:
                if not ray.is_initialized():
                    ray.init(address=self.address, include_dashboard=False, log_to_driver=False)
                    self._started_here = True
                self._task = ray.remote(run_remotely)
        return ray, self._task

    def shutdown(self) -> None:
        with self._lock:
            if self._started_here:
                import ray

                ray.shutdown()
            self._started_here = False
            self._task = None
