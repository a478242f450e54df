"""The one DAG model that YAML files and decorated functions both compile to.

A `Pipeline` is a validated, frozen graph of `Stage`s; a `PipelineRun` is one
execution of it, with a `StageResult` per stage. Values that flow between
stages are plain Python objects while a stage runs and JSON (through
pydantic, by the declared annotation) when they are checkpointed, so a
pydantic model given by one stage reaches the next as that model again,
after a resume too.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

#: The stage types the compiler knows; `python` runs any callable.
STAGE_TYPES = ("python", "llm", "validate", "approval", "evaluate")

#: Where a stage argument comes from.
RefKind = Literal["stage", "param", "value"]

RunStatus = Literal[
    "pending", "running", "waiting_approval", "paused", "succeeded", "failed", "cancelled"
]
StageStatus = Literal["pending", "running", "succeeded", "failed", "skipped", "cancelled"]

#: Statuses a run never leaves.
FINAL_RUN = frozenset({"succeeded", "failed", "cancelled"})


class Unknown:
    """The annotation of a value whose type was not declared: compatible with anything."""


@dataclass(frozen=True, slots=True)
class Ref:
    """One argument of a stage: another stage's output, a pipeline parameter or a constant."""

    kind: RefKind
    #: The stage name (kind "stage") or the parameter name (kind "param").
    name: str = ""
    value: Any = None


@dataclass(frozen=True, slots=True)
class Param:
    name: str
    annotation: Any = Unknown
    default: Any = None
    required: bool = False


@dataclass(frozen=True, slots=True)
class Stage:
    name: str
    type: str = "python"
    #: `module:function` of a python stage (YAML), or of a custom check/metric.
    call: str | None = None
    #: The function itself (decorators), resolved from `call` otherwise.
    func: Callable[..., Any] | None = None
    #: Argument name -> where its value comes from.
    inputs: Mapping[str, Ref] = field(default_factory=dict)
    #: Stages that must finish first: the stages its inputs name plus `depends_on`.
    depends_on: tuple[str, ...] = ()
    #: The stage type's own settings (an llm stage's model and prompt, a gate's checks...).
    options: Mapping[str, Any] = field(default_factory=dict)
    retries: int = 0
    #: Seconds before the first retry; doubled for each further one.
    backoff_s: float = 1.0
    timeout_s: float | None = None
    #: Free-form resource hints; `distributed: true` runs the work on Ray.
    resources: Mapping[str, Any] = field(default_factory=dict)
    #: The annotation of what the stage returns (Unknown when undeclared).
    output: Any = Unknown
    #: Argument name -> annotation the stage expects.
    accepts: Mapping[str, Any] = field(default_factory=dict)
    #: Where it was written: file and line (YAML) or the function's file and line.
    source: str | None = None
    line: int | None = None

    @property
    def distributed(self) -> bool:
        return bool(self.resources.get("distributed"))

    def where(self) -> str:
        if self.source is None:
            return f"stage {self.name!r}"
        return f"{self.source}:{self.line or 1}: stage {self.name!r}"


@dataclass(frozen=True, slots=True)
class Pipeline:
    name: str
    #: In dependency order: every stage comes after the stages it depends on.
    stages: Mapping[str, Stage]
    params: Mapping[str, Param] = field(default_factory=dict)
    #: How many stages may run at once.
    concurrency: int = 4
    description: str = ""
    source: str | None = None
    #: How to load it again in another process: a YAML file's text or `module:function`.
    origin: Mapping[str, str] = field(default_factory=dict)

    def downstream(self, name: str) -> list[str]:
        """The stages that depend on `name`, directly or not."""
        out: list[str] = []
        frontier = [name]
        while frontier:
            current = frontier.pop()
            for s in self.stages.values():
                if current in s.depends_on and s.name not in out:
                    out.append(s.name)
                    frontier.append(s.name)
        return out


@dataclass(slots=True)
class StageResult:
    stage: str
    status: StageStatus = "pending"
    #: The output as checkpointed (JSON-compatible).
    output: Any = None
    error: str | None = None
    attempts: int = 0
    started_at: float | None = None
    finished_at: float | None = None
    #: Receipts of the gateway requests the stage made, and their summed cost.
    receipts: list[str] = field(default_factory=list)
    cost_usd: float = 0.0
    metrics: dict[str, float] = field(default_factory=dict)
    #: A failed validation gate's report, an approval's decision...
    report: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "stage": self.stage,
            "status": self.status,
            "output": self.output,
            "error": self.error,
            "attempts": self.attempts,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "receipts": list(self.receipts),
            "cost_usd": self.cost_usd,
            "metrics": dict(self.metrics),
            "report": self.report,
        }


@dataclass(slots=True)
class PipelineRun:
    id: str
    pipeline: str
    status: RunStatus = "pending"
    params: dict[str, Any] = field(default_factory=dict)
    stages: dict[str, StageResult] = field(default_factory=dict)
    created_at: float = 0.0
    finished_at: float | None = None
    error: str | None = None
    #: Who started it (a key id), for authorization and the llm stages' principal.
    key_id: str | None = None
    team_id: str | None = None
    mlflow_run_id: str | None = None

    @property
    def cost_usd(self) -> float:
        return round(sum(r.cost_usd for r in self.stages.values()), 6)

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "pipeline": self.pipeline,
            "status": self.status,
            "params": self.params,
            "stages": {k: v.as_dict() for k, v in self.stages.items()},
            "created_at": self.created_at,
            "finished_at": self.finished_at,
            "error": self.error,
            "key_id": self.key_id,
            "team_id": self.team_id,
            "mlflow_run_id": self.mlflow_run_id,
            "cost_usd": self.cost_usd,
        }


# --- what a stage sees while it runs ---------------------------------------------------


@dataclass(frozen=True, slots=True)
class LlmReply:
    text: str
    receipt_id: str | None
    cost_usd: float
    model: str
    #: The parsed JSON body of the gateway's answer.
    raw: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class EmbedReply:
    vectors: list[list[float]]
    receipt_id: str | None
    cost_usd: float


class Llm(Protocol):
    """The gateway's request path as a stage sees it (pipeline/gateway.py)."""

    def chat(self, model: str, messages: list[dict[str, Any]], **params: Any) -> LlmReply: ...

    def embed(self, model: str, inputs: list[str]) -> EmbedReply: ...


class StageContext(Protocol):
    """Handed to built-in stage types (and to python stages that ask for `ctx`)."""

    run_id: str
    stage: Stage
    params: Mapping[str, Any]
    llm: Llm

    @property
    def services(self) -> Mapping[str, Any]:
        """What the host offers besides the gateway: inside `aicp serve`, "registry" (the
        model registry, acting as the run's key; pipeline/service.py)."""
        ...

    def record_receipt(self, receipt_id: str | None, cost_usd: float) -> None: ...

    def log_metric(self, name: str, value: float) -> None: ...


# --- how a stage ends other than by returning ------------------------------------------


class StageFailed(Exception):
    """A stage's work failed for good (no retry helps): the run fails with `report`."""

    def __init__(self, message: str, report: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.report = report


class GateFailed(StageFailed):
    """A validation gate's checks failed: the run stops, the report says which and why."""


class Tracker(Protocol):
    """Experiment tracking of runs (pipeline/tracking.py: MLflow)."""

    def run_started(self, run: PipelineRun, pipeline: Pipeline) -> str | None:
        """Open the tracking run; returns its id (kept on the PipelineRun)."""
        ...

    def stage_finished(self, run: PipelineRun, result: StageResult) -> None: ...

    def run_finished(self, run: PipelineRun) -> None: ...
