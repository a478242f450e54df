"""MLflow tracking of pipeline runs, read back through MLflow's own client."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from aicp.pipeline import mlflow_env
from aicp.pipeline.model import Pipeline, PipelineRun, Stage, StageResult
from aicp.pipeline.tracking import MAX_OUTPUT_BYTES, MAX_PARAM_VALUE, MlflowTracker


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("tracking")


@pytest.fixture(scope="module")
def tracker(data_dir: Path) -> MlflowTracker:
    """One tracker on one SQLite tracking store for the module (creating it takes seconds)."""
    return MlflowTracker(None, data_dir)


def pipeline(name: str, *stages: str) -> Pipeline:
    return Pipeline(
        name=name, stages={s: Stage(name=s) for s in stages}, description="test pipeline"
    )


def new_run(name: str, **fields: Any) -> PipelineRun:
    return PipelineRun(id=uuid.uuid4().hex, pipeline=name, created_at=1000.0, **fields)


def finished(stage: str, **fields: Any) -> StageResult:
    values: dict[str, Any] = {
        "status": "succeeded",
        "attempts": 1,
        "started_at": 1001.0,
        "finished_at": 1002.0,
    }
    values.update(fields)
    return StageResult(stage=stage, **values)


def start(tracker: MlflowTracker, run: PipelineRun, pipe: Pipeline) -> str:
    run_id = tracker.run_started(run, pipe)
    run.mlflow_run_id = run_id
    return run_id


def artifact(tracker: MlflowTracker, run_id: str, path: str, into: Path) -> Any:
    local = tracker.client.download_artifacts(run_id, path, str(into))
    return json.loads(Path(local).read_text())


def test_run_params_tags_stage_metrics_and_artifacts_are_recorded(
    tracker: MlflowTracker, data_dir: Path, tmp_path: Path
) -> None:
    name = f"ingest-{uuid.uuid4().hex[:6]}"
    run = new_run(
        name,
        key_id="key-7",
        params={"model": "gpt", "opts": {"temperature": 0.2, "stop": ["a", "b"]}, "n": 3},
    )
    run_id = start(tracker, run, pipeline(name, "extract", "score"))
    extract = finished(
        "extract", attempts=2, cost_usd=0.0025, output={"rows": [1, 2]}, metrics={"rows": 2.0}
    )
    run.stages["extract"] = extract
    tracker.stage_finished(run, extract)
    run.stages["score"] = finished("score", cost_usd=0.001, output="ok")
    tracker.stage_finished(run, run.stages["score"])
    run.status = "succeeded"
    run.finished_at = 1003.0
    tracker.run_finished(run)

    got = tracker.client.get_run(run_id)
    experiment = tracker.client.get_experiment(got.info.experiment_id)
    assert experiment.name == f"aicp/{name}"
    assert experiment.artifact_location.startswith((data_dir / "mlartifacts").as_uri())
    assert got.data.params == {
        "model": "gpt",
        "opts.temperature": "0.2",
        "opts.stop": '["a", "b"]',
        "n": "3",
    }
    assert got.data.tags["aicp.run_id"] == run.id
    assert got.data.tags["aicp.pipeline"] == name
    assert got.data.tags["aicp.key_id"] == "key-7"
    assert got.data.tags["aicp.stage.extract"] == "succeeded"
    assert got.data.metrics["extract.duration_s"] == 1.0
    assert got.data.metrics["extract.attempts"] == 2
    assert got.data.metrics["extract.cost_usd"] == 0.0025
    assert got.data.metrics["extract.rows"] == 2
    assert got.data.metrics["score.cost_usd"] == 0.001
    assert got.data.metrics["cost_usd"] == pytest.approx(0.0035)
    assert got.info.status == "FINISHED"
    assert got.info.start_time == 1_000_000 and got.info.end_time == 1_003_000
    stored = artifact(tracker, run_id, "stages/extract.json", tmp_path)
    assert stored["output"] == {"rows": [1, 2]} and stored["attempts"] == 2


@pytest.mark.parametrize(
    ("status", "mlflow_status"),
    [("succeeded", "FINISHED"), ("failed", "FAILED"), ("cancelled", "KILLED")],
)
def test_run_status_maps_to_mlflow_status(
    tracker: MlflowTracker, status: Any, mlflow_status: str
) -> None:
    run = new_run("status")
    run_id = start(tracker, run, pipeline("status", "a"))
    run.status = status
    run.error = "stage a failed: boom" if status == "failed" else None
    tracker.run_finished(run)
    got = tracker.client.get_run(run_id)
    assert got.info.status == mlflow_status
    assert got.data.tags["aicp.status"] == status
    assert ("aicp.error" in got.data.tags) == (status == "failed")


def test_a_run_that_is_not_final_stays_running(tracker: MlflowTracker) -> None:
    run = new_run("paused")
    run_id = start(tracker, run, pipeline("paused", "a"))
    run.status = "waiting_approval"
    tracker.run_finished(run)
    assert tracker.client.get_run(run_id).info.status == "RUNNING"


def test_a_resumed_run_keeps_its_tracking_run(tracker: MlflowTracker) -> None:
    run = new_run("resumed", params={"n": 1})
    run_id = start(tracker, run, pipeline("resumed", "a"))
    assert tracker.run_started(run, pipeline("resumed", "a")) == run_id
    run.mlflow_run_id = "0" * 32  # a tracking run that is gone: a new one is opened
    assert tracker.run_started(run, pipeline("resumed", "a")) not in (run_id, "0" * 32)


def test_huge_output_is_cut_to_a_preview_and_tagged(tracker: MlflowTracker, tmp_path: Path) -> None:
    run = new_run("big")
    run_id = start(tracker, run, pipeline("big", "dump"))
    tracker.stage_finished(run, finished("dump", output="x" * (MAX_OUTPUT_BYTES + 10)))
    stored = artifact(tracker, run_id, "stages/dump.json", tmp_path)
    assert stored["output"]["truncated"] is True
    assert stored["output"]["bytes"] > MAX_OUTPUT_BYTES
    assert len(stored["output"]["preview"]) < 10_000
    tags = tracker.client.get_run(run_id).data.tags
    assert "over the" in tags["aicp.truncated.dump"]


def test_param_values_and_odd_names_fit_mlflow_limits(tracker: MlflowTracker) -> None:
    run = new_run("limits", params={"prompt": "p" * 10_000, "we!rd key": 1, "..": 2})
    run_id = start(tracker, run, pipeline("limits", "odd stage?"))
    tracker.stage_finished(run, finished("odd stage?", metrics={"f1@k": 0.5}))
    got = tracker.client.get_run(run_id).data
    assert len(got.params["prompt"]) == MAX_PARAM_VALUE
    assert got.params["we_rd key"] == "1" and got.params["_"] == "2"
    assert got.metrics["odd stage_.f1_k"] == 0.5


def test_stages_finishing_in_parallel_threads_are_all_recorded(tracker: MlflowTracker) -> None:
    names = [f"s{i}" for i in range(8)]
    run = new_run("parallel")
    run_id = start(tracker, run, pipeline("parallel", *names))
    together = threading.Barrier(len(names))

    def finish(stage: str) -> None:
        together.wait()
        tracker.stage_finished(run, finished(stage, cost_usd=0.5))

    threads = [threading.Thread(target=finish, args=(n,)) for n in names]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    metrics = tracker.client.get_run(run_id).data.metrics
    assert {f"{n}.cost_usd" for n in names} <= set(metrics)
    listed = tracker.client.list_artifacts(run_id, "stages")
    assert sorted(a.path for a in listed) == sorted(f"stages/{n}.json" for n in names)


def test_a_file_uri_from_config_works(tmp_path: Path) -> None:
    store = tmp_path / "mlruns"
    file_tracker = MlflowTracker(store.as_uri(), tmp_path / "data")
    run = new_run("files")
    run_id = start(file_tracker, run, pipeline("files", "a"))
    file_tracker.stage_finished(run, finished("a", metrics={"score": 1.5}))
    got = file_tracker.client.get_run(run_id)
    assert got.data.metrics["a.score"] == 1.5
    assert store.is_dir()


def test_stage_and_finish_without_a_tracking_run_do_nothing(data_dir: Path) -> None:
    # A tracker that never opened a run must not need MLflow at all.
    idle = MlflowTracker("sqlite:////nonexistent/dir/never.db", data_dir)
    run = new_run("untracked")
    idle.stage_finished(run, finished("a"))
    idle.run_finished(run)
    assert idle._client is None


@pytest.fixture
def clean_env() -> Iterator[dict[str, str]]:
    """The environment without what would disable mlflow telemetry by itself."""
    drop = {"PYTEST_CURRENT_TEST", "CI", "GITHUB_ACTIONS", "DO_NOT_TRACK"}
    drop |= {"MLFLOW_DISABLE_TELEMETRY", "_MLFLOW_TESTING_TELEMETRY"}
    yield {k: v for k, v in os.environ.items() if k not in drop}


def test_mlflow_is_imported_late_and_with_telemetry_off(
    tmp_path: Path, clean_env: dict[str, str]
) -> None:
    script = f"""
import sys
import aicp.pipeline.registry, aicp.pipeline.tracking
assert "mlflow" not in sys.modules, "importing aicp imported mlflow"
from aicp.pipeline import mlflow_env
mlflow_env.client(mlflow_env.default_tracking_uri(__import__("pathlib").Path({str(tmp_path)!r})))
from mlflow.telemetry.client import get_telemetry_client
assert get_telemetry_client() is None, "telemetry client started"
"""
    done = subprocess.run(
        [sys.executable, "-c", script], env=clean_env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr[-2000:]


def test_experiment_artifacts_stay_in_the_data_dir() -> None:
    location = mlflow_env.artifact_location(Path("/srv/aicp"), "aicp/my pipeline")
    assert location == "file:///srv/aicp/mlartifacts/aicp_my_pipeline"
