"""POST /admin/replay end to end: stored requests through today's path, side by side.

The originals are real requests from the official SDKs through a gateway on
loopback to the fake upstream; what the upstream received is the proof that a
simulation sends nothing.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import anthropic
import httpx
import openai
import pytest

from aicp.testing import FakeUpstream, GatewayServer
from tests.helpers import openai_settings

MASTER = "sk-master-replay-test"
AUTH = {"authorization": f"Bearer {MASTER}"}
HI: list[Any] = [{"role": "user", "content": "hi"}]
#: Two models on the fake upstream with different prices (USD per million tokens).
MODELS = [
    {
        "name": "chat",
        "deployments": [
            {
                "provider": "up",
                "model": "fake-model",
                "input_cost_per_mtok": 1000.0,
                "output_cost_per_mtok": 2000.0,
            }
        ],
    },
    {
        "name": "alt",
        "deployments": [
            {
                "provider": "up",
                "model": "fake-model-2",
                "input_cost_per_mtok": 10.0,
                "output_cost_per_mtok": 20.0,
            }
        ],
    },
]


def settings_for(upstream: FakeUpstream, **receipts: Any) -> Any:
    receipts = {"bodies": "full", **receipts}  # replay needs the bodies
    return openai_settings(
        upstream, server={"master_key": MASTER}, models=MODELS, receipts=receipts
    )


@pytest.fixture
def gw(upstream: FakeUpstream) -> Iterator[GatewayServer]:
    with GatewayServer(settings_for(upstream)) as server:
        yield server


def client(gw: GatewayServer, key: str = MASTER) -> openai.OpenAI:
    return openai.OpenAI(base_url=gw.url + "/v1", api_key=key, max_retries=0)


def chat(gw: GatewayServer, model: str = "chat", **extra: Any) -> str:
    """One chat completion through the gateway; its receipt id."""
    raw = client(gw).chat.completions.with_raw_response.create(model=model, messages=HI, **extra)
    return raw.headers["x-aicp-receipt-id"]


def replay(gw: GatewayServer, key: str | None = MASTER, **body: Any) -> httpx.Response:
    headers = {} if key is None else {"authorization": f"Bearer {key}"}
    return httpx.post(f"{gw.url}/admin/replay", json=body, headers=headers, timeout=30)


def replayed(gw: GatewayServer, **body: Any) -> dict[str, Any]:
    r = replay(gw, **body)
    assert r.status_code == 200, r.text
    data: dict[str, Any] = r.json()
    return data


def receipt(gw: GatewayServer, rid: str) -> dict[str, Any]:
    r = httpx.get(f"{gw.url}/v1/receipts/{rid}", headers=AUTH)
    assert r.status_code == 200, r.text
    data: dict[str, Any] = r.json()["receipt"]
    return data


def fields(diffs: list[dict[str, Any]]) -> set[str]:
    return {d["field"] for d in diffs}


# --- simulate ----------------------------------------------------------------------


def test_simulate_sends_nothing_upstream_and_holds_no_budget(
    gw: GatewayServer, upstream: FakeUpstream
) -> None:
    made = httpx.post(
        f"{gw.url}/admin/budgets",
        headers=AUTH,
        json={"scope": "key", "scope_id": "master", "period": "daily", "hard_limit_usd": 5},
    )
    assert made.status_code == 201, made.text
    rid = chat(gw, max_tokens=50)
    sent = len(upstream.requests)

    data = replayed(gw, receipt_id=rid)

    assert len(upstream.requests) == sent  # nothing went upstream
    budget = httpx.get(f"{gw.url}/admin/budgets/{made.json()['id']}", headers=AUTH).json()
    assert budget["reserved_usd"] == 0
    assert data["mode"] == "simulate"
    before, after = data["original"], data["replay"]
    assert before["receipt_id"] == rid and before["output"] == upstream.reply
    assert after["route"] == ["up/fake-model"] and after["served"] == "up/fake-model"
    assert after["status"] == 200 and after["mode"] == "simulate"
    assert after["output"] is None and after["latency_ms"] is None
    # The original's usage at today's price of the same deployment: the same cost.
    assert after["cost_usd"] == before["cost_usd"] > 0
    assert data["differences"] == []
    stages = [stage for stage, _ in after["decisions"]]
    assert "route" in stages and "execute" not in stages
    worst = after["budget"]["worst_case_usd"]
    assert worst > 0 and after["budget"]["budgets"][0]["fits"] is True
    simulated = receipt(gw, after["receipt_id"])
    assert simulated["mode"] == "simulate" and simulated["labels"]["replay_of"] == rid
    assert simulated["attempts"] == []


def test_simulate_with_a_forced_route_shows_where_it_would_go(
    gw: GatewayServer, upstream: FakeUpstream
) -> None:
    rid = chat(gw)
    sent = len(upstream.requests)
    data = replayed(gw, receipt_id=rid, route="up/fake-model-2")
    assert len(upstream.requests) == sent
    after = data["replay"]
    assert after["route"] == ["up/fake-model-2"] and after["forced"] is True
    assert after["cost_usd"] < data["original"]["cost_usd"]
    changed = {d["field"]: d for d in data["differences"]}
    assert set(changed) == {"route", "served", "cost_usd"}
    assert changed["served"] == {
        "field": "served",
        "original": "up/fake-model",
        "replay": "up/fake-model-2",
    }


def test_a_request_that_forced_its_route_is_replayed_on_that_route(gw: GatewayServer) -> None:
    raw = client(gw).chat.completions.with_raw_response.create(
        model="chat", messages=HI, extra_headers={"x-aicp-route": "alt"}
    )
    data = replayed(gw, receipt_id=raw.headers["x-aicp-receipt-id"])
    assert data["original"]["route"] == ["up/fake-model-2"]
    assert data["replay"]["route"] == ["up/fake-model-2"] and data["replay"]["forced"] is True


def test_simulate_reports_a_refusal_today(gw: GatewayServer) -> None:
    rid = chat(gw)
    data = replayed(gw, receipt_id=rid, route="nowhere/none")
    after = data["replay"]
    assert after["status"] == 404 and after["error"]["code"] == "model_not_found"
    assert {"field": "status", "original": 200, "replay": 404} in data["differences"]


# --- live --------------------------------------------------------------------------


def test_live_replay_returns_the_new_output_and_its_own_receipt(
    gw: GatewayServer, upstream: FakeUpstream
) -> None:
    upstream.reply = "the answer then"
    rid = chat(gw)
    upstream.reply = "the answer today"
    sent = len(upstream.requests)

    data = replayed(gw, receipt_id=rid, mode="live")

    assert len(upstream.requests) == sent + 1
    before, after = data["original"], data["replay"]
    assert before["output"] == "the answer then"
    assert after["output"] == "the answer today"
    assert after["receipt_id"] not in (None, rid) and after["mode"] == "live"
    assert after["served"] == "up/fake-model" and after["status"] == 200
    assert after["latency_ms"] > 0
    changed = {d["field"]: d for d in data["differences"]}
    assert changed["output"] == {
        "field": "output",
        "original": "the answer then",
        "replay": "the answer today",
    }
    assert "route" not in changed and "cost_usd" not in changed
    again = receipt(gw, after["receipt_id"])
    assert again["labels"]["replay_of"] == rid and again["mode"] == "live"
    assert again["attempts"][0]["deployment"] == "up/fake-model"


def test_live_replay_of_a_stream_on_a_forced_route(
    gw: GatewayServer, upstream: FakeUpstream
) -> None:
    stream = client(gw).chat.completions.with_raw_response.create(
        model="chat", messages=HI, stream=True
    )
    rid = stream.headers["x-aicp-receipt-id"]
    chunks: list[Any] = list(stream.parse())
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    data = replayed(gw, receipt_id=rid, mode="live", route="up/fake-model-2")
    assert data["original"]["output"] == text == upstream.reply
    assert data["replay"]["output"] == upstream.reply
    assert upstream.requests[-1].body["model"] == "fake-model-2"
    assert {"route", "served"} <= fields(data["differences"])
    assert "output" not in fields(data["differences"])


def test_live_replay_of_an_anthropic_request(gw: GatewayServer, upstream: FakeUpstream) -> None:
    ant = anthropic.Anthropic(base_url=gw.url, api_key=MASTER, max_retries=0)
    raw = ant.messages.with_raw_response.create(model="chat", max_tokens=20, messages=HI)
    upstream.reply = "changed"
    data = replayed(gw, receipt_id=raw.headers["x-aicp-receipt-id"], mode="live")
    assert data["original"]["output"] == "Hello from the fake upstream"
    assert data["replay"]["output"] == "changed"
    assert upstream.requests[-1].path == "/v1/chat/completions"


def test_a_client_cannot_mark_its_own_request_as_a_replay(gw: GatewayServer) -> None:
    raw = client(gw).chat.completions.with_raw_response.create(
        model="chat",
        messages=HI,
        extra_headers={"x-aicp-replay-of": "rcpt_" + "0" * 28, "aicp.replay_of": "x"},
    )
    assert "replay_of" not in receipt(gw, raw.headers["x-aicp-receipt-id"])["labels"]


# --- refusals ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kept", "says"),
    [("none", "was not retained (receipts.bodies is 'none')"), ("redacted", "kept redacted")],
)
def test_a_body_not_kept_in_full_cannot_be_replayed(
    upstream: FakeUpstream, kept: str, says: str
) -> None:
    with GatewayServer(settings_for(upstream, bodies=kept)) as gw:
        rid = chat(gw)
        for mode in ("simulate", "live"):
            r = replay(gw, receipt_id=rid, mode=mode)
            assert r.status_code == 409, r.text
            err = r.json()["error"]
            assert err["code"] == "body_not_retained"
            assert says in err["message"] and rid in err["message"]


def test_a_body_past_retention_cannot_be_replayed(upstream: FakeUpstream) -> None:
    # 0.00001 days is under a second: the body is still stored, but past retention.
    with GatewayServer(settings_for(upstream, body_retention_days=0.00001)) as gw:
        rid = chat(gw)
        time.sleep(1.0)
        r = replay(gw, receipt_id=rid)
        assert r.status_code == 409, r.text
        assert "past retention" in r.json()["error"]["message"]


def test_replay_needs_an_admin(gw: GatewayServer) -> None:
    rid = chat(gw)
    made = httpx.post(f"{gw.url}/admin/keys", headers=AUTH, json={"name": "member"})
    assert made.status_code == 201, made.text
    r = replay(gw, key=made.json()["key"], receipt_id=rid)
    assert r.status_code == 403 and r.json()["error"]["code"] == "admin_required"
    assert replay(gw, key=None, receipt_id=rid).status_code == 401


def test_unknown_receipt_is_404_and_a_bad_body_422(gw: GatewayServer) -> None:
    assert replay(gw, receipt_id="rcpt_" + "0" * 28).status_code == 404
    assert replay(gw, receipt_id="not-an-id").status_code == 404
    rid = chat(gw)
    bad = replay(gw, receipt_id=rid, mode="dream")
    assert bad.status_code == 422 and bad.json()["error"]["param"] == "mode"
    assert replay(gw, receipt_id=rid, extra=1).status_code == 422


@pytest.mark.parametrize("protocol", ["anthropic", "responses"])
def test_the_output_of_every_stream_format_is_read(
    gw: GatewayServer, upstream: FakeUpstream, protocol: str
) -> None:
    if protocol == "anthropic":
        ant = anthropic.Anthropic(base_url=gw.url, api_key=MASTER, max_retries=0)
        raw: Any = ant.messages.with_raw_response.create(
            model="chat",
            max_tokens=20,
            messages=HI,
            stream=True,
        )
    else:
        raw = client(gw).responses.with_raw_response.create(model="chat", input="hi", stream=True)
    list(raw.parse())
    data = replayed(gw, receipt_id=raw.headers["x-aicp-receipt-id"], mode="live")
    assert data["original"]["output"] == data["replay"]["output"] == upstream.reply
