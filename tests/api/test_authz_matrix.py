"""Every admin endpoint x every role -> allowed or denied, table-driven.

Each case builds a fresh world through the master key (two teams, a team
admin of each, a member whose key is the target, another member, a user,
project and service account in team A, a budget of team A and one of the target
key), then calls one endpoint as one role.
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


#: The mock provider's model with prices, so that requests show up in the spend ledger.
PRICED = {
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


@pytest.fixture(scope="module")
def gw() -> Iterator[GatewayServer]:
    settings = make_settings(
        {
            "server": {"master_key": MASTER},
            "providers": {"mock": {"type": "mock", "options": {"reply": "ok"}}},
            "models": [PRICED],
            "receipts": {"bodies": "full"},  # so that admins may replay
        }
    )
    with GatewayServer(settings) as server:
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
        team_budget = {"scope": "team", "scope_id": ids["team"], "hard_limit_usd": 100}
        ids["team_budget"] = post("/admin/budgets", team_budget)["id"]
        key_budget = {"scope": "key", "scope_id": ids["key"], "hard_limit_usd": 10}
        ids["key_budget"] = post("/admin/budgets", key_budget)["id"]
    # A receipt of the key owner's (token counting: a receipt, but no spend to skew the
    # spend tests below).
    count = {"model": "priced", "messages": [{"role": "user", "content": "hi"}]}
    owner = {"authorization": f"Bearer {keys['key_owner']}"}
    resp = httpx.post(gw.url + "/v1/messages/count_tokens", json=count, headers=owner)
    assert resp.status_code == 200, resp.text
    ids["receipt"] = resp.headers["x-aicp-receipt-id"]
    return World(ids, keys)


A, T, OT, K, OK = "admin", "team_admin", "other_team_admin", "key_owner", "other_key"
KEYED = {A, T, OT, K, OK}

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
    # Budgets: only an admin sets or deletes one (so no key raises its own limits). Reading
    # is narrowed per caller (see the tests below): a team admin reads their team's budget,
    # a key the budgets of its own key, user, team and project.
    (
        "budget.create",
        "POST",
        "/admin/budgets",
        {"scope": "key", "scope_id": "{key}", "hard_limit_usd": 1000},
        {A},
    ),
    (
        "budget.create_team",
        "POST",
        "/admin/budgets",
        {"scope": "team", "scope_id": "{team}", "period": "daily", "hard_limit_usd": 1000},
        {A},
    ),
    ("budget.list", "GET", "/admin/budgets", None, KEYED),
    ("budget.list_scoped", "GET", "/admin/budgets?scope=team&scope_id={team}", None, KEYED),
    ("budget.get_team", "GET", "/admin/budgets/{team_budget}", None, {A, T, K, OK}),
    ("budget.get_key", "GET", "/admin/budgets/{key_budget}", None, {A, K}),
    ("budget.delete", "DELETE", "/admin/budgets/{key_budget}", None, {A}),
    ("budget.delete_team", "DELETE", "/admin/budgets/{team_budget}", None, {A}),
    # Spend: every key gets a report, narrowed to what it may see (tests below).
    ("spend.report", "GET", "/admin/spend", None, KEYED),
    ("spend.by_team", "GET", "/admin/spend?by=team&since=2020-01-01", None, KEYED),
    # Receipts: a key reads its own, a team admin the team's, an admin all; checkpoints
    # are for anyone with a key, signing one on demand is for admins.
    ("receipts.get", "GET", "/v1/receipts/{receipt}", None, {A, T, K}),
    ("receipts.body", "GET", "/v1/receipts/{receipt}/body", None, {A, T, K}),
    ("receipts.list", "GET", "/v1/receipts", None, KEYED),
    ("receipts.list_team", "GET", "/v1/receipts?team={team}", None, {A, T}),
    ("receipts.list_key", "GET", "/v1/receipts?key={key}", None, {A, K}),
    ("receipts.checkpoint", "GET", "/v1/receipts/checkpoint", None, KEYED),
    ("receipts.sign", "POST", "/v1/receipts/checkpoint", None, {A}),
    ("receipts.consistency", "GET", "/v1/receipts/consistency?from=1&to=1", None, KEYED),
    ("replay.simulate", "POST", "/admin/replay", {"receipt_id": "{receipt}"}, {A}),
]

#: Cases whose handler hides what the caller may not see: a denied key gets 404, as for an
#: id that does not exist, rather than 403.
HIDDEN = {"budget.get_team", "budget.get_key", "receipts.get", "receipts.body"}


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
    elif name in HIDDEN and key is not None:
        assert resp.status_code == 404, f"{name} as {role}: {resp.text}"
        assert resp.json()["error"]["type"] == "not_found_error"
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


# --- budgets and spend: what each role sees -----------------------------------------------------

CHAT = {"model": "priced", "max_tokens": 1, "messages": [{"role": "user", "content": "hi"}]}


def test_each_role_lists_only_the_budgets_it_may_see(gw: GatewayServer, world: World) -> None:
    ours = {world.ids["team_budget"]: "team", world.ids["key_budget"]: "key"}
    expected = {
        "admin": {"team", "key"},
        "team_admin": {"team"},
        "other_team_admin": set(),
        "key_owner": {"team", "key"},
        "other_key": {"team"},
    }
    for role, seen in expected.items():
        with _as(gw, world, role) as c:
            resp = c.get("/admin/budgets")
            assert resp.status_code == 200, resp.text
            listed = {ours[b["id"]] for b in resp.json()["data"] if b["id"] in ours}
            assert listed == seen, role
            # Asking for a budget by scope does not widen what is shown.
            other = c.get("/admin/budgets", params={"scope": "key", "scope_id": world.ids["key"]})
            assert other.status_code == 200
            shown = {b["id"] for b in other.json()["data"]}
            assert (world.ids["key_budget"] in shown) == ("key" in seen), role
    with _as(gw, world, "other_team_admin") as c:
        assert c.get("/admin/budgets", params={"scope_id": world.ids["team"]}).json()["data"] == []


def test_no_key_raises_or_removes_its_own_budget(gw: GatewayServer, world: World) -> None:
    raise_key = {"scope": "key", "scope_id": world.ids["key"], "hard_limit_usd": 10**6}
    raise_team = {"scope": "team", "scope_id": world.ids["team"], "hard_limit_usd": 10**6}
    for role in ("key_owner", "team_admin", "other_key"):
        with _as(gw, world, role) as c:
            assert c.post("/admin/budgets", json=raise_key).status_code == 403, role
            assert c.post("/admin/budgets", json=raise_team).status_code == 403, role
            for budget in ("key_budget", "team_budget"):
                assert c.delete(f"/admin/budgets/{world.ids[budget]}").status_code == 403
    with _as(gw, world, "key_owner") as c:
        own = c.patch(f"/admin/keys/{world.ids['key']}", json={"budget_usd": 10**6})
        assert own.status_code == 403
    with _as(gw, world, "admin") as c:
        budgets = {b["id"]: b for b in c.get("/admin/budgets").json()["data"]}
    assert budgets[world.ids["key_budget"]]["hard_limit_usd"] == 10
    assert budgets[world.ids["team_budget"]]["hard_limit_usd"] == 100


def test_each_role_reads_only_the_spend_it_may_see(gw: GatewayServer, world: World) -> None:
    spenders = ("key_owner", "other_key", "other_team_admin")
    for role in spenders:
        with _as(gw, world, role) as c:
            assert c.post("/v1/chat/completions", json=CHAT).status_code == 200, role

    def report(role: str, by: str) -> dict[str, Any]:
        with _as(gw, world, role) as c:
            resp = c.get("/admin/spend", params={"by": by})
        assert resp.status_code == 200, resp.text
        data: dict[str, Any] = resp.json()
        return data

    ours = {world.ids[f"{role}_key"] for role in spenders}
    expected = {
        "key_owner": {world.ids["key_owner_key"]},
        "other_key": {world.ids["other_key_key"]},
        "team_admin": {world.ids["key_owner_key"], world.ids["other_key_key"]},
        "other_team_admin": {world.ids["other_team_admin_key"]},
    }
    for role, keys in expected.items():
        rows = report(role, "key")["data"]
        assert {r["key"] for r in rows} == keys, role
        # Grouped otherwise, the report still counts only those keys' requests.
        assert sum(r["requests"] for r in report(role, "team")["data"]) == len(keys), role
        assert sum(r["requests"] for r in report(role, "model")["data"]) == len(keys), role
    by_team = report("team_admin", "team")["data"]
    assert [r["team"] for r in by_team] == [world.ids["team"]]
    assert ours <= {r["key"] for r in report("admin", "key")["data"]}
