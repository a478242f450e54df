"""Two gateway processes on one PostgreSQL database: an answer one of them cached
answers the other, an invalidation on one reaches the other, and route memory is
the sum of what both saw."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx

from aicp.testing import FakeUpstream, GatewayServer
from tests.helpers import admin_client, make_settings

MASTER = "sk-master-pg-memory"
ASK = {"model": "m", "messages": [{"role": "user", "content": "What is the capital of Peru?"}]}


def _settings(up: FakeUpstream, url: str, data_dir: str) -> Any:
    # One data directory: the two processes share the receipt log's signing key.
    return make_settings(
        {
            "server": {"master_key": MASTER},
            "storage": {"database_url": url, "data_dir": data_dir},
            "providers": {"up": {"type": "openai", "base_url": up.url + "/v1", "api_key": "sk-up"}},
            "models": [{"name": "m", "deployments": [{"provider": "up", "model": "fake-model"}]}],
            "cache": {"exact": {"enabled": True}, "sync_s": 0.2},
            "learning": {"sync_s": 0.2},
        }
    )


def _eventually(check: Callable[[], bool], seconds: float = 8.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.2)
    return check()


def _result(client: httpx.Client) -> str:
    resp = client.post("/v1/chat/completions", json=ASK)
    assert resp.status_code == 200, resp.text
    receipt = client.get(f"/v1/receipts/{resp.headers['x-aicp-receipt-id']}").json()
    result: str = receipt["receipt"]["cache"][0]["result"]
    return result


def test_two_gateways_share_answers_invalidations_and_route_memory(
    postgres_url: str, tmp_path: Any
) -> None:
    with FakeUpstream() as up:
        settings = _settings(up, postgres_url, str(tmp_path))
        again = _settings(up, postgres_url, str(tmp_path))
        with (
            GatewayServer(settings) as one,
            GatewayServer(again) as two,
            admin_client(one.url, MASTER) as a,
            admin_client(two.url, MASTER) as b,
        ):
            assert _result(a) == "miss"
            assert _eventually(lambda: _result(b) == "hit")
            assert a.delete("/admin/cache", params={"model": "m"}).json()["deleted"] >= 1
            assert _eventually(lambda: _result(b) == "miss")

            calls = sum(1 for r in up.requests if r.method == "POST")

            def counted() -> bool:
                rows = b.get("/admin/routes/memory").json()["data"]
                seen = sum(r["count"] for r in rows if r["route"] == "up/fake-model")
                return bool(seen == calls)

            # Every upstream call, either gateway's, is in the other's route memory.
            assert calls >= 2 and _eventually(counted)
            stats = a.get("/admin/cache/stats").json()
            assert stats["hits"] >= 1 and stats["misses"] >= 2


def test_a_process_with_another_signing_key_gets_a_clear_error(
    postgres_url: str, tmp_path: Any
) -> None:
    with FakeUpstream() as up:
        one = _settings(up, postgres_url, str(tmp_path / "one"))
        two = _settings(up, postgres_url, str(tmp_path / "two"))
        with (
            GatewayServer(one) as first,
            GatewayServer(two) as second,
            admin_client(first.url, MASTER) as a,
            admin_client(second.url, MASTER) as b,
        ):
            resp = a.post("/v1/chat/completions", json=ASK)
            assert a.get(f"/v1/receipts/{resp.headers['x-aicp-receipt-id']}").status_code == 200
            other = b.get(f"/v1/receipts/{resp.headers['x-aicp-receipt-id']}")
    assert other.status_code == 500
    assert other.json()["error"]["code"] == "checkpoint_key_mismatch"
    assert "receipts.signing_key" in other.json()["error"]["message"]
