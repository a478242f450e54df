"""Each script in examples/ runs, as a user would run it, against a real gateway."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from typer.testing import CliRunner

from aicp.cli.main import app
from aicp.testing import FakeUpstream, GatewayServer
from tests.helpers import openai_settings

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
MASTER = "sk-master-examples"
PRICE = {"input_cost_per_mtok": 1000.0, "output_cost_per_mtok": 2000.0}
MODELS = [
    {"name": "gpt-4o-mini", "deployments": [{"provider": "up", "model": "fake-model", **PRICE}]},
    {"name": "route-a", "deployments": [{"provider": "up", "model": "fake-model", **PRICE}]},
    {"name": "route-b", "deployments": [{"provider": "up", "model": "fake-model-2", **PRICE}]},
    {
        "name": "text-embedding-3-small",
        "deployments": [{"provider": "up", "model": "fake-embed", "input_cost_per_mtok": 100.0}],
    },
]
SOURCE = re.compile(r"\[([a-z]+)\] ")


@pytest.fixture
def gw(upstream: FakeUpstream) -> Iterator[GatewayServer]:
    settings = openai_settings(upstream, server={"master_key": MASTER}, models=MODELS)
    with GatewayServer(settings) as server:
        yield server


def script(name: str, gw: GatewayServer, *args: str, **env: str) -> subprocess.Popen[str]:
    environ = {
        **os.environ,
        "AICP_BASE_URL": gw.url,
        "AICP_API_KEY": MASTER,
        "PYTHONPATH": str(ROOT),
        **env,
    }
    return subprocess.Popen(
        [sys.executable, str(EXAMPLES / name), *args],
        cwd=ROOT,
        env=environ,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(proc: subprocess.Popen[str], timeout: float = 120) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


def admin(gw: GatewayServer) -> httpx.Client:
    return httpx.Client(base_url=gw.url, headers={"authorization": f"Bearer {MASTER}"}, timeout=60)


def test_simple_chat(gw: GatewayServer, upstream: FakeUpstream) -> None:
    upstream.reply = "A breaker stops calls to a failing provider."
    code, out, err = finish(script("simple_chat.py", gw, "What is a breaker?"))
    assert code == 0, err
    assert out.strip() == upstream.reply
    assert re.search(r"receipt: rcpt_\w+", err)
    sent = upstream.requests[-1].body
    assert sent["messages"] == [{"role": "user", "content": "What is a breaker?"}]


def cite_first_source(body: dict[str, Any]) -> str:
    """An upstream that answers from its context, citing the first document it was given."""
    prompt = body["messages"][-1]["content"]
    found = SOURCE.findall(prompt)
    return f"From the context [{found[0]}]: it depends." if found else "I cannot tell."


def test_rag_pipeline_answers_with_cited_sources(gw: GatewayServer, upstream: FakeUpstream) -> None:
    upstream.respond = cite_first_source
    code, out, err = finish(script("rag_pipeline.py", gw))
    assert code == 0, out + err
    assert out.count("Q: ") == 2 and "sources: " in out
    run_id = re.search(r"run (run_\w+): succeeded", out)
    assert run_id, out
    with admin(gw) as client:
        run = client.get(f"/v1/pipelines/runs/{run_id.group(1)}").json()
        # embed the chunks, embed the questions, one answer each: four receipts.
        receipts = [r for s in run["stages"].values() for r in s["receipts"]]
        assert len(receipts) == 4
        total = sum(
            client.get(f"/v1/receipts/{r}").json()["receipt"]["cost_micros"] for r in receipts
        )
        assert total > 0 and run["cost_usd"] == pytest.approx(total / 1_000_000)
        answers = run["stages"]["answer"]["output"]
        assert all(a["sources"] for a in answers)


def test_rag_pipeline_yaml_twin_and_its_gate(gw: GatewayServer, upstream: FakeUpstream) -> None:
    text = (EXAMPLES / "rag_pipeline.yaml").read_text()
    with admin(gw) as client:
        upstream.respond = cite_first_source
        good = client.post("/v1/pipelines/runs", json={"yaml": text}).json()
        assert wait(client, good["id"])["status"] == "succeeded"
        upstream.respond = lambda body: "It depends, with no source."
        bad = client.post("/v1/pipelines/runs", json={"yaml": text}).json()
        failed = wait(client, bad["id"])
    assert failed["status"] == "failed"
    gate = failed["stages"]["cites_sources"]
    assert gate["status"] == "failed" and gate["report"]["failed"]


def wait(client: httpx.Client, run_id: str, *statuses: str, timeout: float = 60) -> Any:
    wanted = statuses or ("succeeded", "failed", "cancelled")
    deadline = time.monotonic() + timeout
    while True:
        run = client.get(f"/v1/pipelines/runs/{run_id}").json()
        if run["status"] in wanted:
            return run
        assert time.monotonic() < deadline, run
        time.sleep(0.1)


def test_ab_test_pipeline_promotes_the_winner_after_approval(
    gw: GatewayServer, upstream: FakeUpstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("mlflow", reason="the A/B example logs to MLflow (the `mlops` extra)")
    cases = json.loads((EXAMPLES / "ab_cases.json").read_text())
    answers = {c["question"]: c["reference"] for c in cases}

    def respond(body: dict[str, Any]) -> str:
        question = body["messages"][-1]["content"].removeprefix("Answer in one short sentence. ")
        # Route b (fake-model-2) knows the answers; route a does not.
        return f"It is {answers[question]}." if body["model"] == "fake-model-2" else "No idea."

    upstream.respond = respond
    proc = script("ab_test_pipeline.py", gw, "route-a", "route-b")
    with admin(gw) as client:
        deadline = time.monotonic() + 60
        while not (pending := client.get("/v1/approvals").json()["data"]):
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the run never asked for approval"
            time.sleep(0.1)
        run_id = pending[0]["run_id"]
        # Nothing is promoted before the approval.
        assert client.get("/v1/registry/models").json()["data"] == []
        monkeypatch.setenv("COLUMNS", "200")
        approved = CliRunner().invoke(
            app, ["pipeline", "approve", run_id, "--url", gw.url, "--key", MASTER]
        )
        assert approved.exit_code == 0, approved.output
        code, out, err = finish(proc)
        assert code == 0, out + err
        assert "winner route-b" in out
        run = client.get(f"/v1/pipelines/runs/{run_id}").json()
        assert run["stages"]["eval_b"]["output"]["metrics"]["contains"] == 1.0
        assert run["stages"]["eval_a"]["output"]["metrics"]["contains"] == 0.0
        mlflow_run = run["mlflow_run_id"]
    # The alias the registry moved serves the winner now.
    client_sdk = openai.OpenAI(base_url=gw.url + "/v1", api_key=MASTER, max_retries=0)
    client_sdk.chat.completions.create(
        model="assistant", messages=[{"role": "user", "content": "What is the capital of France?"}]
    )
    assert upstream.requests[-1].body["model"] == "fake-model-2"
    # Both candidates are in MLflow, with their scores and costs.
    from mlflow import MlflowClient

    data_dir = Path(gw.app.settings.storage.data_dir)
    tracked = MlflowClient(f"sqlite:///{data_dir / 'mlflow.db'}").get_run(mlflow_run).data.metrics
    assert tracked["eval_a.contains"] == 0.0 and tracked["eval_b.contains"] == 1.0
    assert tracked["ask_a.cost_usd"] > 0 and tracked["ask_b.cost_usd"] > 0
