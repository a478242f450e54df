"""What a run needs while it executes, and the events it leaves behind.

`Runtime` is the engine as its DBOS workflow sees it: the store, the event
sink, the tracker, the gateway, the pipeline definitions. It knows nothing of
DBOS, so everything here runs (and is tested) as plain threads and coroutines.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aicp.pipeline.distributed import NoLlm, RayRunner
from aicp.pipeline.model import (
    Llm,
    Pipeline,
    PipelineRun,
    Stage,
    StageResult,
    Tracker,
)
from aicp.pipeline.store import PipelineStore

log = logging.getLogger("aicp.pipeline")

#: (run id, stage name, key id of who started the run) -> the gateway that stage calls.
LlmFactory = Callable[[str, str, str | None], Llm]
#: (run id, stage name, key id) -> the services a stage may use (`ctx.services`).
ServicesFactory = Callable[[str, str, str | None], Mapping[str, Any]]
#: A stored `Pipeline.origin` -> the pipeline again.
Resolver = Callable[[Mapping[str, str]], Pipeline]
#: Receives every event (type, data), from any of the runner's threads.
EventSink = Callable[[str, dict[str, Any]], None]

#: Longest error text kept for a stage or run.
MAX_ERROR = 2000


def describe(exc: BaseException) -> str:
    """`Type: message`, never a traceback (whose locals may hold secrets)."""
    text = f"{type(exc).__name__}: {exc}"
    return text if len(text) <= MAX_ERROR else text[: MAX_ERROR - 1] + "…"


NO_GATEWAY = (
    "this pipeline engine has no gateway to call: start it with `llm` or `llm_for` "
    "(inside `aicp serve` the gateway itself is used)"
)


class RunContext:
    """The `model.StageContext` of one stage of one run (shared by its attempts)."""

    def __init__(
        self,
        run_id: str,
        stage: Stage,
        params: Mapping[str, Any],
        llm: Callable[[], Llm],
        services: Callable[[], Mapping[str, Any]] = dict,
    ) -> None:
        self.run_id = run_id
        self.stage = stage
        self.params = params
        self._make_llm = llm
        self._make_services = services
        self._services: Mapping[str, Any] | None = None
        self._llm: Llm | None = None
        self.receipts: list[str] = []
        self.cost_usd = 0.0
        self.metrics: dict[str, float] = {}
        self._lock = threading.Lock()

    @property
    def llm(self) -> Llm:
        """The gateway, made when a stage first asks for it."""
        with self._lock:
            if self._llm is None:
                self._llm = self._make_llm()
            return self._llm

    @llm.setter
    def llm(self, llm: Llm) -> None:
        with self._lock:
            self._llm = llm

    @property
    def services(self) -> Mapping[str, Any]:
        """What the host offers stages besides the gateway (inside `aicp serve`: the
        model registry, as the run's key), made when a stage first asks."""
        with self._lock:
            if self._services is None:
                self._services = self._make_services()
            return self._services

    def record_receipt(self, receipt_id: str | None, cost_usd: float) -> None:
        with self._lock:
            if receipt_id:
                self.receipts.append(receipt_id)
            self.cost_usd += float(cost_usd or 0.0)

    def log_metric(self, name: str, value: float) -> None:
        with self._lock:
            self.metrics[name] = float(value)


@dataclass(frozen=True, slots=True, repr=False)
class RunInfo:
    """A run as its stages see it (the same in every process that executes it)."""

    run_id: str
    pipeline: Pipeline
    #: Typed by the pipeline's `Param` annotations.
    params: Mapping[str, Any]
    key_id: str | None = None
    team_id: str | None = None

    def __repr__(self) -> str:  # short: DBOS logs the arguments of steps it cancels
        return f"RunInfo({self.run_id!r}, {self.pipeline.name!r})"


class Events:
    """Persists each event (pipeline_events) and hands it to the sink, which may not fail us."""

    def __init__(self, store: PipelineStore, sink: EventSink | None) -> None:
        self.store = store
        self.sink = sink

    def emit(self, type_: str, run: RunInfo | Mapping[str, Any], **data: Any) -> None:
        who: dict[str, Any]
        if isinstance(run, RunInfo):
            who = {"run_id": run.run_id, "pipeline": run.pipeline.name}
            who |= {"key_id": run.key_id, "team_id": run.team_id}
        else:  # a pipeline_runs row
            who = {"run_id": run["id"], "pipeline": run["pipeline"]}
            who |= {"key_id": run.get("key_id"), "team_id": run.get("team_id")}
        payload = {
            **who,
            "stage": None,
            "status": None,
            "attempt": None,
            "error": None,
            "duration_s": None,
            **data,
        }
        seq = self.store.append_event(who["run_id"], type_, payload, time.time())
        if self.sink is None:
            return
        try:
            self.sink(type_, {**payload, "seq": seq})
        except Exception:
            log.exception("the pipeline event sink failed on %s (the run goes on)", type_)


@dataclass(eq=False)
class Runtime:
    store: PipelineStore
    events: Events
    resolve: Resolver
    tracker: Tracker | None = None
    llm: Llm | None = None
    llm_for: LlmFactory | None = None
    services_for: ServicesFactory | None = None
    ray: RayRunner = field(default_factory=lambda: RayRunner(None))
    #: How often waits (approvals) look at the database.
    poll_s: float = 0.25
    #: Pipelines submitted in this process, by run id (no need to load them again).
    pipelines: dict[str, Pipeline] = field(default_factory=dict)
    #: Stage work still going on in this process, by (run id, stage): a resumed step
    #: joins it rather than starting the same work twice.
    inflight: dict[tuple[str, str], asyncio.Future[Any]] = field(default_factory=dict)

    def pipeline_for(self, run_id: str, origin: Mapping[str, str]) -> Pipeline:
        known = self.pipelines.get(run_id)
        if known is not None:
            return known
        if not origin:
            raise LookupError(
                "the pipeline was submitted as an object without an origin, by an engine "
                "that is gone: only pipelines with an origin (YAML, module:function) resume "
                "in another process"
            )
        return self.resolve(origin)

    def services_of(self, run: RunInfo, stage: str) -> Mapping[str, Any]:
        if self.services_for is None:
            return {}
        return self.services_for(run.run_id, stage, run.key_id)

    def llm_of(self, run: RunInfo, stage: str) -> Llm:
        if self.llm_for is not None:
            return self.llm_for(run.run_id, stage, run.key_id)
        return self.llm if self.llm is not None else NoLlm(NO_GATEWAY)

    def track(self, what: str, *args: Any) -> Any:
        """Call the tracker; its failures are logged, never the run's."""
        if self.tracker is None:
            return None
        try:
            return getattr(self.tracker, what)(*args)
        except Exception:
            log.warning("pipeline tracking failed (%s); the run goes on", what, exc_info=True)
            return None

    def track_stage(self, run_id: str, result: StageResult) -> None:
        if self.tracker is None:
            return
        run = self.store.load_run(run_id)
        if run is not None:
            self.track("stage_finished", run, result)

    def track_run(self, run: PipelineRun | None) -> None:
        if run is not None:
            self.track("run_finished", run)
