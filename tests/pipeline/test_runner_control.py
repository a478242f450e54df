"""Controlling runs: cancel, pause and resume (finished stages are not run again)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from dbos import DBOSClient

from aicp.errors import RequestError
from aicp.pipeline.model import Pipeline
from aicp.pipeline.runner import PipelineEngine
from tests.pipeline.runner_child import (
    WORKDIR,
    eventually,
    migrated_database,
    pipeline,
    stage,
    started,
)
from tests.pipeline.stages_for_runner import Point
from tests.pipeline.test_runner import RecordingTracker


@pytest.fixture
def url(tmp_path: Path) -> str:
    return migrated_database(tmp_path)


@pytest.fixture
def tracker() -> RecordingTracker:
    return RecordingTracker()


@pytest.fixture
def eng(url: str, tmp_path: Path, tracker: RecordingTracker) -> Iterator[PipelineEngine]:
    with started(url, tmp_path, tracker=tracker) as e:
        yield e


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def blocked() -> Pipeline:
    """a, then p (a Point), then b (waits for b.go), then c (takes p) and d."""
    base = pipeline(
        "blocked",
        stage("a", "append_line", workdir="$workdir", name="a"),
        stage("p", "make_point", x=1, y=2, after=("a",)),
        stage("b", "wait_for_file", workdir="$workdir", name="b", after=("p",)),
        stage("c", "add_point", p="@p", after=("b",)),
        stage("d", "append_line", workdir="$workdir", name="d", after=("c",)),
        workdir=WORKDIR,
    )
    stages = dict(base.stages)
    stages["p"] = replace(stages["p"], output=Point)
    stages["c"] = replace(stages["c"], accepts={"p": Point})
    return replace(base, stages=stages)


def starts(eng: PipelineEngine, run_id: str) -> list[dict[str, Any]]:
    return [e for e in eng.events(run_id) if e["type"] == "pipeline.run.started"]


def started_b(eng: PipelineEngine, workdir: Path) -> str:
    run_id = eng.submit(blocked(), {"workdir": str(workdir)})
    eventually(lambda: (workdir / "b.started").exists())
    return run_id


def test_cancel_stops_the_run_for_good(eng: PipelineEngine, url: str, tmp_path: Path) -> None:
    run_id = started_b(eng, tmp_path)
    run = eng.cancel(run_id)
    assert run.status == "cancelled" and run.finished_at is not None
    assert run.stages["d"].status == "cancelled"
    (tmp_path / "b.go").touch()  # the abandoned stage may finish; nothing follows it
    with pytest.raises(RequestError, match="cancelled: it cannot be resumed") as err:
        eng.resume(run_id)
    assert err.value.status == 409
    eng.stop()
    eng.start()  # a new start does not bring it back either
    assert eng.wait(run_id, 1.5, until=("succeeded",)).status == "cancelled"
    assert lines(tmp_path / "d.txt") == []
    assert "pipeline.run.cancelled" in [e["type"] for e in eng.events(run_id)]


def test_pause_starts_nothing_new_and_resume_does_not_redo_finished_stages(
    eng: PipelineEngine, tmp_path: Path, tracker: RecordingTracker
) -> None:
    run_id = started_b(eng, tmp_path)
    assert eng.pause(run_id).status == "paused"
    assert eng.pause(run_id).status == "paused"  # again: no harm
    (tmp_path / "b.go").touch()
    # b finishes while paused (its row records it), but c may not start.
    eventually(lambda: (eng.store.stage_row(run_id, "b") or {}).get("status") == "succeeded")
    assert eng.wait(run_id, 0.5, until=("succeeded",)).status == "paused"
    assert eng.store.stage_row(run_id, "c")["status"] == "pending"  # type: ignore[index]

    assert eng.resume(run_id).status == "running"
    run = eng.wait(run_id, 10)
    assert run.status == "succeeded", run.error
    assert lines(tmp_path / "a.txt") == ["a"] and lines(tmp_path / "b.txt") == ["b"]
    assert run.stages["c"].output == 3  # p's Point, from its checkpoint
    assert lines(tmp_path / "d.txt") == ["d"]
    kinds = [e["type"] for e in eng.events(run_id)]
    assert kinds.count("pipeline.run.paused") == 1 and kinds.count("pipeline.run.resumed") == 1
    assert [e["data"]["resumed"] for e in starts(eng, run_id)] == [False, True]
    assert [c for c in tracker.calls if c[0] == "run_started"] == [("run_started", run_id)]


def test_a_stage_still_working_when_the_run_resumes_is_joined_not_redone(
    eng: PipelineEngine, tmp_path: Path
) -> None:
    run_id = started_b(eng, tmp_path)
    eng.pause(run_id)
    eng.resume(run_id)
    # The resumed workflow replays a and p and reaches b while b's first work still waits.
    eventually(lambda: len(starts(eng, run_id)) == 2)
    time.sleep(0.5)
    (tmp_path / "b.go").touch()
    run = eng.wait(run_id, 10)
    assert run.status == "succeeded", run.error
    assert lines(tmp_path / "b.txt") == ["b"]


def test_control_of_unknown_or_finished_runs_is_refused(eng: PipelineEngine) -> None:
    with pytest.raises(RequestError, match="no pipeline run") as err:
        eng.pause("run_nope")
    assert err.value.status == 404
    run_id = eng.submit(pipeline("quick", stage("a", "echo", value=1)))
    assert eng.wait(run_id, 10).status == "succeeded"
    for action in (eng.cancel, eng.pause, eng.resume):
        with pytest.raises(RequestError, match="is succeeded") as err:
            action(run_id)
        assert err.value.status == 409


def test_a_workflow_cancelled_behind_the_engines_back_shows_as_paused(
    eng: PipelineEngine, tmp_path: Path
) -> None:
    # As after a crash between pause()'s two writes: DBOS cancelled, our row not.
    run_id = started_b(eng, tmp_path)
    eng.stop()
    client = DBOSClient(system_database_url=eng.system_database_url)
    try:
        client.cancel_workflow(run_id)
    finally:
        client.destroy()
    assert eng.store.run_row(run_id)["status"] == "running"  # type: ignore[index]
    eng.start()
    assert eng.get(run_id).status == "paused"  # type: ignore[union-attr]
    (tmp_path / "b.go").touch()
    eng.resume(run_id)
    run = eng.wait(run_id, 10)
    assert run.status == "succeeded", run.error
    assert lines(tmp_path / "a.txt") == ["a"]
