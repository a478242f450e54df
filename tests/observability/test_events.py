"""Each producer emits its event, seen through GET /v1/events of the real gateway.

The request path (started, route decided, retries, fallbacks), the breakers
(under a 5xx storm from the fake upstream), budgets, rate limits and the admin
API (keys). Payloads carry who and what, never a key, a hash or a body.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from aicp.config import Settings
from aicp.testing import FakeUpstream, GatewayServer
from tests.helpers import make_settings
from tests.observability.wsutil import admin, chat, drain, new_key, new_team, of_type, until, watch

MASTER = "sk-master-producers"


def upstream_settings(up: FakeUpstream, up2: FakeUpstream, **reliability: Any) -> Settings:
    """`main` on `up` falls back to `backup` on `up2`."""
    return make_settings(
        {
            "server": {"master_key": MASTER},
            "providers": {
                "up": {"type": "openai", "base_url": up.url + "/v1", "models": ["fake-model"]},
                "up2": {"type": "openai", "base_url": up2.url + "/v1", "models": ["fake-model-2"]},
            },
            "models": [
                {
                    "name": "main",
                    "deployments": [{"provider": "up", "model": "fake-model"}],
                    "fallbacks": ["backup"],
                },
                {"name": "backup", "deployments": [{"provider": "up2", "model": "fake-model-2"}]},
            ],
            "reliability": {"backoff_base_s": 0.01, "backoff_max_s": 0.02, **reliability},
        }
    )


def mock_settings(**extra: Any) -> Settings:
    priced = {
        "name": "priced",
        "deployments": [
            {
                "provider": "mock",
                "model": "mock-1",
                "input_cost_per_mtok": 1000.0,
                "output_cost_per_mtok": 2000.0,
            }
        ],
    }
    # Its own deployment: a deployment's limits hold whichever model name reaches it.
    limited = {"name": "limited", "deployments": [{"provider": "mock", "model": "lim", "rpm": 1}]}
    data = {
        "server": {"master_key": MASTER},
        "providers": {"mock": {"type": "mock", "options": {"reply": "ok"}}},
        "models": [priced, limited],
        **extra,
    }
    return make_settings(data)


@pytest.fixture
def up() -> Iterator[FakeUpstream]:
    with FakeUpstream() as u:
        yield u


@pytest.fixture
def up2() -> Iterator[FakeUpstream]:
    with FakeUpstream(reply="Hello from the fallback") as u:
        yield u


@pytest.fixture(scope="module")
def gw() -> Iterator[GatewayServer]:
    with GatewayServer(mock_settings()) as server:
        yield server


# --- the request path ------------------------------------------------------------------------


def test_a_request_announces_its_start_and_route(gw: GatewayServer) -> None:
    with watch(gw, MASTER) as ws:
        resp = chat(gw, MASTER, "priced", **{"x-request-id": "req-events-1"})
        assert resp.status_code == 200
        frames = until(ws, of_type("route.decided"))
    started, decided = frames[-2:]
    assert started["type"] == "llm.request.started"
    assert started["data"] == {
        "protocol": "openai",
        "operation": "chat",
        "stream": False,
        "model": "priced",
        "mode": "live",
    }
    for frame in started, decided:
        assert frame["request_id"] == "req-events-1" == resp.headers["x-request-id"]
        assert frame["key_id"] == "master" and frame["model"] == "priced"
    assert decided["data"] == {"model": "priced", "chain": ["mock/mock-1"], "forced": False}


def test_a_forced_route_is_announced_as_forced(gw: GatewayServer) -> None:
    with watch(gw, MASTER, type="route.decided") as ws:
        assert chat(gw, MASTER, "priced", **{"x-aicp-route": "mock/mock-1"}).status_code == 200
        decided = until(ws, of_type("route.decided"))[-1]
    assert decided["data"]["forced"] is True and decided["data"]["chain"] == ["mock/mock-1"]


def test_a_retry_names_the_deployment_the_error_and_the_attempt(
    up: FakeUpstream, up2: FakeUpstream
) -> None:
    up.fault(status=500, times=1, message="upstream fell over")
    s = upstream_settings(up, up2, max_retries=1)
    with GatewayServer(s) as gw, watch(gw, MASTER, type="route.*") as ws:
        reply = chat(gw, MASTER, "main").json()
        assert reply["choices"][0]["message"]["content"] == "Hello from the fake upstream"
        retry = until(ws, of_type("route.retry"))[-1]
    assert retry["data"]["from"] == retry["data"]["to"] == "up/fake-model"
    assert retry["data"]["attempt"] == 2
    assert retry["data"]["error"]["status"] == 500
    assert "upstream fell over" in retry["data"]["error"]["message"]
    assert retry["model"] == "main" and retry["key_id"] == "master"


def test_a_fallback_names_both_deployments(up: FakeUpstream, up2: FakeUpstream) -> None:
    up.fault(status=503, times=1)
    s = upstream_settings(up, up2, max_retries=0)
    with GatewayServer(s) as gw, watch(gw, MASTER, type="route.*") as ws:
        assert chat(gw, MASTER, "main").status_code == 200
        frames = until(ws, of_type("route.fallback"))
    fallback = frames[-1]["data"]
    assert (fallback["from"], fallback["to"]) == ("up/fake-model", "up2/fake-model-2")
    assert fallback["attempt"] == 2 and fallback["error"]["status"] == 503
    assert not [f for f in frames if f["type"] == "route.retry"]


def test_a_5xx_storm_opens_the_breaker_and_a_good_probe_closes_it(
    up: FakeUpstream, up2: FakeUpstream
) -> None:
    breaker = {"min_requests": 3, "failure_rate": 0.5, "open_s": 0.5, "half_open_probes": 1}
    up.fault(status=500, times=3)
    s = upstream_settings(up, up2, max_retries=0, breaker=breaker)
    with GatewayServer(s) as gw, watch(gw, MASTER, type="breaker.*") as ws:
        for _ in range(3):  # each fails on `up`; the fallback answers
            assert chat(gw, MASTER, "main").status_code == 200
        opened = until(ws, of_type("breaker.opened"))[-1]
        time.sleep(0.6)
        assert chat(gw, MASTER, "main").status_code == 200  # the probe, which succeeds
        frames = until(ws, of_type("breaker.closed"))
    assert opened["data"] == {
        "deployment": "up/fake-model",
        "previous": "closed",
        "trips": 1,
        "window_requests": 3,
        "window_failures": 3,
        "open_s": 0.5,
    }
    assert opened["model"] == "fake-model" and opened["key_id"] is None
    assert [f["type"] for f in frames] == ["breaker.half_open", "breaker.closed"]
    assert frames[0]["data"]["previous"] == "open"
    assert frames[1]["data"]["previous"] == "half_open"


# --- budgets and rate limits -----------------------------------------------------------------


def test_a_refused_budget_is_announced_with_its_numbers() -> None:
    with GatewayServer(mock_settings()) as gw, admin(gw, MASTER) as c:
        team = new_team(c)
        key_id, key = new_key(c, team)
        budget = {"scope": "key", "scope_id": key_id, "period": "daily", "hard_limit_usd": 1e-6}
        assert c.post("/admin/budgets", json=budget).status_code == 201
        with watch(gw, MASTER, type="budget.exceeded") as ws:
            assert chat(gw, key, "priced").status_code == 429
            event = until(ws, of_type("budget.exceeded"))[-1]
    assert event["key_id"] == key_id and event["team_id"] == team
    data = event["data"]
    assert (data["scope"], data["scope_id"], data["period"]) == ("key", key_id, "daily")
    assert data["hard_limit_usd"] == 1e-6 and data["requested_usd"] > 1e-6
    assert data["resets_at"].endswith("T00:00:00Z")


def test_a_soft_limit_is_announced_once_per_window() -> None:
    with GatewayServer(mock_settings()) as gw, admin(gw, MASTER) as c:
        budget = {"scope": "key", "scope_id": "master", "soft_limit_usd": 0.005}
        assert c.post("/admin/budgets", json=budget).status_code == 201
        with watch(gw, MASTER, type="budget.*") as ws:
            for _ in range(3):
                assert chat(gw, MASTER, "priced").status_code == 200
            frames = until(ws, of_type("budget.soft_limit")) + drain(ws)
    assert [f["type"] for f in frames] == ["budget.soft_limit"]
    data = frames[0]["data"]
    assert data["scope"] == "key" and data["scope_id"] == "master"
    assert data["soft_limit_usd"] == 0.005 and data["spent_usd"] >= 0.005


def test_a_rate_limit_refusal_names_the_limit(gw: GatewayServer) -> None:
    with watch(gw, MASTER, type="ratelimit.exceeded") as ws:
        codes = [chat(gw, MASTER, "limited").status_code for _ in range(2)]
        event = until(ws, of_type("ratelimit.exceeded"))[-1]
    assert codes[-1] == 429
    data = event["data"]
    assert (data["scope"], data["owner"], data["limit"]) == ("deployment", "mock/lim", "rpm")
    assert data["per_minute"] == 1 and 1 <= data["retry_after_s"] <= 60
    assert event["model"] == "limited" and event["key_id"] == "master"


# --- the admin API -----------------------------------------------------------------------------


def test_a_keys_life_is_announced_without_the_key(gw: GatewayServer) -> None:
    with admin(gw, MASTER) as c, watch(gw, MASTER, type="key.*") as ws:
        team = new_team(c)
        made = c.post("/admin/keys", json={"name": "watched", "team_id": team}).json()
        ident, secret = made["id"], made["key"]
        assert c.patch(f"/admin/keys/{ident}", json={"rpm": 5}).status_code == 200
        rotated = c.post(f"/admin/keys/{ident}/rotate", json={"grace_seconds": 60}).json()
        assert c.post(f"/admin/keys/{rotated['id']}/revoke").status_code == 200
        assert c.post(f"/admin/keys/{rotated['id']}/revoke").status_code == 200  # no news
        frames = until(ws, of_type("key.revoked")) + drain(ws)
    assert [f["type"] for f in frames] == [
        "key.created",
        "key.updated",
        "key.rotated",
        "key.revoked",
    ]
    created, updated, rotation, revoked = (f["data"] for f in frames)
    assert created["key_id"] == ident and created["actor_key_id"] == "master"
    assert created["team_id"] == team and created["name"] == "watched"
    assert updated["changed"] == ["rpm"]
    assert rotation["key_id"] == ident and rotation["new_key_id"] == rotated["id"]
    assert rotation["grace_s"] == 60
    assert revoked["key_id"] == rotated["id"]
    assert all(f["key_id"] == f["data"]["key_id"] and f["team_id"] == team for f in frames)
    text = repr(frames)
    assert secret not in text and rotated["key"] not in text and "hash" not in text


# --- the bus itself -----------------------------------------------------------------------


def test_a_subscriber_hears_only_the_types_it_asked_for() -> None:
    from aicp.observability.events import Event, EventBus

    bus = EventBus()
    heard: list[Event] = []
    everything: list[Event] = []
    assert not bus.wants("route.decided")
    unsubscribe = bus.subscribe(heard.append, types={"llm.request.completed"})
    assert bus.wants("llm.request.completed") and not bus.wants("route.decided")
    bus.emit("route.decided", {"model": "m"})
    bus.emit("llm.request.completed", {"status": 200}, request_id="r1")
    assert [(e.type, e.request_id) for e in heard] == [("llm.request.completed", "r1")]
    bus.subscribe(everything.append)
    assert bus.wants("route.decided")
    bus.emit("route.decided", {"model": "m"})
    assert len(heard) == 1 and [e.type for e in everything] == ["route.decided"]
    unsubscribe()
    bus.emit("llm.request.completed", {})
    assert len(heard) == 1 and len(everything) == 2
    with pytest.raises(ValueError, match="unknown event types"):
        bus.subscribe(heard.append, types={"llm.request.finished"})


def test_the_default_consumers_want_no_route_or_start_events(gateway: GatewayServer) -> None:
    # Metrics and the request log: nobody consumes `route.decided` or
    # `llm.request.started`, so the producers do not build them.
    events = gateway.app.state.events  # type: ignore[union-attr]
    assert events.wants("llm.request.completed") and events.wants("budget.exceeded")
    assert not events.wants("route.decided") and not events.wants("llm.request.started")
