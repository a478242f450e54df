"""Keys under attack: injection, secrets in logs and errors, storage, cross-process revocation."""

from __future__ import annotations

import logging
import socket
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import httpx
import openai
import pytest

from aicp.accounting.keys import hash_key
from aicp.testing import FakeUpstream, GatewayServer
from tests.helpers import openai_settings

MASTER = "sk-master-security"
PEPPER = "pepper-security-test"
UPSTREAM_SECRET = "sk-upstream-secret"
CHAT = "/v1/chat/completions"
BODY = {"model": "mock/mock-1", "messages": [{"role": "user", "content": "hi"}]}

HOSTILE = [
    "' OR '1'='1",
    "sk-aicp-' OR '1'='1' --",
    '"; DROP TABLE api_keys; --',
    "%",
    "*",
    "sk-aicp-" + "A" * 10_000,
    "ключ-🔑",
]


@pytest.fixture(scope="module")
def up() -> Iterator[FakeUpstream]:
    with FakeUpstream() as upstream:
        yield upstream


@pytest.fixture(scope="module")
def gw(up: FakeUpstream) -> Iterator[GatewayServer]:
    settings = openai_settings(up, server={"master_key": MASTER}, storage={"key_pepper": PEPPER})
    with GatewayServer(settings) as server:
        yield server


def admin(gw: GatewayServer) -> httpx.Client:
    return httpx.Client(base_url=gw.url, headers={"authorization": f"Bearer {MASTER}"})


def new_key(gw: GatewayServer, **body: object) -> dict[str, str]:
    with admin(gw) as c:
        resp = c.post("/admin/keys", json={"name": "sec", **body})
    assert resp.status_code == 201, resp.text
    data: dict[str, str] = resp.json()
    return data


def _header_value(text: str) -> bytes:
    return text.encode("utf-8")


@pytest.mark.parametrize("token", HOSTILE, ids=range(len(HOSTILE)))
@pytest.mark.parametrize("header", ["authorization", "x-api-key", "api-key"])
def test_hostile_keys_are_401_never_500_never_a_match(
    gw: GatewayServer, token: str, header: str
) -> None:
    new_key(gw)  # there is a key to match, if matching were broken
    value = _header_value(("Bearer " if header == "authorization" else "") + token)
    for method, path, json in (("POST", CHAT, BODY), ("GET", "/admin/keys", None)):
        resp = httpx.request(method, gw.url + path, json=json, headers=[(header.encode(), value)])
        assert resp.status_code == 401, resp.text
        assert token[:50] not in resp.text


def test_a_null_byte_in_the_key_header_is_refused(gw: GatewayServer) -> None:
    raw = (
        b"GET /admin/keys HTTP/1.1\r\nhost: x\r\nauthorization: Bearer sk-aicp-a\x00b\r\n"
        b"connection: close\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", gw.port), timeout=5) as s:
        s.sendall(raw)
        status = s.recv(200).split(b"\r\n", 1)[0]
    assert status.split()[1] in (b"400", b"401")


@pytest.mark.parametrize(
    "ident",
    ["' OR '1'='1", "key_' OR 1=1 --", "ключ", "x" * 10_000, "a\x00b", "..", "%00"],
    ids=["sql", "sql2", "unicode", "10kB", "nul", "dots", "pct"],
)
@pytest.mark.parametrize("method", ["GET", "PATCH", "POST-revoke", "DELETE-user"])
def test_hostile_ids_in_paths_are_404_never_500(gw: GatewayServer, ident: str, method: str) -> None:
    path = quote(ident, safe="")
    with admin(gw) as c:
        if method == "GET":
            resp = c.get(f"/admin/keys/{path}")
        elif method == "PATCH":
            resp = c.patch(f"/admin/keys/{path}", json={"rpm": 1})
        elif method == "POST-revoke":
            resp = c.post(f"/admin/keys/{path}/revoke")
        else:
            resp = c.delete(f"/admin/users/{path}")
    assert resp.status_code == 404, resp.text
    assert resp.json()["error"]["type"] == "not_found_error"


@pytest.mark.parametrize(
    "body",
    [
        {"name": "x", "team_id": "' OR '1'='1"},
        {"name": "x", "user_id": "u" * 10_000},
        {"name": "a\x00b"},
        {"name": "x", "metadata": {"k": "a\x00b"}},
        {"name": "x", "models": ["m\x00"]},
        {"name": "n" * 10_000},
    ],
)
def test_hostile_bodies_are_422_never_500(gw: GatewayServer, body: dict[str, object]) -> None:
    with admin(gw) as c:
        resp = c.post("/admin/keys", json=body)
        assert resp.status_code == 422, resp.text
        users = c.post("/admin/users", json={"name": "x", **{k: v for k, v in body.items()}})
        assert users.status_code == 422, users.text


def test_hostile_query_filters_are_422(gw: GatewayServer) -> None:
    with admin(gw) as c:
        resp = c.get("/admin/keys", params={"team_id": "' OR '1'='1"})
        assert resp.status_code == 422
        assert c.get("/admin/keys", params={"limit": "1; drop"}).status_code == 422


def test_unicode_names_round_trip(gw: GatewayServer) -> None:
    made = new_key(gw, name="ключ 🔑 ' OR '1'='1")
    with admin(gw) as c:
        assert c.get(f"/admin/keys/{made['id']}").json()["name"] == "ключ 🔑 ' OR '1'='1"


def test_keys_are_stored_only_as_their_hmac(gw: GatewayServer) -> None:
    made = new_key(gw, metadata={"owner": "sec"})
    db = Path(gw.app.settings.storage.data_dir) / "aicp.db"
    with sqlite3.connect(db) as conn:
        rows = conn.execute("select * from api_keys").fetchall()
        (stored,) = conn.execute(
            "select key_hash, display from api_keys where id = ?", (made["id"],)
        ).fetchall()
    assert stored[0] == hash_key(PEPPER.encode(), made["key"])
    assert stored[1] == made["display"]
    assert made["key"] not in repr(rows)
    secret_part = made["key"][len("sk-aicp-") :]
    assert secret_part not in repr(rows) and secret_part[4:-4] not in repr(rows)
    assert PEPPER not in (db.read_bytes().decode("latin-1"))


def test_no_secret_in_logs_errors_or_responses(
    gw: GatewayServer, caplog: pytest.LogCaptureFixture
) -> None:
    # Ours at DEBUG; libraries at INFO (aiosqlite's DEBUG log prints every SQL parameter).
    caplog.set_level(logging.INFO)
    caplog.set_level(logging.DEBUG, logger="aicp")
    made = new_key(gw, models=["mock/mock-1"])
    key = made["key"]
    digest = hash_key(PEPPER.encode(), key)
    client = openai.OpenAI(base_url=gw.url + "/v1", api_key=key, max_retries=0)
    client.chat.completions.create(model="mock/mock-1", messages=[{"role": "user", "content": "x"}])
    bodies = []
    with pytest.raises(openai.PermissionDeniedError) as denied:
        client.chat.completions.create(
            model="up/other", messages=[{"role": "user", "content": "x"}]
        )
    bodies.append(denied.value.response.text)
    with admin(gw) as c:
        bodies.append(c.get(f"/admin/keys/{made['id']}").text)
        bodies.append(c.get("/admin/keys").text)
        bodies.append(c.post(f"/admin/keys/{made['id']}/revoke").text)
    for headers in ({"authorization": f"Bearer {key}"}, {"x-api-key": key + "x"}):
        bodies.append(httpx.post(gw.url + CHAT, json=BODY, headers=headers).text)
        bodies.append(httpx.get(gw.url + "/admin/keys", headers=headers).text)
    text = caplog.text + "".join(bodies)
    for secret in (key, key[len("sk-aicp-") :], digest, PEPPER, MASTER, UPSTREAM_SECRET):
        assert secret not in text


# --- across processes ---------------------------------------------------------------------------


@pytest.mark.postgres
def test_revocation_reaches_a_second_gateway_within_a_second(
    up: FakeUpstream, postgres_url: str
) -> None:
    storage = {"database_url": postgres_url, "key_pepper": PEPPER}
    first = openai_settings(up, server={"master_key": MASTER}, storage=storage)
    second = openai_settings(up, server={"master_key": MASTER}, storage=storage)
    with GatewayServer(first) as a, GatewayServer(second) as b:
        made = new_key(a)
        headers = {"authorization": f"Bearer {made['key']}"}
        deadline = time.monotonic() + 2
        while httpx.post(b.url + CHAT, json=BODY, headers=headers).status_code != 200:
            assert time.monotonic() < deadline, "the new key never reached the second gateway"
            time.sleep(0.05)
        with admin(a) as c:
            assert c.post(f"/admin/keys/{made['id']}/revoke").status_code == 200
        revoked_at = time.monotonic()
        assert httpx.post(a.url + CHAT, json=BODY, headers=headers).status_code == 401
        while (resp := httpx.post(b.url + CHAT, json=BODY, headers=headers)).status_code != 401:
            assert resp.status_code == 200
            assert time.monotonic() - revoked_at < 1.0, "revocation took over a second"
            time.sleep(0.02)
