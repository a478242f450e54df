"""GET /v1/events end to end: who sees what, filters, refusals, and slow consumers.

A world of two teams, A and B: a team admin and a member key in A, a member key
in B; requests go through the real gateway (mock provider) and the events are
read over real WebSockets.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import httpx
import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection, connect

from aicp.api import events as events_api
from aicp.config import Settings
from aicp.testing import GatewayServer
from tests.helpers import make_settings
from tests.observability.wsutil import (
    CLOSE,
    Frame,
    SmallBufferGateway,
    admin,
    chat,
    drain,
    events_url,
    new_key,
    new_team,
    of_type,
    read_frames,
    stalled,
    until,
    watch,
)

MASTER = "sk-master-events"
STARTED = "llm.request.started"


def settings(**extra: object) -> Settings:
    return make_settings(
        {"server": {"master_key": MASTER}, "providers": {"mock": {"type": "mock"}}, **extra}
    )


@dataclass
class World:
    team_a: str
    team_b: str
    a_admin: str  # the team admin of A: its key
    a_id: str
    a_key: str  # a member of A
    b_id: str
    b_key: str  # a member of B


@pytest.fixture(scope="module")
def gw() -> Iterator[GatewayServer]:
    with GatewayServer(settings()) as server:
        yield server


@pytest.fixture(scope="module")
def world(gw: GatewayServer) -> World:
    with admin(gw, MASTER) as c:
        team_a, team_b = new_team(c), new_team(c)
        _, a_admin = new_key(c, team_a, "team_admin")
        a_id, a_key = new_key(c, team_a)
        b_id, b_key = new_key(c, team_b)
    return World(team_a, team_b, a_admin, a_id, a_key, b_id, b_key)


def started_by(key_id: str) -> Callable[[Frame], bool]:
    return lambda f: f["type"] == STARTED and f["key_id"] == key_id


def refusal(gw: GatewayServer, key: str | None, **params: str) -> InvalidStatus:
    with pytest.raises(InvalidStatus) as info, watch(gw, key, **params):
        pass
    return info.value


# --- who sees what -----------------------------------------------------------------------


def test_an_admin_sees_the_events_of_every_key(gw: GatewayServer, world: World) -> None:
    with watch(gw, MASTER, type=STARTED) as ws:
        assert chat(gw, world.a_key).status_code == 200
        assert chat(gw, world.b_key).status_code == 200
        frames = until(ws, started_by(world.b_id))
    assert {f["key_id"] for f in frames} >= {world.a_id, world.b_id}
    assert next(f for f in frames if f["key_id"] == world.a_id)["team_id"] == world.team_a


def test_a_key_sees_only_its_own_events(gw: GatewayServer, world: World) -> None:
    with watch(gw, world.a_key) as ws:
        assert chat(gw, world.b_key).status_code == 200
        assert chat(gw, world.a_key).status_code == 200
        frames = until(ws, started_by(world.a_id)) + drain(ws)
    assert frames and {f["key_id"] for f in frames} == {world.a_id}


def test_a_team_admin_sees_its_teams_events_and_no_others(gw: GatewayServer, world: World) -> None:
    with watch(gw, world.a_admin, type=STARTED) as ws:
        assert chat(gw, world.b_key).status_code == 200
        assert chat(gw, world.a_key).status_code == 200
        frames = until(ws, started_by(world.a_id)) + drain(ws)
    assert {f["team_id"] for f in frames} == {world.team_a}


def test_the_key_may_come_in_the_query_string(gw: GatewayServer, world: World) -> None:
    url = events_url(gw, api_key=world.a_key, type=STARTED)
    with connect(url, open_timeout=10) as ws:
        assert chat(gw, world.a_key).status_code == 200
        assert until(ws, started_by(world.a_id))[-1]["key_id"] == world.a_id


# --- refusals, before the handshake --------------------------------------------------------


def test_no_key_or_a_wrong_key_is_refused_with_401(gw: GatewayServer) -> None:
    for key in (None, "sk-aicp-not-a-key"):
        err = refusal(gw, key)
        assert err.response.status_code == 401
        assert json.loads(err.response.body)["error"]["type"] == "authentication_error"


def test_a_key_may_not_ask_for_another_teams_events(gw: GatewayServer, world: World) -> None:
    assert refusal(gw, world.a_admin, team=world.team_b).response.status_code == 403
    assert refusal(gw, world.a_key, team=world.team_b).response.status_code == 403
    with watch(gw, world.a_admin, team=world.team_a):
        pass  # its own team is fine


def test_an_unknown_event_type_or_parameter_is_a_400(gw: GatewayServer) -> None:
    for params in ({"type": "llm.request.begun"}, {"type": "nothing.*"}, {"types": "llm.*"}):
        err = refusal(gw, MASTER, **params)
        assert err.response.status_code == 400, params
        message = json.loads(err.response.body)["error"]["message"]
        assert next(iter(params.values())) in message or "types" in message


def test_a_plain_get_is_told_to_use_a_websocket(gw: GatewayServer) -> None:
    resp = httpx.get(f"{gw.url}/v1/events", headers={"authorization": f"Bearer {MASTER}"})
    assert resp.status_code == 426
    assert "WebSocket" in resp.json()["error"]["message"]


# --- filters -------------------------------------------------------------------------------


def test_a_type_prefix_selects_that_family(gw: GatewayServer, world: World) -> None:
    with watch(gw, MASTER, type="route.*,llm.request.started") as ws:
        assert chat(gw, world.a_key).status_code == 200
        frames = until(ws, of_type("route.decided")) + drain(ws)
    types = {f["type"] for f in frames}
    assert types == {STARTED, "route.decided"}


def test_filters_by_model_and_by_team(gw: GatewayServer, world: World) -> None:
    with (
        watch(gw, MASTER, model="mock/mock-2", type=STARTED) as by_model,
        watch(gw, MASTER, team=world.team_b, type=STARTED) as by_team,
    ):
        assert chat(gw, world.a_key, "mock/mock-1").status_code == 200
        assert chat(gw, world.a_key, "mock/mock-2").status_code == 200
        assert chat(gw, world.b_key, "mock/mock-1").status_code == 200
        models = until(by_model, lambda f: True) + drain(by_model)
        teams = until(by_team, lambda f: True) + drain(by_team)
    assert [(f["model"], f["key_id"]) for f in models] == [("mock/mock-2", world.a_id)]
    assert [(f["team_id"], f["key_id"]) for f in teams] == [(world.team_b, world.b_id)]


# --- consumers that fall behind or lose their key ------------------------------------------------


def test_a_slow_consumer_is_dropped_while_a_fast_one_keeps_up() -> None:
    queue = 20
    with SmallBufferGateway(settings(observability={"event_queue": queue})) as gw:
        slow = stalled(gw, MASTER)
        with watch(gw, MASTER, type=STARTED) as fast:
            statuses = asyncio.run(_load(gw, 300))
            assert statuses == {200}  # the gateway never waited for the slow consumer
            got = _count(fast, 300)
        assert got == 300  # every request's started event, none lost
        frames = read_frames(slow)
        slow.close()
    opcode, payload = frames[-1]
    assert opcode == CLOSE
    assert int.from_bytes(payload[:2], "big") == 1008
    assert payload[2:].decode() == f"too slow: more than {queue} events queued"
    assert len(frames) - 1 < 3 * 300  # it was dropped before it had everything


def _count(ws: ClientConnection, n: int) -> int:
    seen = 0
    deadline = time.monotonic() + 20
    while seen < n and time.monotonic() < deadline:
        try:
            ws.recv(timeout=1)
        except TimeoutError:
            continue
        seen += 1
    return seen


async def _load(gw: GatewayServer, n: int) -> set[int]:
    auth = {"authorization": f"Bearer {MASTER}"}
    body = {"model": "mock/mock-1", "messages": [{"role": "user", "content": "hi"}]}
    gate = asyncio.Semaphore(8)
    async with httpx.AsyncClient(base_url=gw.url, headers=auth, timeout=30) as c:

        async def one() -> int:
            async with gate:
                return (await c.post("/v1/chat/completions", json=body)).status_code

        return set(await asyncio.gather(*(one() for _ in range(n))))


def test_a_stream_closes_when_its_key_is_revoked(
    gw: GatewayServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(events_api, "RECHECK_S", 0.1)
    with admin(gw, MASTER) as c:
        team = new_team(c)
        key_id, key = new_key(c, team)
        with watch(gw, key) as ws:
            assert c.post(f"/admin/keys/{key_id}/revoke").status_code == 200
            with pytest.raises(ConnectionClosed) as info:
                until(ws, lambda f: False, timeout=10)
    assert info.value.rcvd is not None and info.value.rcvd.code == 1008
    assert "no longer valid" in info.value.rcvd.reason
