"""`aicp serve` killed with SIGKILL in the middle of a run resumes it at its next start,
without running the finished stages again."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets.sync.client as ws_client
import yaml

from aicp.testing import FakeUpstream
from aicp.testing.server import free_port

ROOT = Path(__file__).resolve().parents[2]
MASTER = "sk-master-durable"
STAGES = "tests.pipeline.stages_for_runner"
PIPELINE = f"""
pipeline: survives
params:
  workdir: {{type: str}}
stages:
  first:
    call: {STAGES}:append_line
    inputs: {{workdir: "${{params.workdir}}", name: first}}
  second:
    call: {STAGES}:wait_for_file
    depends_on: [first]
    inputs: {{workdir: "${{params.workdir}}", name: second, timeout_s: 60}}
  answer:
    type: llm
    depends_on: [second]
    with: {{model: chat, prompt: "All done?"}}
"""


class Serve:
    """`aicp serve` as a child process on its own port."""

    def __init__(self, config: Path) -> None:
        self.config = config
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        aicp = Path(sys.executable).parent / "aicp"
        self.proc = subprocess.Popen(
            [str(aicp), "serve", "--config", str(self.config), "--port", str(self.port)],
            cwd=ROOT,
            env={**os.environ, "AICP_LOG_LEVEL": "warning"},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(self.url + "/ready", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            assert self.proc.poll() is None, "aicp serve exited"
            assert time.monotonic() < deadline, "aicp serve did not become ready"
            time.sleep(0.1)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()


@pytest.fixture
def serve(upstream: FakeUpstream, tmp_path: Path) -> Iterator[Serve]:
    config = {
        "server": {"master_key": MASTER},
        "storage": {"data_dir": str(tmp_path / "data")},
        "providers": {"up": {"type": "openai", "base_url": upstream.url + "/v1", "api_key": "x"}},
        "models": [
            {
                "name": "chat",
                "deployments": [
                    {"provider": "up", "model": "fake-model", "input_cost_per_mtok": 1000.0}
                ],
            }
        ],
        "pipelines": {"tracking": False},
    }
    path = tmp_path / "aicp.yaml"
    path.write_text(yaml.safe_dump(config))
    server = Serve(path)
    try:
        yield server
    finally:
        server.stop()


def get(serve: Serve, path: str) -> Any:
    headers = {"authorization": f"Bearer {MASTER}"}
    return httpx.get(serve.url + path, headers=headers, timeout=10).json()


def test_a_run_survives_a_killed_gateway(serve: Serve, tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    serve.start()
    started = httpx.post(
        serve.url + "/v1/pipelines/runs",
        json={"yaml": PIPELINE, "params": {"workdir": str(work)}},
        headers={"authorization": f"Bearer {MASTER}"},
        timeout=30,
    )
    assert started.status_code == 202, started.text
    run_id = started.json()["id"]
    deadline = time.monotonic() + 30
    while not (work / "second.started").exists():
        assert time.monotonic() < deadline, "the second stage never started"
        time.sleep(0.05)
    serve.kill()  # SIGKILL: no shutdown, no goodbye
    assert (work / "first.txt").read_text() == "first\n"

    (work / "second.go").touch()  # the blocked stage may finish once it runs again
    serve.start()
    deadline = time.monotonic() + 60
    while (run := get(serve, f"/v1/pipelines/runs/{run_id}"))["status"] != "succeeded":
        assert run["status"] not in ("failed", "cancelled"), run
        assert time.monotonic() < deadline, run
        time.sleep(0.1)
    # The finished stage was not run again; the interrupted one was.
    assert (work / "first.txt").read_text() == "first\n"
    assert (work / "second.txt").read_text() == "second\nsecond\n"
    assert run["stages"]["answer"]["receipts"]
    # Its history says so: started, then started again as resumed.
    url = serve.url.replace("http", "ws") + f"/v1/pipelines/runs/{run_id}/events"
    headers = {"authorization": f"Bearer {MASTER}"}
    with ws_client.connect(url, additional_headers=headers) as ws:
        history = [json.loads(m) for m in ws]
    starts = [e["data"].get("resumed") for e in history if e["type"] == "pipeline.run.started"]
    assert starts == [False, True], starts
    assert history[-1]["type"] == "pipeline.run.completed"
