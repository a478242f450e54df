"""The issue's test: 200 concurrent requests against a budget that admits exactly 50.

Each request costs the same and its reservation equals its actual cost (prices
set in config, a fixed mock reply, max_tokens = the reply's tokens), so exactly
50 must succeed: fewer would be a false rejection, more an overshoot. Runs on
every reservation backend the gateway can choose: in process (SQLite), the
database (PostgreSQL) and Redis.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from aicp.protocol.tokens import estimate_tokens
from aicp.testing import GatewayServer
from tests.backends import (
    POSTGRES_VAR,
    REDIS_VAR,
    flush_redis,
    fresh_postgres_database,
    service_url,
)
from tests.helpers import gateway_settings_for

MASTER = "sk-master-budget-test"
REPLY = "ok"
MESSAGES = [{"role": "user", "content": "hi"}]
IN_PRICE, OUT_PRICE = 1000.0, 2000.0  # USD per million tokens = micro-dollars per token


def priced_settings(database_url: str | None, redis_url: str | None = None, **extra: Any) -> Any:
    """A gateway whose model `priced` (the mock, replying REPLY) has prices set in config."""
    providers = extra.pop("providers", {"mock": {"type": "mock", "options": {"reply": REPLY}}})
    return gateway_settings_for(
        database_url,
        redis_url,
        server={"master_key": MASTER},
        providers=providers,
        models=[
            {
                "name": "priced",
                "deployments": [
                    {
                        "provider": "mock",
                        "model": "mock-1",
                        "input_cost_per_mtok": IN_PRICE,
                        "output_cost_per_mtok": OUT_PRICE,
                    }
                ],
            }
        ],
        **extra,
    )


def request_cost_micros() -> int:
    prompt = estimate_tokens(MESSAGES)
    completion = estimate_tokens(REPLY)
    return round(prompt * IN_PRICE + completion * OUT_PRICE)


async def run_200_against_50(gw: GatewayServer) -> None:
    auth = {"authorization": f"Bearer {MASTER}"}
    cost = request_cost_micros()
    assert cost == 10_000  # 8 prompt tokens, 1 completion token: one cent
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)
    async with httpx.AsyncClient(base_url=gw.url, headers=auth, timeout=60, limits=limits) as c:
        made = await c.post(
            "/admin/budgets",
            json={
                "scope": "key",
                "scope_id": "master",
                "period": "daily",
                "hard_limit_usd": 50 * cost / 1e6,
            },
        )
        assert made.status_code == 201, made.text
        body = {"model": "priced", "messages": MESSAGES, "max_tokens": estimate_tokens(REPLY)}
        replies = await asyncio.gather(
            *(c.post("/v1/chat/completions", json=body) for _ in range(200))
        )
        codes = [r.status_code for r in replies]
        assert codes.count(200) == 50, codes
        assert codes.count(429) == 150
        refused = next(r for r in replies if r.status_code == 429)
        assert refused.json()["error"]["code"] == "budget_exceeded"

        spend = (await c.get("/admin/spend", params={"by": "key"})).json()
        assert spend["total_micros"] == 50 * cost
        assert spend["data"][0]["requests"] == 50
        status = (await c.get(f"/admin/budgets/{made.json()['id']}")).json()
        assert status["spent_usd"] == pytest.approx(50 * cost / 1e6)
        assert status["reserved_usd"] == 0
        assert status["remaining_usd"] == 0


async def test_200_concurrent_requests_in_process_admit_exactly_50() -> None:
    with GatewayServer(priced_settings(None)) as gw:
        assert gw.app.state is not None and gw.app.state.budgets.backend == "memory"
        await run_200_against_50(gw)


@pytest.mark.postgres
async def test_200_concurrent_requests_on_postgres_admit_exactly_50() -> None:
    server = service_url(POSTGRES_VAR, "PostgreSQL")
    with fresh_postgres_database(server) as url, GatewayServer(priced_settings(url)) as gw:
        assert gw.app.state is not None and gw.app.state.budgets.backend == "sql"
        await run_200_against_50(gw)


@pytest.mark.redis
async def test_200_concurrent_requests_on_redis_admit_exactly_50() -> None:
    url = service_url(REDIS_VAR, "Redis")
    flush_redis(url)
    with GatewayServer(priced_settings(None, url)) as gw:
        assert gw.app.state is not None and gw.app.state.budgets.backend == "redis"
        await run_200_against_50(gw)
