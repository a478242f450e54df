"""Budgets and spend under attack: hostile ids, query values and bodies are 4xx, never a 500.

The same cases run on SQLite and on PostgreSQL (which, unlike SQLite, refuses a NUL in
text: a value that reached it unchecked would be a 500 there).
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from aicp.testing import GatewayServer
from tests.backends import POSTGRES_VAR, fresh_postgres_database, service_url
from tests.helpers import gateway_settings_for

MASTER = "sk-master-security-spend"

#: Hostile strings for ids and query values.
HOSTILE = [
    "' OR '1'='1",
    "bud_' OR 1=1 --",
    '"; DROP TABLE budgets; --',
    "ключ-🔑",
    "x" * 10_000,
    "a\x00b",
    "\x00",
    "%",
    "*",
]
HOSTILE_IDS = ["sql", "sql2", "drop", "unicode", "10kB", "nul", "nul-only", "pct", "star"]


@pytest.fixture(
    scope="module",
    params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)],
)
def gw(request: pytest.FixtureRequest) -> Iterator[GatewayServer]:
    if request.param == "sqlite":
        with GatewayServer(gateway_settings_for(None, server={"master_key": MASTER})) as server:
            yield server
        return
    with fresh_postgres_database(service_url(POSTGRES_VAR, "PostgreSQL")) as url:
        settings = gateway_settings_for(url, server={"master_key": MASTER})
        with GatewayServer(settings) as server:
            yield server


def admin(gw: GatewayServer) -> httpx.Client:
    return httpx.Client(base_url=gw.url, headers={"authorization": f"Bearer {MASTER}"})


@pytest.fixture(scope="module")
def world(gw: GatewayServer) -> dict[str, str]:
    """A key and a budget of it: something for a broken query to match."""
    with admin(gw) as c:
        made = c.post("/admin/keys", json={"name": "sec"})
        assert made.status_code == 201, made.text
        key_id = made.json()["id"]
        body = {"scope": "key", "scope_id": key_id, "hard_limit_usd": 5}
        budget = c.post("/admin/budgets", json=body)
        assert budget.status_code == 201, budget.text
    return {"key": made.json()["key"], "key_id": key_id, "budget": budget.json()["id"]}


def callers(world: dict[str, str]) -> dict[str, str]:
    return {"admin": MASTER, "key": world["key"]}


def _budget_intact(gw: GatewayServer, world: dict[str, str]) -> None:
    with admin(gw) as c:
        resp = c.get(f"/admin/budgets/{world['budget']}")
        assert resp.status_code == 200, resp.text
        assert resp.json()["hard_limit_usd"] == 5
        assert [b["id"] for b in c.get("/admin/budgets").json()["data"]] == [world["budget"]]


def _error(resp: httpx.Response, status: int, value: str) -> None:
    assert resp.status_code == status, resp.text
    assert resp.json()["error"]["type"] in ("invalid_request_error", "not_found_error")
    if len(value) > 8:
        assert value not in resp.text  # no echo of a long hostile value


@pytest.mark.parametrize("ident", [*HOSTILE, "..", "%00"], ids=[*HOSTILE_IDS, "dots", "pct00"])
def test_hostile_budget_ids_in_paths_are_404_never_500_never_a_match(
    gw: GatewayServer, world: dict[str, str], ident: str
) -> None:
    path = f"/admin/budgets/{quote(ident, safe='')}"
    with admin(gw) as c:
        for method in ("GET", "DELETE"):
            resp = c.request(method, path)
            assert resp.status_code == 404, resp.text
            assert resp.json()["error"]["type"] == "not_found_error"
    # A key: it may not delete at all; reading finds nothing either.
    headers = {"authorization": f"Bearer {world['key']}"}
    assert httpx.get(gw.url + path, headers=headers).status_code == 404
    assert httpx.delete(gw.url + path, headers=headers).status_code in (403, 404)
    _budget_intact(gw, world)


@pytest.mark.parametrize("value", HOSTILE, ids=HOSTILE_IDS)
@pytest.mark.parametrize("name", ["scope", "scope_id"])
@pytest.mark.parametrize("caller", ["admin", "key"])
def test_hostile_budget_query_values_are_422_never_a_match(
    gw: GatewayServer, world: dict[str, str], value: str, name: str, caller: str
) -> None:
    headers = {"authorization": f"Bearer {callers(world)[caller]}"}
    resp = httpx.get(gw.url + "/admin/budgets", params={name: value}, headers=headers)
    _error(resp, 422, value)
    assert resp.json()["error"]["param"] == name


@pytest.mark.parametrize(
    "value",
    [*HOSTILE, "nan", "inf", "-inf", "1e400", "9" * 400, "2025-13-45", "1; DROP TABLE spend"],
    ids=[*HOSTILE_IDS, "nan", "inf", "-inf", "1e400", "400-digits", "bad-date", "drop-spend"],
)
@pytest.mark.parametrize("name", ["by", "since", "until"])
@pytest.mark.parametrize("caller", ["admin", "key"])
def test_hostile_spend_query_values_are_422_never_500(
    gw: GatewayServer, world: dict[str, str], value: str, name: str, caller: str
) -> None:
    headers = {"authorization": f"Bearer {callers(world)[caller]}"}
    resp = httpx.get(gw.url + "/admin/spend", params={name: value}, headers=headers)
    _error(resp, 422, value)
    assert resp.json()["error"]["param"] == name


@pytest.mark.parametrize(
    "value",
    [
        "1e300",
        "-1e308",
        "0",
        "0001-01-01",
        "9999-12-31",
        "0001-01-01T00:00:00+23:59",
        "9999-12-31T23:59:59-23:59",
    ],
)
def test_extreme_but_valid_times_are_an_empty_report_not_a_500(
    gw: GatewayServer, value: str
) -> None:
    with admin(gw) as c:
        for name in ("since", "until"):
            resp = c.get("/admin/spend", params={name: value, "by": "day"})
            assert resp.status_code == 200, resp.text
            assert isinstance(resp.json()["data"], list)


@pytest.mark.parametrize(
    "raw",
    [
        "/admin/budgets/%ff%fe",
        "/admin/budgets/%ED%A0%80",
        "/admin/budgets/" + "%00" * 5_000,
        "/admin/budgets?scope_id=%ff%00",
        "/admin/budgets?scope=%ED%A0%80",
        "/admin/spend?by=%ff%fe",
        "/admin/spend?since=%ff",
        "/admin/spend?until=%ED%A0%80",
    ],
    ids=["path-ff", "path-surrogate", "path-nuls", "scope_id", "scope", "by", "since", "until"],
)
def test_invalid_utf8_in_paths_and_queries_is_4xx(gw: GatewayServer, raw: str) -> None:
    with admin(gw) as c:
        resp = c.get(raw)
    assert resp.status_code in (404, 422), resp.text


def test_a_raw_null_byte_in_the_request_line_is_refused(gw: GatewayServer) -> None:
    raw = (
        f"GET /admin/spend?since=1\x00 HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {MASTER}\r\n"
        "connection: close\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", gw.port), timeout=5) as s:
        s.sendall(raw)
        status = s.recv(200).split(b"\r\n", 1)[0]
    assert status.split()[1] in (b"400", b"422")


@pytest.mark.parametrize(
    "body",
    [
        {"scope": "key", "scope_id": "' OR '1'='1", "hard_limit_usd": 1},
        {"scope": "key", "scope_id": "x" * 10_000, "hard_limit_usd": 1},
        {"scope": "key", "scope_id": "a\x00b", "hard_limit_usd": 1},
        {"scope": "key", "scope_id": "ключ-🔑", "hard_limit_usd": 1},
        {"scope": "key\x00", "scope_id": "k", "hard_limit_usd": 1},
        {"scope": "' OR '1'='1", "scope_id": "k"},
        {"scope": "key", "scope_id": "k", "period": "monthly' --"},
        {"scope": "key", "scope_id": {"$ne": None}},
        {"scope": "key", "scope_id": ["k"]},
        {"scope": "key", "scope_id": "k", "hard_limit_usd": -1},
        {"scope": "key", "scope_id": "k", "hard_limit_usd": "NaN"},
        {"scope": "key", "scope_id": "k", "hard_limit_usd": "Infinity"},
        {"scope": "key", "scope_id": "k", "soft_limit_usd": "1e400"},
        {"scope": "key", "scope_id": "k", "hard_limit_usd": 1e13},
        {"scope": "key", "scope_id": "k", "extra": "' OR '1'='1"},
    ],
)
def test_hostile_budget_bodies_are_422_never_500(
    gw: GatewayServer, world: dict[str, str], body: dict[str, Any]
) -> None:
    with admin(gw) as c:
        resp = c.post("/admin/budgets", json=body)
    assert resp.status_code == 422, resp.text
    assert "x" * 100 not in resp.text
    _budget_intact(gw, world)


@pytest.mark.parametrize(
    "raw",
    [b"", b"[]", b'"x"', b"null", b"{", b"\x00", b"\xff\xfe", b"[" * 10_000 + b"]" * 10_000],
    ids=["empty", "list", "string", "null", "truncated", "nul", "not-utf8", "deep"],
)
def test_malformed_budget_bodies_are_4xx(
    gw: GatewayServer, world: dict[str, str], raw: bytes
) -> None:
    with admin(gw) as c:
        resp = c.post("/admin/budgets", content=raw, headers={"content-type": "application/json"})
    assert 400 <= resp.status_code < 500, resp.text
    _budget_intact(gw, world)
