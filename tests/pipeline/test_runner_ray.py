"""Distributed stages: the work runs on Ray (a local instance here), the runner checkpoints it."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from aicp.pipeline.runner import PipelineEngine
from tests.pipeline.runner_child import migrated_database, pipeline, stage, started

REQUIRE_VAR = "AICP_REQUIRE_SERVICES"


def require_ray() -> None:
    try:
        import ray  # noqa: F401
    except ImportError:
        if os.environ.get(REQUIRE_VAR) == "1":
            pytest.fail(f"{REQUIRE_VAR}=1 but ray is not installed (the `ray` extra)")
        pytest.skip(f"ray is not installed (the `ray` extra; {REQUIRE_VAR}=1 makes this a failure)")


@pytest.fixture
def eng(tmp_path: Path) -> Iterator[PipelineEngine]:
    with started(migrated_database(tmp_path), tmp_path) as e:
        yield e


def test_a_distributed_stage_runs_on_ray_and_its_attempts_time_out_there(
    eng: PipelineEngine,
) -> None:
    require_ray()
    remote = pipeline(
        "remote",
        replace(stage("r", "pid"), resources={"distributed": True, "num_cpus": 1}),
        stage("after", "echo", value="@r"),
    )
    run = eng.wait(eng.submit(remote), 60)
    assert run.status == "succeeded", run.error
    assert run.stages["r"].output["pid"] != os.getpid()
    assert run.stages["after"].output == run.stages["r"].output
    assert run.stages["r"].metrics == {"remote": 1.0}  # recorded on the worker

    slow = pipeline(
        "slow",
        replace(
            stage("s", "sleepy", seconds=30),
            resources={"distributed": True},
            timeout_s=0.5,
        ),
    )
    run = eng.wait(eng.submit(slow), 30)
    assert run.status == "failed"
    assert "its Ray task was cancelled" in (run.error or "")


def test_without_ray_a_distributed_stage_names_the_extra(
    eng: PipelineEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now fails
    remote = pipeline(
        "remote", replace(stage("r", "pid"), resources={"distributed": True}, retries=2)
    )
    run = eng.wait(eng.submit(remote), 10)
    assert run.status == "failed"
    assert "install the `ray` extra" in (run.error or "")
    assert run.stages["r"].attempts == 1
