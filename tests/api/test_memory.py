"""Project memory end to end: entries stored (never with a secret), versioned,
searched, read only by their project, and carried into a request that asks for
them, with the receipt naming what was added."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

from aicp.testing import FakeUpstream, GatewayServer
from tests.helpers import admin_client, make_key, make_settings

MASTER = "sk-master-memory-test"


@pytest.fixture
def up() -> Iterator[FakeUpstream]:
    with FakeUpstream() as server:
        yield server


@pytest.fixture
def gw(up: FakeUpstream) -> Iterator[GatewayServer]:
    settings = make_settings(
        {
            "server": {"master_key": MASTER},
            "providers": {"up": {"type": "openai", "base_url": up.url + "/v1", "api_key": "sk-up"}},
            "models": [{"name": "m", "deployments": [{"provider": "up", "model": "fake-model"}]}],
        }
    )
    with GatewayServer(settings) as server:
        yield server


def _project_key(gw: GatewayServer, name: str) -> str:
    with admin_client(gw.url, MASTER) as admin:
        project = admin.post("/admin/projects", json={"name": name})
        assert project.status_code == 201, project.text
        key: str = make_key(admin, project_id=project.json()["id"])["key"]
    return key


def _add(gw: GatewayServer, key: str, **body: Any) -> Any:
    with admin_client(gw.url, key) as client:
        return client.post("/v1/memory", json=body)


def test_entries_are_versioned_searched_and_kept_to_their_project(gw: GatewayServer) -> None:
    alpha, beta = _project_key(gw, "alpha"), _project_key(gw, "beta")
    made = _add(
        gw,
        alpha,
        kind="decision",
        title="Database",
        text="We chose PostgreSQL 15 for the billing service.",
        tags=["db"],
    )
    assert made.status_code == 201, made.text
    entry = made.json()
    assert entry["version"] == 1 and entry["kind"] == "decision"
    with admin_client(gw.url, alpha) as client:
        again = client.post(
            f"/v1/memory/{entry['id']}",
            json={"kind": "decision", "title": "Database", "text": "We moved billing to PG 16."},
        )
        assert again.status_code == 201 and again.json()["version"] == 2
        history = client.get(f"/v1/memory/{entry['id']}/history").json()["data"]
        assert [h["version"] for h in history] == [1, 2] and "PostgreSQL 15" in history[0]["text"]
        found = client.get("/v1/memory", params={"q": "which database for billing"}).json()
        assert [f["id"] for f in found["data"]] == [entry["id"]]
        assert found["data"][0]["version"] == 2
    with admin_client(gw.url, beta) as client:
        assert client.get(f"/v1/memory/{entry['id']}").status_code == 404
        assert client.get("/v1/memory", params={"q": "billing database"}).json()["data"] == []
        denied = client.get("/v1/memory", params={"project_id": entry["project_id"]})
        assert denied.status_code == 403
    assert _add(gw, beta, title="t", text="x", **{"global": True}).status_code == 403


def test_an_entry_holding_a_secret_is_refused(gw: GatewayServer) -> None:
    key = _project_key(gw, "gamma")
    secret = "AKIAIOSFODNN7EXAMPLE"
    resp = _add(gw, key, title="deploy", text=f"use the key {secret} to deploy")
    assert resp.status_code == 422
    error = resp.json()["error"]
    assert error["code"] == "secret_in_memory" and secret not in resp.text
    with admin_client(gw.url, key) as client:
        assert client.get("/v1/memory", params={"q": "deploy key"}).json()["data"] == []


def test_a_request_that_asks_gets_its_projects_memory(gw: GatewayServer, up: FakeUpstream) -> None:
    key = _project_key(gw, "delta")
    entry = _add(
        gw, key, kind="runbook", title="Restarts", text="Restart the ingest worker: make bounce."
    ).json()
    _add(gw, key, title="Lunch", text="The team lunch is on Fridays.")
    client = openai.OpenAI(base_url=gw.url + "/v1", api_key=key, max_retries=0)
    raw = client.chat.completions.with_raw_response.create(
        model="m",
        messages=[{"role": "user", "content": "How do I restart the ingest worker?"}],
        extra_headers={"x-aicp-memory": "on"},
    )
    sent = [r.body for r in up.requests if r.method == "POST"][-1]["messages"]
    assert sent[0]["role"] == "system" and "make bounce" in sent[0]["content"]
    assert entry["id"] in sent[0]["content"] and "Fridays" not in sent[0]["content"]
    assert sent[-1]["content"] == "How do I restart the ingest worker?"
    with admin_client(gw.url, MASTER) as admin:
        receipt = admin.get(f"/v1/receipts/{raw.headers['x-aicp-receipt-id']}").json()["receipt"]
    (record,) = receipt["memory"]
    assert record["entries"] == [f"{entry['id']}@1"]
    client.chat.completions.create(model="m", messages=[{"role": "user", "content": "restart?"}])
    plain = [r.body for r in up.requests if r.method == "POST"][-1]["messages"]
    assert [m["role"] for m in plain] == ["user"]  # no header: no memory


def test_memory_rows_are_append_only_in_the_database(gw: GatewayServer) -> None:
    key = _project_key(gw, "epsilon")
    _add(gw, key, title="t", text="some context")
    db = Path(gw.app.settings.storage.data_dir) / "aicp.db"
    with sqlite3.connect(db) as conn:
        for statement in ("UPDATE memory_entries SET text = 'x'", "DELETE FROM memory_entries"):
            with pytest.raises(sqlite3.DatabaseError, match="append-only"):
                conn.execute(statement)


def test_search_finds_by_meaning_when_the_semantic_extra_is_installed(gw: GatewayServer) -> None:
    pytest.importorskip("wordllama", reason="meaning-based search needs the `semantic` extra")
    key = _project_key(gw, "zeta")
    lunch = _add(gw, key, title="Lunch", text="The team lunch is on Fridays at noon.").json()
    _add(gw, key, title="Deploys", text="Deploy with make ship after review.")
    with admin_client(gw.url, key) as client:
        found = client.get("/v1/memory", params={"q": "where do we eat on friday"}).json()["data"]
    assert found and found[0]["id"] == lunch["id"]
