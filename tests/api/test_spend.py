"""Spend end to end: every ingress is billed, rejections name the budget, reports, roles."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from aicp.protocol.tokens import estimate_tokens
from aicp.testing import GatewayServer
from tests.accounting.test_budgets_concurrency import MASTER, MESSAGES, priced_settings

AUTH = {"authorization": f"Bearer {MASTER}"}


@pytest.fixture
def gw() -> Iterator[GatewayServer]:
    settings = priced_settings(
        None,
        providers={
            "mock": {"type": "mock", "options": {"reply": "ok", "chunk_delay_ms": 0}},
            "slow": {
                "type": "mock",
                "options": {"reply": "word " * 400, "chunk_delay_ms": 5},
            },
        },
    )
    with GatewayServer(settings) as server:
        yield server


def spend(gw: GatewayServer, by: str = "key", key: str = MASTER) -> dict[str, Any]:
    r = httpx.get(
        f"{gw.url}/admin/spend", params={"by": by}, headers={"authorization": f"Bearer {key}"}
    )
    assert r.status_code == 200, r.text
    data: dict[str, Any] = r.json()
    return data


def test_messages_chat_streams_and_embeddings_are_all_billed(gw: GatewayServer) -> None:
    with httpx.Client(base_url=gw.url, headers=AUTH, timeout=30) as c:
        body = {"model": "priced", "max_tokens": 5, "messages": MESSAGES}
        assert c.post("/v1/messages", json=body).status_code == 200
        assert c.post("/v1/chat/completions", json=body).status_code == 200
        with c.stream("POST", "/v1/chat/completions", json={**body, "stream": True}) as r:
            assert r.status_code == 200
            r.read()
        with c.stream("POST", "/v1/messages", json={**body, "stream": True}) as r:
            r.read()
        assert (
            c.post("/v1/embeddings", json={"model": "priced", "input": "hello"}).status_code == 200
        )
    report = spend(gw)
    row = report["data"][0]
    assert row["key"] == "master" and row["requests"] == 5
    chat = 8 * 1000 + 1 * 2000  # 8 prompt tokens, 1 completion token
    embedding = estimate_tokens("hello") * 1000
    assert report["total_micros"] == 4 * chat + embedding


def test_a_client_that_leaves_mid_stream_is_billed_for_what_was_streamed(
    gw: GatewayServer,
) -> None:
    async def leave_early() -> None:
        async with httpx.AsyncClient(base_url=gw.url, headers=AUTH, timeout=30) as c:
            body = {"model": "slow/mock-1", "messages": MESSAGES, "stream": True}
            async with c.stream("POST", "/v1/chat/completions", json=body) as r:
                got = 0
                async for chunk in r.aiter_bytes():
                    got += len(chunk)
                    if got > 3000:
                        break

    asyncio.run(leave_early())
    deadline = time.monotonic() + 5
    rows: list[dict[str, int]] = []
    while time.monotonic() < deadline and not rows:
        rows = spend(gw, by="model")["data"]
        time.sleep(0.05)
    assert rows, "the abandoned stream was not billed"
    # Prompt tokens from the body; completion tokens from the bytes streamed, fewer than the
    # 400 words the full reply would have been.
    assert rows[0]["prompt_tokens"] == 8
    assert 0 < rows[0]["completion_tokens"] < 400


def test_a_rejection_names_the_budget_its_limit_spend_and_reset(gw: GatewayServer) -> None:
    with httpx.Client(base_url=gw.url, headers=AUTH, timeout=30) as c:
        made = c.post(
            "/admin/budgets",
            json={"scope": "key", "scope_id": "master", "period": "daily", "hard_limit_usd": 0.015},
        )
        assert made.status_code == 201, made.text
        body = {"model": "priced", "max_tokens": 1, "messages": MESSAGES}
        assert c.post("/v1/chat/completions", json=body).status_code == 200
        refused = c.post("/v1/messages", json=body)
    assert refused.status_code == 429
    message = refused.json()["error"]["message"]
    assert "daily budget of key 'master'" in message
    assert "$0.015" in message  # the limit
    assert "$0.01 spent" in message
    assert "resets at" in message and "T00:00:00Z" in message
    assert 0 < int(refused.headers["retry-after"]) <= 86_400
    assert refused.json()["type"] == "error"  # Anthropic's error shape on /v1/messages


def test_soft_limit_alerts_once_per_window(
    gw: GatewayServer, caplog: pytest.LogCaptureFixture
) -> None:
    with httpx.Client(base_url=gw.url, headers=AUTH, timeout=30) as c:
        c.post(
            "/admin/budgets",
            json={
                "scope": "key",
                "scope_id": "master",
                "period": "monthly",
                "soft_limit_usd": 0.01,
            },
        )
        body = {"model": "priced", "max_tokens": 1, "messages": MESSAGES}
        with caplog.at_level(logging.WARNING, logger="aicp.budgets"):
            for _ in range(3):
                assert c.post("/v1/chat/completions", json=body).status_code == 200
    alerts = [r for r in caplog.records if getattr(r, "event", None) == "budget.soft_limit"]
    assert len(alerts) == 1
    assert "soft limit $0.01 reached by key 'master'" in alerts[0].getMessage()


def test_budget_admin_routes_need_an_admin_and_validate(gw: GatewayServer) -> None:
    with httpx.Client(base_url=gw.url, timeout=30) as c:
        no_key = c.post("/admin/budgets", json={"scope": "key", "scope_id": "x"})
        assert no_key.status_code in (401, 403)
        bad = c.post(
            "/admin/budgets",
            headers=AUTH,
            json={"scope": "galaxy", "scope_id": "' OR '1'='1", "hard_limit_usd": -1},
        )
        assert bad.status_code == 422
        made = c.post(
            "/admin/budgets",
            headers=AUTH,
            json={"scope": "team", "scope_id": "eng", "period": "weekly", "hard_limit_usd": 10},
        )
        assert made.status_code == 201
        listed = c.get("/admin/budgets", headers=AUTH).json()["data"]
        assert [b["scope_id"] for b in listed] == ["eng"]
        assert listed[0]["remaining_usd"] == 10
        bid = made.json()["id"]
        assert c.delete(f"/admin/budgets/{bid}", headers=AUTH).status_code == 200
        assert c.get(f"/admin/budgets/{bid}", headers=AUTH).status_code == 404
        assert c.get("/admin/spend?by=planet", headers=AUTH).status_code == 422
        assert c.get("/admin/spend?since=nan", headers=AUTH).status_code == 422


def test_a_key_reads_only_its_own_spend(gw: GatewayServer) -> None:
    with httpx.Client(base_url=gw.url, timeout=30) as c:
        made = c.post("/admin/keys", headers=AUTH, json={"name": "reader", "budget_usd": 1})
        if made.status_code != 201:
            pytest.skip(f"virtual keys are not available yet: {made.status_code}")
        key, key_id = made.json()["key"], made.json()["id"]
        body = {"model": "priced", "max_tokens": 1, "messages": MESSAGES}
        mine = {"authorization": f"Bearer {key}"}
        assert c.post("/v1/chat/completions", json=body, headers=mine).status_code == 200
        assert c.post("/v1/chat/completions", json=body, headers=AUTH).status_code == 200
        own = spend(gw, key=key)
        assert [r["key"] for r in own["data"]] == [key_id]
        assert {r["key"] for r in spend(gw)["data"]} == {key_id, "master"}
        # The key's budget (made with the key) is visible to it; it cannot set one.
        budgets = c.get("/admin/budgets", headers=mine).json()["data"]
        assert [b["scope_id"] for b in budgets] == [key_id]
        assert budgets[0]["spent_usd"] == pytest.approx(0.01)
        raise_own = c.post(
            "/admin/budgets",
            headers=mine,
            json={"scope": "key", "scope_id": key_id, "hard_limit_usd": 1000},
        )
        assert raise_own.status_code == 403


def test_cli_spend_prints_a_table(gw: GatewayServer) -> None:
    from typer.testing import CliRunner

    from aicp.cli.main import app

    body = {"model": "priced", "max_tokens": 1, "messages": MESSAGES}
    assert httpx.post(f"{gw.url}/v1/chat/completions", json=body, headers=AUTH).status_code == 200
    args = ["spend", "--by", "model", "--since", "1d", "--url", gw.url, "--key", MASTER]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "mock-1" in result.output and "$0.01" in result.output
