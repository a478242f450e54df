"""`aicp route simulate` and `aicp route compare` against a running gateway."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from aicp.testing import FakeUpstream, GatewayServer
from tests.api.test_control_plane import LEGAL, MASTER, _calls, _settings
from tests.helpers import run_cli


@pytest.fixture
def ups() -> Iterator[tuple[FakeUpstream, FakeUpstream]]:
    with FakeUpstream() as ext, FakeUpstream() as loc:
        yield ext, loc


@pytest.fixture
def gw(ups: tuple[FakeUpstream, FakeUpstream], cli_env: None) -> Iterator[GatewayServer]:
    with GatewayServer(_settings(*ups)) as server:
        yield server


def _run(gw: GatewayServer, *args: str) -> str:
    return run_cli(gw.url, MASTER, "route", *args)


def test_route_simulate_prints_the_decisions_and_sends_nothing(
    gw: GatewayServer, ups: tuple[FakeUpstream, FakeUpstream]
) -> None:
    out = _run(gw, "simulate", LEGAL, "--model", "assistant")
    assert "class legal" in out
    assert "ext/big-model" in out and "forbidden" in out and "no-external-legal" in out
    assert "chosen: loc/small-model" in out
    record = json.loads(_run(gw, "simulate", "hello", "--model", "assistant", "--json"))
    assert record["route"]["chosen"] == "ext/big-model"
    offline = json.loads(
        _run(gw, "simulate", "hello", "--model", "assistant", "--offline", "--json")
    )
    assert offline["offline"] and offline["route"]["chosen"] == "loc/small-model"
    assert all(not _calls(up) for up in ups)


def test_route_compare_runs_each_route_and_shows_them_side_by_side(
    gw: GatewayServer, ups: tuple[FakeUpstream, FakeUpstream]
) -> None:
    ext, loc = ups
    ext.reply, loc.reply = "answer from the big model", "answer from the small model"
    rows = json.loads(
        _run(gw, "compare", "hello", "--routes", "ext/big-model,loc/small-model", "--json")
    )
    assert [r["route"] for r in rows] == ["ext/big-model", "loc/small-model"]
    assert rows[0]["output"] == "answer from the big model"
    assert rows[1]["output"] == "answer from the small model"
    assert all(r["latency_ms"] > 0 and r["receipt_id"].startswith("rcpt_") for r in rows)
    assert all(r["cost_usd"] == 0.0 and r["usage"]["completion_tokens"] > 0 for r in rows)
    assert len(_calls(ext)) == 1 and len(_calls(loc)) == 1
    table = _run(gw, "compare", "hello", "--routes", "ext/big-model,nope/none")
    assert "answer from the big model" in table and "HTTP 404" in table
