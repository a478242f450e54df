"""The runner's scheduling: concurrency, DAG order, retries with backoff, timeouts."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from aicp.pipeline.model import PipelineRun, Ref
from aicp.pipeline.runner import PipelineEngine
from tests.pipeline.runner_child import WORKDIR, migrated_database, pipeline, stage, started


@pytest.fixture
def eng(tmp_path: Path) -> Iterator[PipelineEngine]:
    with started(migrated_database(tmp_path), tmp_path) as e:
        yield e


def done(eng: PipelineEngine, run_id: str) -> PipelineRun:
    run = eng.wait(run_id, timeout=10)
    assert run.status in ("succeeded", "failed"), run.as_dict()
    return run


def overlap(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return bool(a["start"] < b["end"] and b["start"] < a["end"])


# --- concurrency ----------------------------------------------------------------------


def test_independent_stages_run_at_the_same_time(eng: PipelineEngine) -> None:
    barrier = threading.Barrier(2, timeout=5)  # broken unless both wait at once
    both = pipeline(
        "meet",
        stage("a", "meet", barrier=Ref("value", value=barrier), name="a"),
        stage("b", "meet", barrier=Ref("value", value=barrier), name="b"),
        concurrency=2,
    )
    run = done(eng, eng.submit(both))
    assert run.status == "succeeded", run.error


@pytest.mark.parametrize(("limit", "together"), [(1, False), (2, True)])
def test_concurrency_limits_how_many_stages_run_at_once(
    eng: PipelineEngine, limit: int, together: bool
) -> None:
    two = pipeline(
        "two",
        stage("a", "interval", name="a", seconds=0.3),
        stage("b", "interval", name="b", seconds=0.3),
        concurrency=limit,
    )
    run = done(eng, eng.submit(two))
    assert run.status == "succeeded", run.error
    assert overlap(run.stages["a"].output, run.stages["b"].output) is together


def test_a_stage_starts_when_its_own_dependencies_are_done(eng: PipelineEngine) -> None:
    # Not level by level: c needs only b, so it runs while the slow a still does.
    dag = pipeline(
        "dag",
        stage("a", "interval", name="a", seconds=1.0),
        stage("b", "interval", name="b", seconds=0.05),
        stage("c", "interval", name="c", seconds=0.05, after=("b",)),
        stage("d", "echo", value="@a", after=("c",)),
    )
    run = done(eng, eng.submit(dag))
    assert run.status == "succeeded", run.error
    a, c = run.stages["a"].output, run.stages["c"].output
    assert c["end"] < a["end"]
    assert run.stages["d"].output == a


# --- retries ------------------------------------------------------------------------


def flaky(failures: int, retries: int) -> Any:
    return pipeline(
        "flaky",
        replace(
            stage("f", "flaky", workdir="$workdir", failures=failures),
            retries=retries,
            backoff_s=0.05,
        ),
        stage("after", "echo", value="@f"),
        workdir=WORKDIR,
    )


def test_a_failed_attempt_is_retried_with_doubling_backoff(
    eng: PipelineEngine, tmp_path: Path
) -> None:
    run_id = eng.submit(flaky(failures=2, retries=2), {"workdir": str(tmp_path)})
    run = done(eng, run_id)
    assert run.status == "succeeded", run.error
    assert run.stages["f"].attempts == 3 and run.stages["f"].output == 3
    events = [e for e in eng.events(run_id) if e["data"]["stage"] == "f"]
    retries = [e for e in events if e["type"] == "pipeline.stage.retry"]
    assert [r["data"]["attempt"] for r in retries] == [1, 2]
    assert [r["data"]["error"] for r in retries] == ["ValueError: boom 1", "ValueError: boom 2"]
    assert [r["data"]["delay_s"] for r in retries] == [0.05, 0.1]
    starts = [e["time"] for e in events if e["type"] == "pipeline.stage.started"]
    assert len(starts) == 3
    assert starts[1] - starts[0] >= 0.05 and starts[2] - starts[1] >= 0.1


def test_after_the_last_attempt_the_run_fails_with_the_error(
    eng: PipelineEngine, tmp_path: Path
) -> None:
    run_id = eng.submit(flaky(failures=5, retries=1), {"workdir": str(tmp_path)})
    run = done(eng, run_id)
    assert run.status == "failed"
    assert run.error == "stage 'f' failed: ValueError: boom 2"
    assert run.stages["f"].attempts == 2 and run.stages["f"].status == "failed"
    assert run.stages["after"].status == "skipped"
    kinds = [e["type"] for e in eng.events(run_id) if e["data"]["stage"] == "f"]
    assert kinds == [
        "pipeline.stage.started",
        "pipeline.stage.retry",
        "pipeline.stage.started",
        "pipeline.stage.failed",
    ]
    assert eng.events(run_id)[-1]["type"] == "pipeline.run.failed"


def test_stage_failed_is_not_retried_and_keeps_its_report(
    eng: PipelineEngine, tmp_path: Path
) -> None:
    closed = pipeline(
        "gate",
        replace(stage("g", "gate", workdir="$workdir"), retries=3, backoff_s=0.01),
        workdir=WORKDIR,
    )
    run = done(eng, eng.submit(closed, {"workdir": str(tmp_path)}))
    assert run.status == "failed"
    assert run.stages["g"].attempts == 1
    assert run.stages["g"].report == {"checks": ["closed"]}
    assert "StageFailed: the gate is closed" in (run.error or "")
    assert (tmp_path / "gate.count").read_text() == "1"


def test_a_failure_starts_nothing_new_but_lets_running_stages_finish(
    eng: PipelineEngine, tmp_path: Path
) -> None:
    mixed = pipeline(
        "mixed",
        stage("slow", "interval", name="slow", seconds=0.5),
        stage("bad", "flaky", workdir="$workdir", failures=9),
        stage("later", "echo", value=1, after=("bad",)),
        workdir=WORKDIR,
    )
    run = done(eng, eng.submit(mixed, {"workdir": str(tmp_path)}))
    assert run.status == "failed"
    assert run.stages["slow"].status == "succeeded"
    assert run.stages["later"].status == "skipped"


# --- timeouts -----------------------------------------------------------------------


def test_an_attempt_over_its_timeout_fails_and_is_retried(eng: PipelineEngine) -> None:
    slow = pipeline(
        "slow", replace(stage("s", "sleepy", seconds=3.0), timeout_s=0.2, retries=1, backoff_s=0.01)
    )
    began = time.monotonic()
    run = done(eng, eng.submit(slow))
    assert time.monotonic() - began < 2.5  # the 3 s sleeps were abandoned
    assert run.status == "failed"
    assert run.stages["s"].attempts == 2
    assert "timed out after 0.2 s" in (run.stages["s"].error or "")
