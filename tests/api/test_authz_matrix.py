"""Every admin endpoint x every role -> allowed or denied, table-driven.

Each case builds a fresh world through the master key (two teams, a team
admin of each, a member whose key is the target, another member, a user,
project and service account in team A), then calls one endpoint as one role.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from aicp.testing import GatewayServer
from tests.helpers import make_settings

MASTER = "sk-master-matrix"
ROLES = ("admin", "team_admin", "other_team_admin", "key_owner", "other_key", "no_key")


@pytest.fixture(scope="module")
def gw() -> Iterator[GatewayServer]:
    with GatewayServer(make_settings({"server": {"master_key": MASTER}})) as server:
        yield server


@dataclass
class World:
    ids: dict[str, str]
    keys: dict[str, str | None]


def build(gw: GatewayServer) -> World:
    tag = uuid.uuid4().hex[:8]
    ids: dict[str, str] = {}
    with httpx.Client(base_url=gw.url, headers={"authorization": f"Bearer {MASTER}"}) as c:

        def post(path: str, body: dict[str, Any]) -> dict[str, Any]:
            resp = c.post(path, json=body)
            assert resp.status_code == 201, resp.text
            data: dict[str, Any] = resp.json()
            return data

        ids["team"] = post("/admin/teams", {"name": f"a-{tag}"})["id"]
        ids["team_b"] = post("/admin/teams", {"name": f"b-{tag}"})["id"]
        keys: dict[str, str | None] = {"admin": MASTER, "no_key": None}
        for role, team, user_role in (
            ("team_admin", ids["team"], "team_admin"),
            ("other_team_admin", ids["team_b"], "team_admin"),
            ("key_owner", ids["team"], "member"),
            ("other_key", ids["team"], "member"),
        ):
            user = post("/admin/users", {"name": role, "team_id": team, "role": user_role})
            made = post("/admin/keys", {"name": role, "user_id": user["id"]})
            keys[role] = made["key"]
            ids[f"{role}_key"] = made["id"]
        ids["key"] = ids["key_owner_key"]
        ids["user"] = post("/admin/users", {"name": "victim", "team_id": ids["team"]})["id"]
        ids["project"] = post("/admin/projects", {"name": f"p-{tag}", "team_id": ids["team"]})["id"]
        ids["sa"] = post("/admin/service-accounts", {"name": f"s-{tag}", "team_id": ids["team"]})[
            "id"
        ]
    return World(ids, keys)


A, T, OT, K = "admin", "team_admin", "other_team_admin", "key_owner"

#: (name, method, path, body, roles allowed); paths and bodies take the world's ids.
CASES: list[tuple[str, str, str, dict[str, Any] | None, set[str]]] = [
    ("key.create", "POST", "/admin/keys", {"name": "n", "team_id": "{team}"}, {A, T}),
    ("key.list", "GET", "/admin/keys?team_id={team}", None, {A, T}),
    ("key.get", "GET", "/admin/keys/{key}", None, {A, T, K}),
    ("key.update", "PATCH", "/admin/keys/{key}", {"rpm": 1000}, {A, T}),
    ("key.rotate", "POST", "/admin/keys/{key}/rotate", {}, {A, T}),
    ("key.revoke", "POST", "/admin/keys/{key}/revoke", None, {A, T, K}),
    ("user.create", "POST", "/admin/users", {"name": "n", "team_id": "{team}"}, {A, T}),
    ("user.list", "GET", "/admin/users?team_id={team}", None, {A, T}),
    ("user.get", "GET", "/admin/users/{user}", None, {A, T}),
    ("user.update", "PATCH", "/admin/users/{user}", {"name": "m"}, {A, T}),
    ("user.delete", "DELETE", "/admin/users/{user}", None, {A, T}),
    ("team.create", "POST", "/admin/teams", {"name": "t-{tag}"}, {A}),
    ("team.list", "GET", "/admin/teams", None, {A, T, OT}),
    ("team.get", "GET", "/admin/teams/{team}", None, {A, T}),
    ("team.update", "PATCH", "/admin/teams/{team}", {"metadata": {"x": 1}}, {A}),
    ("team.delete", "DELETE", "/admin/teams/{team}", None, {A}),
    ("project.create", "POST", "/admin/projects", {"name": "p-{tag}", "team_id": "{team}"}, {A}),
    ("project.list", "GET", "/admin/projects?team_id={team}", None, {A, T}),
    ("project.get", "GET", "/admin/projects/{project}", None, {A, T}),
    ("project.update", "PATCH", "/admin/projects/{project}", {"name": "q-{tag}"}, {A}),
    ("project.delete", "DELETE", "/admin/projects/{project}", None, {A}),
    ("sa.create", "POST", "/admin/service-accounts", {"name": "s-{tag}"}, {A}),
    ("sa.list", "GET", "/admin/service-accounts?team_id={team}", None, {A, T}),
    ("sa.get", "GET", "/admin/service-accounts/{sa}", None, {A, T}),
    ("sa.update", "PATCH", "/admin/service-accounts/{sa}", {"name": "z-{tag}"}, {A}),
    ("sa.delete", "DELETE", "/admin/service-accounts/{sa}", None, {A}),
    ("providers.health", "GET", "/v1/providers/health", None, {A}),
]


def _fill(value: Any, ids: dict[str, str]) -> Any:
    if isinstance(value, str):
        return value.format(**ids)
    if isinstance(value, dict):
        return {k: _fill(v, ids) for k, v in value.items()}
    return value


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize(
    ("name", "method", "path", "body", "allowed"), CASES, ids=[c[0] for c in CASES]
)
def test_authorization_matrix(
    gw: GatewayServer,
    role: str,
    name: str,
    method: str,
    path: str,
    body: dict[str, Any] | None,
    allowed: set[str],
) -> None:
    world = build(gw)
    ids = {**world.ids, "tag": uuid.uuid4().hex[:8]}
    key = world.keys[role]
    headers = {} if key is None else {"authorization": f"Bearer {key}"}
    resp = httpx.request(method, gw.url + _fill(path, ids), json=_fill(body, ids), headers=headers)
    if role in allowed:
        assert resp.status_code in (200, 201), f"{name} as {role}: {resp.text}"
    else:
        expected = 401 if key is None else 403
        assert resp.status_code == expected, f"{name} as {role}: {resp.text}"
        assert resp.json()["error"]["type"] in ("authentication_error", "permission_error")


# --- what roles may not do even where they may act ----------------------------------------------


@pytest.fixture
def world(gw: GatewayServer) -> World:
    return build(gw)


def _as(gw: GatewayServer, world: World, role: str) -> httpx.Client:
    return httpx.Client(base_url=gw.url, headers={"authorization": f"Bearer {world.keys[role]}"})


def test_a_team_admin_cannot_make_admins_or_reach_other_teams(
    gw: GatewayServer, world: World
) -> None:
    with _as(gw, world, "team_admin") as c:
        assert c.post("/admin/keys", json={"name": "x", "is_admin": True}).status_code == 403
        assert c.post("/admin/users", json={"name": "x", "role": "admin"}).status_code == 403
        other = {"name": "x", "team_id": world.ids["team_b"]}
        assert c.post("/admin/keys", json=other).status_code == 403
        assert c.post("/admin/users", json=other).status_code == 403
        moved = c.patch(f"/admin/keys/{world.ids['key']}", json={"team_id": world.ids["team_b"]})
        assert moved.status_code == 403
        assert (
            c.patch(f"/admin/users/{world.ids['user']}", json={"role": "admin"}).status_code == 403
        )
        # Its own key's limits are not its to raise.
        own = c.patch(f"/admin/keys/{world.ids['team_admin_key']}", json={"rpm": 10**6})
        assert own.status_code == 403
        # Listing without a filter shows its own team only.
        listed = c.get("/admin/keys").json()["data"]
        assert listed and {k["team_id"] for k in listed} == {world.ids["team"]}
        teams = c.get("/admin/teams").json()["data"]
        assert [t["id"] for t in teams] == [world.ids["team"]]
        # A key it makes lands in its team.
        made = c.post("/admin/keys", json={"name": "mine"}).json()
        assert made["team_id"] == world.ids["team"]


def test_a_key_owner_reads_only_itself_and_cannot_raise_its_limits(
    gw: GatewayServer, world: World
) -> None:
    with _as(gw, world, "key_owner") as c:
        mine = c.get(f"/admin/keys/{world.ids['key']}")
        assert mine.status_code == 200 and "key_hash" not in mine.json()
        assert c.get(f"/admin/keys/{world.ids['other_key_key']}").status_code == 403
        for change in ({"rpm": 10**6}, {"models": []}, {"is_admin": True}):
            assert c.patch(f"/admin/keys/{world.ids['key']}", json=change).status_code == 403
        assert c.get("/admin/keys").status_code == 403
        assert c.post(f"/admin/keys/{world.ids['key']}/rotate").status_code == 403
