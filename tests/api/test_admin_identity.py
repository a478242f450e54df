"""The identity admin API and virtual keys, end to end on a real gateway."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import pytest
from starlette.routing import Route
from typer.testing import CliRunner

from aicp.cli.main import app as cli
from aicp.testing import FakeUpstream, GatewayServer
from tests.helpers import admin_client, make_key, make_settings, openai_settings

MASTER = "sk-master-identity-test"
HI = [{"role": "user", "content": "hi"}]


@pytest.fixture(scope="module")
def gw(module_upstream: FakeUpstream) -> Iterator[GatewayServer]:
    settings = openai_settings(
        module_upstream, server={"master_key": MASTER}, aliases={"fast": "mock/mock-1"}
    )
    with GatewayServer(settings) as server:
        yield server


@pytest.fixture
def admin(gw: GatewayServer) -> Iterator[httpx.Client]:
    with admin_client(gw.url, MASTER) as c:
        yield c


def oa(gw: GatewayServer, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=gw.url + "/v1", api_key=key, max_retries=0, timeout=10)


def claude(gw: GatewayServer, key: str) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=gw.url, api_key=key, max_retries=0, timeout=10)


def test_a_new_key_works_with_the_openai_and_anthropic_sdks(
    gw: GatewayServer, admin: httpx.Client
) -> None:
    created = make_key(admin, models=["up/fake-model", "mock/mock-1"], rpm=100)
    key = created["key"]
    assert key.startswith("sk-aicp-") and created["id"].startswith("key_")
    assert created["display"] != key and "key_hash" not in created
    reply = oa(gw, key).chat.completions.create(model="up/fake-model", messages=HI)
    assert reply.choices[0].message.content
    msg = claude(gw, key).messages.create(model="mock/mock-1", max_tokens=50, messages=HI)
    assert msg.content
    # The key is shown once: reading it back never returns it.
    again = admin.get(f"/admin/keys/{created['id']}").json()
    assert "key" not in again and again["display"] == created["display"]
    assert again["status"] == "active"


def test_a_revoked_key_gets_401_in_the_clients_format(
    gw: GatewayServer, admin: httpx.Client
) -> None:
    created = make_key(admin)
    key = created["key"]
    oa(gw, key).chat.completions.create(model="mock/mock-1", messages=HI)
    revoked = admin.post(f"/admin/keys/{created['id']}/revoke")
    assert revoked.json()["status"] == "revoked"
    with pytest.raises(openai.AuthenticationError):
        oa(gw, key).chat.completions.create(model="mock/mock-1", messages=HI)
    with pytest.raises(anthropic.AuthenticationError) as info:
        claude(gw, key).messages.create(model="mock/mock-1", max_tokens=5, messages=HI)
    assert info.value.body["type"] == "error"  # type: ignore[index]
    assert httpx.get(gw.url + "/v1/models", headers={"api-key": key}).status_code == 401


def test_a_key_may_only_name_its_models(gw: GatewayServer, admin: httpx.Client) -> None:
    key = make_key(admin, models=["fast"])["key"]
    assert oa(gw, key).chat.completions.create(model="fast", messages=HI).choices
    with pytest.raises(openai.PermissionDeniedError) as info:
        oa(gw, key).chat.completions.create(model="up/fake-model", messages=HI)
    assert "up/fake-model" in info.value.message
    with pytest.raises(anthropic.PermissionDeniedError):
        claude(gw, key).messages.create(model="mock/mock-1", max_tokens=5, messages=HI)
    listed = httpx.get(gw.url + "/v1/models", headers={"x-api-key": key}).json()
    assert [m["id"] for m in listed["data"]] == ["fast"]


def test_an_expired_key_gets_401(gw: GatewayServer, admin: httpx.Client) -> None:
    key = make_key(admin, expires_in=0.5)["key"]
    oa(gw, key).chat.completions.create(model="mock/mock-1", messages=HI)
    time.sleep(0.6)
    with pytest.raises(openai.AuthenticationError) as info:
        oa(gw, key).chat.completions.create(model="mock/mock-1", messages=HI)
    assert "expired" in info.value.message


def test_rotation_gives_a_new_key_and_keeps_the_old_for_the_grace(
    gw: GatewayServer, admin: httpx.Client
) -> None:
    old = make_key(admin, models=["mock/mock-1"], tpm=1000, metadata={"team": "x"})
    resp = admin.post(f"/admin/keys/{old['id']}/rotate", json={"grace_seconds": 1})
    assert resp.status_code == 201, resp.text
    new = resp.json()
    assert new["rotated_from"] == old["id"] and new["key"] != old["key"]
    assert (new["models"], new["tpm"], new["metadata"]) == (["mock/mock-1"], 1000, {"team": "x"})
    for key in (old["key"], new["key"]):
        oa(gw, key).chat.completions.create(model="mock/mock-1", messages=HI)
    time.sleep(1.1)
    with pytest.raises(openai.AuthenticationError):
        oa(gw, old["key"]).chat.completions.create(model="mock/mock-1", messages=HI)
    oa(gw, new["key"]).chat.completions.create(model="mock/mock-1", messages=HI)


def test_rotation_without_grace_ends_the_old_key_at_once(
    gw: GatewayServer, admin: httpx.Client
) -> None:
    old = make_key(admin)
    new = admin.post(f"/admin/keys/{old['id']}/rotate").json()
    with pytest.raises(openai.AuthenticationError):
        oa(gw, old["key"]).chat.completions.create(model="mock/mock-1", messages=HI)
    oa(gw, new["key"]).chat.completions.create(model="mock/mock-1", messages=HI)


def test_budget_on_creation_makes_a_key_budget(gw: GatewayServer, admin: httpx.Client) -> None:
    created = make_key(admin, budget_usd=2.5, budget_period="daily")
    db = Path(gw.app.settings.storage.data_dir) / "aicp.db"
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "select scope, period, hard_limit_micros from budgets where scope_id = ?",
            (created["id"],),
        ).fetchall()
    assert rows == [("key", "daily", 2_500_000)]
    rotated = admin.post(f"/admin/keys/{created['id']}/rotate").json()
    with sqlite3.connect(db) as conn:
        copied = conn.execute(
            "select period, hard_limit_micros from budgets where scope_id = ?", (rotated["id"],)
        ).fetchall()
    assert copied == [("daily", 2_500_000)]


def test_update_and_list_keys_with_filters(admin: httpx.Client) -> None:
    team = admin.post("/admin/teams", json={"name": "filters-team"}).json()
    created = make_key(admin, team_id=team["id"])
    patched = admin.patch(f"/admin/keys/{created['id']}", json={"rpm": 7, "name": "renamed"})
    assert patched.status_code == 200, patched.text
    assert (patched.json()["rpm"], patched.json()["name"]) == (7, "renamed")
    listed = admin.get("/admin/keys", params={"team_id": team["id"]}).json()["data"]
    assert [k["id"] for k in listed] == [created["id"]]
    admin.post(f"/admin/keys/{created['id']}/revoke")
    assert admin.get("/admin/keys", params={"team_id": team["id"]}).json()["data"] == []
    everything = admin.get("/admin/keys", params={"team_id": team["id"], "include_revoked": "1"})
    assert [k["status"] for k in everything.json()["data"]] == ["revoked"]


def test_users_teams_projects_and_service_accounts_have_crud(admin: httpx.Client) -> None:
    team = admin.post("/admin/teams", json={"name": "crud-team", "metadata": {"a": 1}})
    assert team.status_code == 201, team.text
    tid = team.json()["id"]
    bodies = {
        "users": {"name": "Ada", "email": "ada@example.com", "team_id": tid},
        "projects": {"name": "crud-project", "team_id": tid, "labels": {"tier": "gold"}},
        "service-accounts": {"name": "crud-sa", "team_id": tid},
    }
    for path, body in bodies.items():
        made = admin.post(f"/admin/{path}", json=body)
        assert made.status_code == 201, made.text
        ident = made.json()["id"]
        assert admin.get(f"/admin/{path}/{ident}").json()["name"] == body["name"]
        listed = admin.get(f"/admin/{path}", params={"team_id": tid}).json()["data"]
        assert [row["id"] for row in listed] == [ident]
        renamed = admin.patch(f"/admin/{path}/{ident}", json={"name": body["name"] + "-2"})
        assert renamed.json()["name"] == body["name"] + "-2"
        assert admin.delete(f"/admin/{path}/{ident}").json()["deleted"] is True
        assert admin.get(f"/admin/{path}/{ident}").status_code == 404
    assert admin.post("/admin/teams", json={"name": "crud-team"}).status_code == 409
    assert admin.delete(f"/admin/teams/{tid}").status_code == 200


def test_a_key_of_a_service_account_takes_its_team_and_project(admin: httpx.Client) -> None:
    team = admin.post("/admin/teams", json={"name": "sa-team"}).json()
    project = admin.post("/admin/projects", json={"name": "sa-proj", "team_id": team["id"]})
    sa = admin.post(
        "/admin/service-accounts",
        json={"name": "sa-bot", "team_id": team["id"], "project_id": project.json()["id"]},
    ).json()
    created = make_key(admin, service_account_id=sa["id"])
    assert (created["team_id"], created["project_id"]) == (team["id"], project.json()["id"])
    both = admin.post(
        "/admin/keys", json={"name": "x", "service_account_id": sa["id"], "user_id": "user_x"}
    )
    assert both.status_code == 422


@pytest.mark.parametrize(
    "body",
    [
        {"name": "x", "unknown": 1},
        {"name": "x", "rpm": "lots"},
        {"name": "x", "rpm": 2**40},
        {"name": "x", "expires_in": 10, "expires_at": 10},
        {"name": "x", "team_id": "team_missing"},
        {"name": "x", "budget_period": "hourly", "budget_usd": 1},
        {"name": "x" * 201},
        {"name": "x", "metadata": {"k": "v" * 20_000}},
    ],
)
def test_bad_key_bodies_are_422_in_openai_format(admin: httpx.Client, body: Any) -> None:
    resp = admin.post("/admin/keys", json=body)
    assert resp.status_code == 422, resp.text
    assert resp.json()["error"]["type"] == "invalid_request_error"


def test_malformed_json_is_400(admin: httpx.Client) -> None:
    resp = admin.post("/admin/keys", content=b"{nope", headers={"content-type": "x"})
    assert resp.status_code == 400
    assert "JSON" in resp.json()["error"]["message"]


def test_the_openapi_schema_covers_the_admin_api(gw: GatewayServer) -> None:
    schema = httpx.get(gw.url + "/openapi.json").json()
    paths = schema["paths"]
    assert {"post", "get"} <= set(paths["/admin/keys"])
    assert {"get", "patch"} <= set(paths["/admin/keys/{id}"])
    assert "post" in paths["/admin/keys/{id}/rotate"] and "post" in paths["/admin/keys/{id}/revoke"]
    for kind in ("users", "teams", "projects", "service-accounts"):
        assert {"get", "patch", "delete"} <= set(paths[f"/admin/{kind}/{{id}}"])
    assert "budget_usd" in schema["components"]["schemas"]["KeyCreate"]["properties"]
    # Every /admin route of the app, derived from its routing table, is documented: a new
    # route without an OpenAPI docstring fails here.
    admin_routes = [
        (route.path, method.lower())
        for route in gw.app.web.routes
        if isinstance(route, Route) and route.path.startswith("/admin")
        for method in route.methods or ()
        if method != "HEAD"
    ]
    assert len(admin_routes) >= 30 and ("/admin/spend", "get") in admin_routes
    for path, method in admin_routes:
        assert method in paths.get(path, {}), f"{method.upper()} {path} is not in /openapi.json"
        operation = paths[path][method]
        assert operation.get("summary") and operation.get("responses"), (path, method)
    # The money routes: the request body's model, query parameters and error responses.
    assert {"scope", "scope_id", "hard_limit_usd"} <= set(
        schema["components"]["schemas"]["BudgetCreate"]["properties"]
    )
    create = paths["/admin/budgets"]["post"]
    assert create["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/BudgetCreate"
    }
    expected_errors = {
        ("/admin/budgets", "post"): {"401", "403", "422"},
        ("/admin/budgets", "get"): {"401", "422"},
        ("/admin/budgets/{id}", "get"): {"401", "404"},
        ("/admin/budgets/{id}", "delete"): {"401", "403", "404"},
        ("/admin/spend", "get"): {"401", "403", "422"},
    }
    for (path, method), codes in expected_errors.items():
        assert codes <= set(paths[path][method]["responses"]), (path, method)
    params = {p["name"] for p in paths["/admin/spend"]["get"]["parameters"]}
    assert params == {"by", "since", "until"}
    assert {p["name"] for p in paths["/admin/budgets"]["get"]["parameters"]} == {
        "scope",
        "scope_id",
    }


# --- without a master key ---------------------------------------------------------------------


def test_without_master_key_loopback_bootstraps_then_keys_are_required(
    upstream: FakeUpstream,
) -> None:
    with GatewayServer(openai_settings(upstream)) as gw:
        # No master key and no keys: anonymous use on loopback, as before.
        oa(gw, "anything").chat.completions.create(model="mock/mock-1", messages=HI)
        first = httpx.post(gw.url + "/admin/keys", json={"name": "root", "is_admin": True})
        assert first.status_code == 201, first.text
        # Now that a key exists, anonymous callers are refused everywhere.
        with pytest.raises(openai.AuthenticationError):
            oa(gw, "anything").chat.completions.create(model="mock/mock-1", messages=HI)
        assert httpx.get(gw.url + "/admin/keys").status_code == 401
        root = {"authorization": f"Bearer {first.json()['key']}"}
        assert httpx.get(gw.url + "/admin/keys", headers=root).status_code == 200
        oa(gw, first.json()["key"]).chat.completions.create(model="mock/mock-1", messages=HI)


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_the_gateway_refuses_a_public_address_without_a_master_key(
    capfd: pytest.CaptureFixture[str],
) -> None:
    settings = make_settings({"server": {"host": "0.0.0.0"}})
    with pytest.raises(RuntimeError, match="did not start"), GatewayServer(settings):
        pass
    assert "without a master key" in capfd.readouterr().err
    # With a master key it starts (GatewayServer itself binds loopback).
    with GatewayServer(make_settings({"server": {"host": "0.0.0.0", "master_key": MASTER}})):
        pass


def test_aicp_serve_refuses_a_public_address_without_a_master_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AICP_MASTER_KEY", raising=False)
    monkeypatch.setenv("AICP_DATA_DIR", str(tmp_path))
    result = CliRunner().invoke(cli, ["serve", "--host", "0.0.0.0", "--port", "1"])
    assert result.exit_code == 2
    assert "without a master key" in result.output and "AICP_MASTER_KEY" in result.output


# --- the CLI ----------------------------------------------------------------------------------


def test_cli_creates_lists_rotates_and_revokes_keys(gw: GatewayServer) -> None:
    runner = CliRunner()
    env = {"AICP_URL": gw.url, "AICP_API_KEY": MASTER, "COLUMNS": "200"}
    team = runner.invoke(cli, ["teams", "create", "cli-team", "--json"], env=env)
    assert team.exit_code == 0, team.output
    tid = json.loads(team.output)["id"]
    listed_teams = runner.invoke(cli, ["teams", "list"], env=env)
    assert "cli-team" in listed_teams.output
    made = runner.invoke(
        cli, ["keys", "create", "--name", "cli-key", "--team", tid, "-m", "mock/mock-1"], env=env
    )
    assert made.exit_code == 0, made.output
    key = made.output.strip().splitlines()[-1]
    assert key.startswith("sk-aicp-") and made.output.count(key) == 1
    oa(gw, key).chat.completions.create(model="mock/mock-1", messages=HI)
    listed = runner.invoke(cli, ["keys", "list", "--team", tid, "--json"], env=env)
    (record,) = json.loads(listed.output)
    assert key not in listed.output
    table = runner.invoke(cli, ["keys", "list", "--team", tid], env=env)
    assert "cli-key" in table.output
    rotated = runner.invoke(cli, ["keys", "rotate", record["id"], "--grace", "0"], env=env)
    assert rotated.exit_code == 0, rotated.output
    new_key = rotated.output.strip().splitlines()[-1]
    assert new_key.startswith("sk-aicp-") and new_key != key
    after = json.loads(
        runner.invoke(cli, ["keys", "list", "--team", tid, "--json"], env=env).output
    )
    (new_record,) = [k for k in after if k["rotated_from"] == record["id"]]
    revoked = runner.invoke(cli, ["keys", "revoke", new_record["id"]], env=env)
    assert revoked.exit_code == 0 and "revoked" in revoked.output
    with pytest.raises(openai.AuthenticationError):
        oa(gw, new_key).chat.completions.create(model="mock/mock-1", messages=HI)
    denied = runner.invoke(cli, ["keys", "list"], env={**env, "AICP_API_KEY": "sk-wrong"})
    assert denied.exit_code == 1 and "401" in denied.output
