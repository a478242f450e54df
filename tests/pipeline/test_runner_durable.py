"""Durability: a runner killed with SIGKILL mid-run is resumed by the next one, and the
stages that had finished are not run again."""

from __future__ import annotations

import subprocess
from pathlib import Path

from dbos import DBOS

from tests.pipeline.runner_child import CHILD, engine, eventually, migrate

ROOT = Path(__file__).resolve().parents[2]


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def test_a_killed_run_resumes_in_a_new_process_without_redoing_finished_stages(
    database_url: str, tmp_path: Path
) -> None:
    """On SQLite and on PostgreSQL (`database_url`, tests/conftest.py)."""
    url = migrate(database_url)
    work = tmp_path / "work"
    work.mkdir()
    run_id = "run_killed"
    child = subprocess.Popen(
        [*CHILD, "run", url, str(tmp_path), run_id, str(work)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        eventually(lambda: (work / "b.started").exists() or child.poll() is not None, 30)
        assert child.poll() is None, child.stderr.read() if child.stderr else ""
    finally:
        child.kill()  # SIGKILL: no cleanup of any kind
        child.wait(10)
    assert lines(work / "a.txt") == ["a"] and lines(work / "c.txt") == []

    eng = engine(url, tmp_path)  # this process has never seen the pipeline: it loads its origin
    eng.start()
    try:
        assert eng.get(run_id).status == "running"  # type: ignore[union-attr]
        (work / "b.go").touch()
        run = eng.wait(run_id, 20)
        assert run.status == "succeeded", run.error
        assert lines(work / "a.txt") == ["a"]  # finished before the kill: not redone
        assert lines(work / "b.txt") == ["b", "b"]  # interrupted: run again
        assert lines(work / "c.txt") == ["c"]
        assert run.stages["b"].attempts == 2  # the interrupted attempt counts
        started = [e["data"] for e in eng.events(run_id) if e["type"] == "pipeline.run.started"]
        assert [s["resumed"] for s in started] == [False, True]
        steps = [s["function_name"] for s in DBOS.list_workflow_steps(run_id)]
        assert {"aicp.stage:a", "aicp.stage:b", "aicp.stage:c"} <= set(steps)
    finally:
        eng.close()


def test_another_process_pauses_and_resumes_a_run(tmp_path: Path) -> None:
    url = migrate(f"sqlite:///{tmp_path / 'aicp.db'}")
    work = tmp_path / "work"
    work.mkdir()
    run_id = "run_remote_control"
    # Two live processes on one system database: each its own executor id.
    command = [*CHILD, "run", url, str(tmp_path), run_id, str(work), "child"]
    child = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    ctl = engine(url, tmp_path, executor_id="control")
    try:
        eventually(lambda: (work / "b.started").exists() or child.poll() is not None, 30)
        assert child.poll() is None, child.stderr.read() if child.stderr else ""
        ctl.start()
        assert ctl.pause(run_id).status == "paused"
        (work / "b.go").touch()  # b finishes in the child; c must wait for the resume
        eventually(lambda: (ctl.store.stage_row(run_id, "b") or {}).get("status") == "succeeded")
        assert ctl.wait(run_id, 0.5, until=("succeeded",)).status == "paused"
        assert lines(work / "c.txt") == []
        ctl.resume(run_id)
        run = ctl.wait(run_id, 15)
        assert run.status == "succeeded", run.error
        assert [lines(work / f"{n}.txt") for n in "abc"] == [["a"], ["b"], ["c"]]
    finally:
        child.kill()
        child.wait(10)
        ctl.close()
