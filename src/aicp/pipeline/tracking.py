"""MLflow tracking of pipeline runs (the `model.Tracker` the runner calls).

One MLflow experiment per pipeline, named `<prefix>/<pipeline>` ("aicp/ingest"),
its artifacts under `<data_dir>/mlartifacts`. One MLflow run per pipeline run
(a resumed run that already has one keeps it):

- params: the run's parameters, nested keys joined with "." (`a.b`), values as
  strings (lists and dicts as JSON), cut to MLflow's 6000 characters;
- tags: `aicp.run_id`, `aicp.pipeline`, `aicp.key_id`;
- per stage: metrics `<stage>.duration_s`, `<stage>.attempts`, `<stage>.cost_usd`
  and `<stage>.<name>` for each of the stage's own metrics, a tag
  `aicp.stage.<stage>` with its status, and the artifact `stages/<stage>.json`
  (the StageResult; an output over MAX_OUTPUT_BYTES is replaced by a preview,
  and the tag `aicp.truncated.<stage>` says so);
- at the end: metric `cost_usd` (the run's total) and the run's status
  (succeeded FINISHED, failed FAILED, cancelled KILLED).

The runner calls this from worker threads; one lock serialises the calls, which
also keeps several threads from writing one SQLite tracking file at once.
Failures of MLflow itself propagate (MlflowException): the caller decides
whether tracking may fail a run.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aicp.pipeline import mlflow_env
from aicp.pipeline.model import Pipeline, PipelineRun, StageResult

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

#: MLflow's limits (mlflow.utils.validation).
MAX_KEY = 250
MAX_PARAM_VALUE = 6000
MAX_TAG_VALUE = 8000
PARAMS_PER_BATCH = 100

#: A stage output bigger than this (as JSON) is not stored whole.
MAX_OUTPUT_BYTES = 1_000_000
PREVIEW_CHARS = 2000

#: PipelineRun status -> MLflow RunStatus; other statuses leave the run RUNNING.
RUN_STATUS = {"succeeded": "FINISHED", "failed": "FAILED", "cancelled": "KILLED"}


class MlflowTracker:
    def __init__(
        self,
        tracking_uri: str | None,
        data_dir: Path,
        experiment_prefix: str = "aicp",
    ) -> None:
        self.data_dir = data_dir
        self.tracking_uri = tracking_uri or mlflow_env.default_tracking_uri(data_dir)
        self.experiment_prefix = experiment_prefix
        self._lock = threading.Lock()
        self._client: MlflowClient | None = None
        self._experiments: dict[str, str] = {}

    @property
    def client(self) -> MlflowClient:
        if self._client is None:
            self._client = mlflow_env.client(self.tracking_uri)
        return self._client

    def experiment_name(self, pipeline: str) -> str:
        return f"{self.experiment_prefix}/{pipeline}"

    # --- model.Tracker -----------------------------------------------------------------

    def run_started(self, run: PipelineRun, pipeline: Pipeline) -> str:
        from mlflow.entities import Param

        tags = {"aicp.run_id": run.id, "aicp.pipeline": run.pipeline}
        if run.key_id is not None:
            tags["aicp.key_id"] = run.key_id
        if pipeline.description:
            tags["mlflow.note.content"] = _cut(pipeline.description, MAX_TAG_VALUE)
        params = [Param(k, v) for k, v in flat_params(run.params).items()]
        with self._lock:
            if run.mlflow_run_id is not None and self._exists(run.mlflow_run_id):
                return run.mlflow_run_id  # a resumed run keeps its tracking run
            experiment_id = self._experiment(pipeline.name)
            started = run.created_at or time.time()
            mlflow_run = self.client.create_run(
                experiment_id, start_time=_ms(started), tags=tags, run_name=run.id
            )
            run_id: str = mlflow_run.info.run_id
            for batch in _chunks(params, PARAMS_PER_BATCH):
                self.client.log_batch(run_id, params=batch)
        return run_id

    def stage_finished(self, run: PipelineRun, result: StageResult) -> None:
        if run.mlflow_run_id is None:
            return
        from mlflow.entities import Metric, RunTag

        stage = safe_key(result.stage)
        when = _ms(result.finished_at or time.time())
        values = stage_metrics(result)
        metrics = [Metric(f"{stage}.{k}"[:MAX_KEY], v, when, 0) for k, v in values.items()]
        document, truncated = stage_document(result)
        tags = [RunTag(f"aicp.stage.{stage}"[:MAX_KEY], result.status)]
        if truncated:
            tags.append(RunTag(f"aicp.truncated.{stage}"[:MAX_KEY], truncated))
        with self._lock:
            self.client.log_batch(run.mlflow_run_id, metrics=metrics, tags=tags)
            self.client.log_text(run.mlflow_run_id, document, f"stages/{_file_name(stage)}.json")

    def run_finished(self, run: PipelineRun) -> None:
        if run.mlflow_run_id is None:
            return
        from mlflow.entities import Metric, RunTag

        finished = _ms(run.finished_at or time.time())
        tags = [RunTag("aicp.status", run.status)]
        if run.error:
            tags.append(RunTag("aicp.error", _cut(run.error, MAX_TAG_VALUE)))
        with self._lock:
            self.client.log_batch(
                run.mlflow_run_id,
                metrics=[Metric("cost_usd", run.cost_usd, finished, 0)],
                tags=tags,
            )
            status = RUN_STATUS.get(run.status)
            if status is not None:
                self.client.set_terminated(run.mlflow_run_id, status, end_time=finished)

    # --- helpers -------------------------------------------------------------------------

    def _exists(self, run_id: str) -> bool:
        try:
            self.client.get_run(run_id)
        except Exception as exc:
            if mlflow_env.error_code(exc) == mlflow_env.NOT_FOUND:
                return False
            raise
        return True

    def _experiment(self, pipeline: str) -> str:
        """The experiment id of a pipeline, created on first use (called under the lock)."""
        name = self.experiment_name(pipeline)
        if name in self._experiments:
            return self._experiments[name]
        existing = self.client.get_experiment_by_name(name)
        if existing is not None:
            experiment_id: str = existing.experiment_id
            if existing.lifecycle_stage == "deleted":
                # Deleted in the MLflow UI: runs cannot be created in it until restored.
                self.client.restore_experiment(experiment_id)
        else:
            location = mlflow_env.artifact_location(self.data_dir, name)
            try:
                experiment_id = self.client.create_experiment(name, artifact_location=location)
            except Exception as exc:
                # Another process created it between our look-up and the create.
                if mlflow_env.error_code(exc) != mlflow_env.ALREADY_EXISTS:
                    raise
                again = self.client.get_experiment_by_name(name)
                if again is None:
                    raise
                experiment_id = again.experiment_id
        self._experiments[name] = experiment_id
        return experiment_id


def flat_params(params: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Nested parameters as MLflow params: `a.b` keys, string values cut to the limit."""
    out: dict[str, str] = {}
    for key, value in params.items():
        name = f"{prefix}{safe_key(str(key))}"
        if isinstance(value, Mapping) and value:
            out.update(flat_params(value, f"{name}."))
            continue
        out[name[:MAX_KEY]] = _cut(_text(value), MAX_PARAM_VALUE)
    return out


def stage_metrics(result: StageResult) -> dict[str, float]:
    values: dict[str, float] = {"attempts": float(result.attempts), "cost_usd": result.cost_usd}
    if result.started_at is not None and result.finished_at is not None:
        values["duration_s"] = round(result.finished_at - result.started_at, 6)
    for name, value in result.metrics.items():
        if isinstance(value, int | float) and not isinstance(value, bool):
            values[safe_key(name)] = float(value)
    return values


def stage_document(result: StageResult) -> tuple[str, str | None]:
    """The stage's JSON artifact, and why its output was cut (None when whole)."""
    document = result.as_dict()
    output = json.dumps(document["output"], default=str, ensure_ascii=False)
    size = len(output.encode())
    if size <= MAX_OUTPUT_BYTES:
        return json.dumps(document, default=str, indent=2), None
    document["output"] = {"truncated": True, "bytes": size, "preview": output[:PREVIEW_CHARS]}
    why = f"output of {size} bytes over the {MAX_OUTPUT_BYTES}-byte limit: preview only"
    return json.dumps(document, default=str, indent=2), why


def safe_key(name: str) -> str:
    """`name` as MLflow accepts a param, metric or tag key (letters, digits, `_-. /:`)."""
    cleaned = re.sub(r"[^\w.\- :/]", "_", name)
    # MLflow also refuses keys that a path normalisation would change.
    parts = [p if p not in (".", "..") else "_" for p in cleaned.split("/")]
    return "/".join(p or "_" for p in parts) or "_"


def _file_name(stage: str) -> str:
    return re.sub(r"[^\w.-]", "_", stage).strip(".") or "_"


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, default=str, ensure_ascii=False, sort_keys=True)


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _ms(seconds: float) -> int:
    return int(seconds * 1000)


def _chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]
