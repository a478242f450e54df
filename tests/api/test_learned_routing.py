"""Learned routing end to end: route memory hears every attempt, the learned strategy
moves traffic to the route that serves, the receipt carries its evidence, and
feedback on a receipt reaches route memory."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from aicp.testing import GatewayServer
from tests.helpers import admin_client, make_key, make_settings

MASTER = "sk-master-learned-test"


@pytest.fixture
def gw() -> Iterator[GatewayServer]:
    settings = make_settings(
        {
            "server": {"master_key": MASTER},
            "providers": {
                "flaky": {
                    "type": "mock",
                    "options": {"failure_rate": 0.8, "failure_status": 503, "seed": 3},
                },
                "steady": {"type": "mock", "options": {"reply": "ok"}},
            },
            "models": [
                {
                    "name": "smart",
                    "strategy": "learned",
                    "deployments": [
                        {"provider": "flaky", "model": "mock-1"},
                        {"provider": "steady", "model": "mock-1"},
                    ],
                }
            ],
            "reliability": {"max_retries": 0, "backoff_base_s": 0.001, "backoff_max_s": 0.002},
            "learning": {"sync_s": 0.2},
        }
    )
    with GatewayServer(settings) as server:
        yield server


def _ask(client: httpx.Client, text: str = "write a python function to sort a list") -> Any:
    resp = client.post(
        "/v1/chat/completions",
        json={"model": "smart", "messages": [{"role": "user", "content": text}]},
    )
    assert resp.status_code == 200, resp.text
    return resp


def _counts(client: httpx.Client) -> dict[str, int]:
    memory = client.get("/admin/routes/memory", params={"task_class": "code"}).json()["data"]
    return {m["route"]: m["count"] for m in memory}


def test_traffic_moves_to_the_route_that_serves(gw: GatewayServer) -> None:
    with admin_client(gw.url, MASTER) as client:
        for _ in range(30):
            _ask(client)
        before = _counts(client)
        for _ in range(30):
            resp = _ask(client)
        after = _counts(client)
        # Every request tries its first route once: the flaky one is first at most 20%.
        assert after["flaky/mock-1"] - before["flaky/mock-1"] <= 6
        assert after["steady/mock-1"] - before["steady/mock-1"] >= 24
        receipt_id = resp.headers["x-aicp-receipt-id"]
        receipt = client.get(f"/v1/receipts/{receipt_id}").json()["receipt"]
        learned = dict(receipt["decisions"])["learned"]
        assert learned["task_class"] == "code" and learned["strategy"] == "learned"
        keys = {c["route"] for c in learned["candidates"]}
        assert keys == {"flaky/mock-1", "steady/mock-1"}
        memory = client.get("/admin/routes/memory", params={"task_class": "code"}).json()["data"]
        by_route = {m["route"]: m for m in memory}
        assert by_route["steady/mock-1"]["success_rate"] > 0.9
        assert by_route["flaky/mock-1"]["success_rate"] < 0.6


def test_feedback_reaches_route_memory_and_is_kept_to_the_receipts_key(
    gw: GatewayServer,
) -> None:
    with admin_client(gw.url, MASTER) as admin:
        key = make_key(admin)["key"]
        other = make_key(admin)["key"]
    with admin_client(gw.url, key) as client:
        resp = _ask(client, "summarise this document for me please")
        receipt_id = resp.headers["x-aicp-receipt-id"]
        given = client.post("/v1/feedback", json={"receipt_id": receipt_id, "score": 0.9})
        assert given.status_code == 201, given.text
        route = given.json()["route"]
        assert (
            client.post("/v1/feedback", json={"receipt_id": receipt_id, "score": 3}).status_code
            == 422
        )
    with admin_client(gw.url, other) as client:
        denied = client.post("/v1/feedback", json={"receipt_id": receipt_id, "score": 0.1})
        assert denied.status_code == 404
        assert client.get("/admin/routes/memory").status_code == 403
    with admin_client(gw.url, MASTER) as admin:
        memory = admin.get("/admin/routes/memory").json()["data"]
    (cell,) = [
        m for m in memory if m["route"] == route and m["task_class"] == given.json()["task_class"]
    ]
    assert cell["feedback_n"] > 0 and abs(cell["feedback"] - 0.9) < 1e-3
