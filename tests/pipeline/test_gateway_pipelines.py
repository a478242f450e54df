"""Pipelines run by a real gateway, through its API: keys, receipts, approvals, events."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import websockets.sync.client as ws_client

from aicp.testing import FakeUpstream, GatewayServer
from tests.helpers import admin_client, make_key
from tests.pipeline.fake_ctx import MASTER, priced_settings

ANSWER_YAML = """
pipeline: answer
params:
  question: {type: str}
stages:
  answer:
    type: llm
    with:
      model: chat
      prompt: "Answer briefly: {question}"
    inputs: {question: "${params.question}"}
  check:
    type: validate
    inputs: {value: "${stages.answer}"}
    with:
      checks: [{check: not_empty}]
"""

APPROVAL_YAML = """
pipeline: gated
stages:
  draft:
    type: llm
    with: {model: chat, prompt: "Write a release note."}
  ship:
    type: approval
    depends_on: [draft]
    with: {message: "Ship the release note?", timeout_s: 60, default: reject}
  final:
    type: llm
    depends_on: [ship]
    with: {model: chat, prompt: "Say done."}
"""


@pytest.fixture(scope="module")
def gw(module_upstream: FakeUpstream) -> Iterator[GatewayServer]:
    with GatewayServer(priced_settings(module_upstream)) as server:
        yield server


@pytest.fixture(scope="module")
def admin(gw: GatewayServer) -> Iterator[httpx.Client]:
    with admin_client(gw.url, MASTER) as client:
        yield client


@pytest.fixture(scope="module")
def member_key(admin: httpx.Client) -> dict[str, Any]:
    return make_key(admin, name="pipelines member")


@pytest.fixture(scope="module")
def member(gw: GatewayServer, member_key: dict[str, Any]) -> Iterator[httpx.Client]:
    with admin_client(gw.url, member_key["key"]) as client:
        yield client


def wait_for(client: httpx.Client, run_id: str, *statuses: str, timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        run = client.get(f"/v1/pipelines/runs/{run_id}").json()
        if run["status"] in statuses:
            return run
        assert time.monotonic() < deadline, f"run still {run['status']}: {run}"
        time.sleep(0.1)


def test_a_key_runs_builtin_stages_and_the_run_costs_the_sum_of_its_receipts(
    member: httpx.Client,
    member_key: dict[str, Any],
    admin: httpx.Client,
    module_upstream: FakeUpstream,
) -> None:
    module_upstream.reply = "Ten."
    started = member.post(
        "/v1/pipelines/runs", json={"yaml": ANSWER_YAML, "params": {"question": "How many?"}}
    )
    assert started.status_code == 202, started.text
    run = wait_for(member, started.json()["id"], "succeeded", "failed")
    assert run["status"] == "succeeded", run
    answer = run["stages"]["answer"]
    assert answer["output"] == "Ten." and len(answer["receipts"]) == 1
    receipts = [admin.get(f"/v1/receipts/{r}").json()["receipt"] for r in answer["receipts"]]
    # The stage's call went through the request path as the member's key, labelled.
    assert receipts[0]["labels"]["pipeline_run"] == run["id"]
    assert receipts[0]["principal"]["key_id"] == member_key["id"]
    assert run["key_id"] == member_key["id"]
    total = sum(r["cost_micros"] for r in receipts) / 1_000_000
    assert total > 0 and run["cost_usd"] == pytest.approx(total)
    costs = member.get("/v1/pipelines/costs", params={"pipeline": "answer"}).json()
    mine = next(r for r in costs["runs"] if r["id"] == run["id"])
    assert mine["cost_usd"] == pytest.approx(total)
    # The member sees its run; another key does not.
    assert member.get(f"/v1/pipelines/runs/{run['id']}").status_code == 200


def test_a_run_of_another_key_is_not_found(
    member: httpx.Client, admin: httpx.Client, gw: GatewayServer
) -> None:
    other = make_key(admin, name="someone else")["key"]
    started = member.post(
        "/v1/pipelines/runs", json={"yaml": ANSWER_YAML, "params": {"question": "Hi?"}}
    ).json()
    with admin_client(gw.url, other) as stranger:
        assert stranger.get(f"/v1/pipelines/runs/{started['id']}").status_code == 404
        listed = stranger.get("/v1/pipelines/runs").json()["data"]
        assert started["id"] not in {r["id"] for r in listed}
    wait_for(member, started["id"], "succeeded", "failed")


def test_running_imported_code_needs_an_admin_key(
    member: httpx.Client, admin: httpx.Client
) -> None:
    body = {"ref": "tests.pipeline.sample_stages:tiny", "params": {}}
    refused = member.post("/v1/pipelines/runs", json=body)
    assert refused.status_code == 403, refused.text
    assert "admin" in refused.json()["error"]["message"]
    # YAML that names a callable is imported code too.
    yaml_call = "pipeline: p\nstages:\n  a: {call: 'os:getcwd'}\n"
    assert member.post("/v1/pipelines/runs", json={"yaml": yaml_call}).status_code == 403


@pytest.mark.parametrize("path", ["/v1/pipelines/runs", "/v1/pipelines/validate"])
def test_a_member_cannot_make_the_gateway_import_a_module(member: httpx.Client, path: str) -> None:
    marker = "tests.pipeline.import_marker"
    sys.modules.pop(marker, None)
    for body in (
        {"ref": f"{marker}:stage"},
        {"yaml": f"pipeline: p\nstages:\n  a: {{call: '{marker}:stage'}}\n"},
    ):
        refused = member.post(path, json=body)
        assert refused.status_code == 403, refused.text
        assert refused.json()["error"]["code"] == "admin_required"
    assert marker not in sys.modules  # refused before compiling, which would import it


def test_a_bad_pipeline_is_a_400_listing_every_problem(member: httpx.Client) -> None:
    bad = "pipeline: p\nstages:\n  a: {type: llm, with: {prompt: hi}}\n  b: {type: nope}\n"
    got = member.post("/v1/pipelines/runs", json={"yaml": bad})
    assert got.status_code == 400, got.text
    message = got.json()["error"]["message"]
    assert "stage 'a'" in message and "model" in message and "stage 'b'" in message
    checked = member.post("/v1/pipelines/validate", json={"yaml": bad}).json()
    assert checked["valid"] is False and len(checked["problems"]) >= 2
    missing = member.post("/v1/pipelines/runs", json={"yaml": ANSWER_YAML, "params": {}})
    assert missing.status_code == 400 and "question" in missing.json()["error"]["message"]


def test_a_failing_gate_stops_the_run_with_its_report(
    member: httpx.Client, module_upstream: FakeUpstream
) -> None:
    module_upstream.reply = ""
    try:
        started = member.post(
            "/v1/pipelines/runs", json={"yaml": ANSWER_YAML, "params": {"question": "Q?"}}
        ).json()
        run = wait_for(member, started["id"], "succeeded", "failed")
    finally:
        module_upstream.reply = "Hello from the fake upstream"
    assert run["status"] == "failed"
    check = run["stages"]["check"]
    assert check["status"] == "failed"
    assert [f["check"] for f in check["report"]["failed"]] == ["not_empty"]


def test_an_approval_is_decided_over_the_api_and_the_events_stream_tells_it(
    member: httpx.Client, admin: httpx.Client, gw: GatewayServer
) -> None:
    started = member.post("/v1/pipelines/runs", json={"yaml": APPROVAL_YAML}).json()
    run = wait_for(member, started["id"], "waiting_approval")
    assert run["stages"]["final"]["status"] == "pending"  # nothing runs past the gate
    pending = member.get("/v1/approvals", params={"run_id": run["id"]}).json()["data"]
    assert [p["stage"] for p in pending] == ["ship"]
    decided = admin.post(f"/v1/approvals/{run['id']}/ship", json={"approve": True})
    assert decided.status_code == 200, decided.text
    done = wait_for(member, run["id"], "succeeded", "failed")
    assert done["status"] == "succeeded"
    assert done["stages"]["ship"]["output"]["approved"] is True
    # The stream replays the run's history and closes when the run has ended.
    key = member.headers["authorization"].removeprefix("Bearer ")
    url = gw.url.replace("http", "ws") + f"/v1/pipelines/runs/{run['id']}/events"
    types = []
    with ws_client.connect(url, additional_headers={"authorization": f"Bearer {key}"}) as ws:
        for message in ws:
            types.append(json.loads(message)["type"])
    assert types[0] == "pipeline.run.started"
    assert "pipeline.run.waiting_approval" in types and "pipeline.approval.decided" in types
    assert types[-1] == "pipeline.run.completed"


def test_cancel_and_unknown_runs(member: httpx.Client) -> None:
    started = member.post("/v1/pipelines/runs", json={"yaml": APPROVAL_YAML}).json()
    wait_for(member, started["id"], "waiting_approval")
    cancelled = member.post(f"/v1/pipelines/runs/{started['id']}/cancel")
    assert cancelled.status_code == 200, cancelled.text
    assert wait_for(member, started["id"], "cancelled")["status"] == "cancelled"
    again = member.post(f"/v1/pipelines/runs/{started['id']}/resume")
    assert again.status_code == 409
    assert member.get("/v1/pipelines/runs/run_nope").status_code == 404


def test_pause_and_resume_over_the_api(member: httpx.Client, admin: httpx.Client) -> None:
    started = member.post("/v1/pipelines/runs", json={"yaml": APPROVAL_YAML}).json()
    wait_for(member, started["id"], "waiting_approval")
    paused = member.post(f"/v1/pipelines/runs/{started['id']}/pause")
    assert paused.status_code == 200, paused.text
    wait_for(member, started["id"], "paused")
    resumed = member.post(f"/v1/pipelines/runs/{started['id']}/resume")
    assert resumed.status_code == 200, resumed.text
    run = wait_for(member, started["id"], "waiting_approval")
    # The stage finished before the pause is not run again: still one receipt.
    assert len(run["stages"]["draft"]["receipts"]) == 1
    admin.post(f"/v1/approvals/{started['id']}/ship", json={"approve": True})
    done = wait_for(member, started["id"], "succeeded", "failed")
    assert done["status"] == "succeeded"
    assert len(done["stages"]["draft"]["receipts"]) == 1
