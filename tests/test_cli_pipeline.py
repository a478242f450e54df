"""`aicp pipeline validate|run|status|list|approve|cancel` against a running gateway."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from aicp.cli.main import app
from aicp.testing import FakeUpstream, GatewayServer
from tests.helpers import run_cli
from tests.pipeline.fake_ctx import MASTER, priced_settings
from tests.pipeline.test_gateway_pipelines import ANSWER_YAML, APPROVAL_YAML

runner = CliRunner()


@pytest.fixture
def gw(upstream: FakeUpstream, cli_env: None) -> Iterator[GatewayServer]:
    with GatewayServer(priced_settings(upstream)) as server:
        yield server


def aicp(gw: GatewayServer, *args: str, code: int = 0) -> str:
    return run_cli(gw.url, MASTER, "pipeline", *args, code=code)


def test_validate_reports_each_problem_with_its_line(tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text(ANSWER_YAML)
    result = runner.invoke(app, ["pipeline", "validate", str(good)])
    assert result.exit_code == 0 and "answer: valid, 2 stages" in result.output
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "pipeline: p\nstages:\n  a: {type: llm, with: {prompt: hi}}\n  b: {depends_on: [c]}\n"
    )
    result = runner.invoke(app, ["pipeline", "validate", str(bad)])
    assert result.exit_code == 1
    assert re.search(r"bad\.yaml:3: stage 'a': .*model", result.output)
    assert re.search(r"bad\.yaml:4: stage 'b': .*'c'", result.output)


def test_run_watch_then_status_and_list(
    gw: GatewayServer, upstream: FakeUpstream, tmp_path: Path
) -> None:
    upstream.reply = "Forty-two."
    file = tmp_path / "answer.yaml"
    file.write_text(ANSWER_YAML)
    out = aicp(gw, "run", str(file), "--param", "question=What is it?", "--watch")
    run_id = re.search(r"run (run_\w+) of answer", out)
    assert run_id, out
    assert "succeeded: cost $0.025000" in out
    status = aicp(gw, "status", run_id.group(1), "--json")
    assert '"output": "Forty-two."' in status
    assert run_id.group(1) in aicp(gw, "list", "--pipeline", "answer")
    # A failed run exits 1 with --watch.
    upstream.reply = ""
    out = aicp(gw, "run", str(file), "-p", "question=Again?", "--watch", code=1)
    assert "failed" in out and "validation gate 'check' failed" in out


def test_approve_and_cancel(gw: GatewayServer, tmp_path: Path) -> None:
    file = tmp_path / "gated.yaml"
    file.write_text(APPROVAL_YAML)
    first = re.search(r"run (run_\w+)", aicp(gw, "run", str(file))).group(1)  # type: ignore[union-attr]
    second = re.search(r"run (run_\w+)", aicp(gw, "run", str(file))).group(1)  # type: ignore[union-attr]
    for run_id in (first, second):
        wait_status(gw, run_id, "waiting_approval")
    assert "ship of run" in aicp(gw, "approve", first)
    assert "cancelled" in aicp(gw, "cancel", second)
    wait_status(gw, first, "succeeded")
    wait_status(gw, second, "cancelled")


def status_json(gw: GatewayServer, run_id: str) -> str:
    """`aicp pipeline status --json` as printed to stdout (the in-process gateway's own
    log lines, MLflow's among them, go to stderr)."""
    return run_cli(gw.url, MASTER, "pipeline", "status", run_id, "--json")


def wait_status(gw: GatewayServer, run_id: str, status: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while json.loads(status_json(gw, run_id))["status"] != status:
        assert time.monotonic() < deadline, f"run {run_id} never became {status}"
        time.sleep(0.1)
