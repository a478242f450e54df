"""Receipts over HTTP: every response has one, it verifies offline, keys see their own."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from typing import Any

import anthropic
import httpx
import openai
import pytest
import rfc8785

from aicp.receipts import merkle
from aicp.receipts.signing import Verifier
from aicp.receipts.verify import verify_bundle
from aicp.testing import FakeUpstream, GatewayServer
from tests.helpers import admin_client, make_key, openai_settings

MASTER = "sk-master-receipts-test"
UPSTREAM_KEY = "sk-upstream-secret"


@pytest.fixture(scope="module")
def gw(module_upstream: FakeUpstream) -> Iterator[GatewayServer]:
    settings = openai_settings(
        module_upstream, server={"master_key": MASTER}, receipts={"bodies": "full"}
    )
    with GatewayServer(settings) as server:
        yield server


@pytest.fixture(scope="module")
def admin(gw: GatewayServer) -> Iterator[httpx.Client]:
    with admin_client(gw.url, MASTER) as c:
        yield c


def oa(gw: GatewayServer, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=gw.url + "/v1", api_key=key, max_retries=0)


def chat(client: openai.OpenAI, text: str = "Hello") -> Any:
    return client.chat.completions.with_raw_response.create(
        model="up/gpt-4o-mini", messages=[{"role": "user", "content": text}]
    )


def test_every_response_carries_a_receipt_id(gw: GatewayServer, admin: httpx.Client) -> None:
    key = make_key(admin)["key"]
    raw = chat(oa(gw, key))
    assert raw.headers["x-aicp-receipt-id"].startswith("rcpt_")
    with oa(gw, key).chat.completions.with_streaming_response.create(
        model="up/gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], stream=True
    ) as stream:
        assert stream.headers["x-aicp-receipt-id"].startswith("rcpt_")
        list(stream.iter_lines())
    claude = anthropic.Anthropic(base_url=gw.url, api_key=key, max_retries=0)
    msg = claude.messages.with_raw_response.create(
        model="up/gpt-4o-mini", max_tokens=10, messages=[{"role": "user", "content": "hi"}]
    )
    assert msg.headers["x-aicp-receipt-id"].startswith("rcpt_")
    # Errors too: an unknown model, and a body that is not JSON.
    r = httpx.post(
        gw.url + "/v1/chat/completions",
        headers={"authorization": f"Bearer {key}"},
        json={"model": "no-such-model", "messages": [{"role": "user", "content": "x"}]},
    )
    assert r.status_code == 404 and r.headers["x-aicp-receipt-id"].startswith("rcpt_")
    r = httpx.post(gw.url + "/v1/chat/completions", content=b"{nope", headers={"x": "y"})
    assert r.status_code == 400 and r.headers["x-aicp-receipt-id"].startswith("rcpt_")
    ids = {raw.headers["x-aicp-receipt-id"], msg.headers["x-aicp-receipt-id"]}
    assert len(ids) == 2


def test_a_receipt_verifies_offline_with_the_published_key(
    gw: GatewayServer, admin: httpx.Client
) -> None:
    key = make_key(admin)
    raw = chat(oa(gw, key["key"]), "verify me")
    rid = raw.headers["x-aicp-receipt-id"]
    bundle = admin.get(f"/v1/receipts/{rid}").json()
    published = admin.get("/v1/receipts/checkpoint").json()["verifier_key"]
    report = verify_bundle(bundle, published)
    assert report.ok, report.problems
    # Independently of our code: RFC 8785 of the receipt, RFC 6962 leaf hash, the
    # RFC 9162 audit path folded by hand, and the Ed25519-signed note.
    leaf = hashlib.sha256(b"\x00" + rfc8785.dumps(bundle["receipt"])).digest()
    assert leaf.hex() == bundle["leaf_hash"]
    assert merkle.verify_inclusion(
        leaf,
        bundle["leaf_index"],
        bundle["tree_size"],
        [bytes.fromhex(h) for h in bundle["audit_path"]],
        bytes.fromhex(bundle["root_hash"]),
    )
    cp = Verifier.parse(published).open(bundle["checkpoint"])
    assert cp.size == bundle["tree_size"] and cp.root.hex() == bundle["root_hash"]


def test_the_receipt_records_what_the_path_decided_and_never_the_key(
    gw: GatewayServer, admin: httpx.Client, module_upstream: FakeUpstream
) -> None:
    key = make_key(admin, team_id=None)
    raw = chat(oa(gw, key["key"]), "what was decided")
    receipt = admin.get(f"/v1/receipts/{raw.headers['x-aicp-receipt-id']}").json()["receipt"]
    assert receipt["principal"]["key_id"] == key["id"]
    assert receipt["principal"]["key_prefix"] == key["display"]
    assert receipt["mode"] == "live" and receipt["status"] == 200
    assert receipt["route"]["requested"] == "up/gpt-4o-mini"
    assert receipt["route"]["served"] == receipt["attempts"][0]["deployment"]
    assert receipt["attempts"][0]["status"] == 200
    assert receipt["usage"]["prompt_tokens"] > 0 and receipt["usage"]["completion_tokens"] > 0
    assert receipt["latency_us"]["total"] >= receipt["latency_us"]["provider"] > 0
    stages = [name for name, _, _ in receipt["stages"]]
    assert stages[:1] == ["authenticate"] and "execute" in stages and "settle" in stages
    # The bodies by hash: the request as sent, the response as received.
    body = raw.http_request.content
    assert receipt["bodies"]["request"] == "sha256:" + hashlib.sha256(body).hexdigest()
    assert receipt["bodies"]["response"] == "sha256:" + hashlib.sha256(raw.content).hexdigest()
    text = json.dumps(receipt)
    assert key["key"] not in text and MASTER not in text and UPSTREAM_KEY not in text


def test_a_stream_receipt_hashes_every_byte_and_times_the_first(
    gw: GatewayServer, admin: httpx.Client
) -> None:
    key = make_key(admin)["key"]
    with httpx.stream(
        "POST",
        gw.url + "/v1/chat/completions",
        headers={"authorization": f"Bearer {key}"},
        json={
            "model": "up/gpt-4o-mini",
            "stream": True,
            "messages": [{"role": "user", "content": "s"}],
        },
    ) as r:
        data = r.read()
        rid = r.headers["x-aicp-receipt-id"]
    assert data.rstrip().endswith(b"data: [DONE]")
    receipt = admin.get(f"/v1/receipts/{rid}").json()["receipt"]
    assert receipt["endpoint"]["stream"] is True
    assert receipt["bodies"]["response"] == "sha256:" + hashlib.sha256(data).hexdigest()
    assert 0 < receipt["latency_us"]["ttft"] <= receipt["latency_us"]["total"]


def test_a_key_reads_only_its_own_receipts(gw: GatewayServer, admin: httpx.Client) -> None:
    a, b = make_key(admin)["key"], make_key(admin)
    rid_b = chat(oa(gw, b["key"])).headers["x-aicp-receipt-id"]
    rid_a = chat(oa(gw, a)).headers["x-aicp-receipt-id"]
    as_a = httpx.Client(base_url=gw.url, headers={"authorization": f"Bearer {a}"})
    assert as_a.get(f"/v1/receipts/{rid_a}").status_code == 200
    denied = as_a.get(f"/v1/receipts/{rid_b}")
    assert denied.status_code == 404 and denied.json()["error"]["type"] == "not_found_error"
    assert admin.get(f"/v1/receipts/{rid_b}").status_code == 200
    listed = as_a.get("/v1/receipts").json()["data"]
    assert [r["id"] for r in listed] == [rid_a]
    assert as_a.get("/v1/receipts", params={"key": b["id"]}).status_code == 403
    assert admin.get("/v1/receipts", params={"key": b["id"]}).json()["data"][0]["id"] == rid_b
    assert httpx.get(gw.url + f"/v1/receipts/{rid_a}").status_code == 401
    assert as_a.post("/v1/receipts/checkpoint").status_code == 403
    assert as_a.get("/v1/receipts/not-a-receipt").status_code == 404


def test_consistency_proofs_link_two_checkpoints(gw: GatewayServer, admin: httpx.Client) -> None:
    key = make_key(admin)["key"]
    chat(oa(gw, key))
    first = admin.post("/v1/receipts/checkpoint").json()
    for _ in range(3):
        chat(oa(gw, key))
    second = admin.post("/v1/receipts/checkpoint").json()
    assert second["tree_size"] == first["tree_size"] + 3
    r = admin.get(
        "/v1/receipts/consistency",
        params={"from": first["tree_size"], "to": second["tree_size"]},
    )
    body = r.json()
    assert body["from_root"] == first["root_hash"] and body["to_root"] == second["root_hash"]
    assert merkle.verify_consistency(
        first["tree_size"],
        second["tree_size"],
        bytes.fromhex(first["root_hash"]),
        bytes.fromhex(second["root_hash"]),
        [bytes.fromhex(h) for h in body["proof"]],
    )
    for params in ({"from": "0", "to": "1"}, {"from": "3", "to": "2"}, {"from": "x", "to": "1"}):
        bad = admin.get("/v1/receipts/consistency", params=params)
        assert bad.status_code == 422 and "error" in bad.json()
    too_far = admin.get("/v1/receipts/consistency", params={"from": 1, "to": 10**9})
    assert too_far.status_code == 422


def test_bodies_kept_by_config_are_served_to_the_owner(
    gw: GatewayServer, admin: httpx.Client
) -> None:
    key = make_key(admin)["key"]
    raw = chat(oa(gw, key), "keep this body")
    rid = raw.headers["x-aicp-receipt-id"]
    got = httpx.get(gw.url + f"/v1/receipts/{rid}/body", headers={"authorization": f"Bearer {key}"})
    assert got.status_code == 200
    assert "keep this body" in got.json()["request"]["text"]
    assert got.json()["response"]["text"].encode() == raw.content


def test_bodies_are_not_kept_by_default(upstream: FakeUpstream) -> None:
    with GatewayServer(openai_settings(upstream)) as gw:
        raw = chat(oa(gw, "anything"), "a private question")
        rid = raw.headers["x-aicp-receipt-id"]
        got = httpx.get(gw.url + f"/v1/receipts/{rid}/body")
        assert got.status_code == 404 and "not kept" in got.json()["error"]["message"]
        receipt = httpx.get(gw.url + f"/v1/receipts/{rid}").json()["receipt"]
    # The receipt still commits to the bodies by their hashes.
    assert receipt["bodies"]["request"].startswith("sha256:")
    assert receipt["bodies"]["response"] == "sha256:" + hashlib.sha256(raw.content).hexdigest()


def test_a_response_is_withheld_when_its_receipt_cannot_be_committed(
    upstream: FakeUpstream, tmp_path: Any
) -> None:
    import sqlite3

    settings = openai_settings(upstream, storage={"data_dir": str(tmp_path)})
    with GatewayServer(settings) as gw:
        client = oa(gw, "anything")
        chat(client)  # the log works
        with sqlite3.connect(tmp_path / "aicp.db") as db:  # then the database refuses writes
            db.execute(
                "CREATE TRIGGER no_more BEFORE INSERT ON receipts "
                "BEGIN SELECT RAISE(ABORT, 'disk says no'); END"
            )
        with pytest.raises(openai.APIStatusError) as caught:
            client.chat.completions.create(
                model="up/gpt-4o-mini", messages=[{"role": "user", "content": "x"}]
            )
        assert caught.value.status_code == 503
        assert caught.value.body["code"] == "receipt_not_recorded"  # type: ignore[index]
        with httpx.stream(
            "POST",
            gw.url + "/v1/chat/completions",
            json={
                "model": "up/gpt-4o-mini",
                "stream": True,
                "messages": [{"role": "user", "content": "s"}],
            },
        ) as r:
            text = r.read().decode()
        # Headers went out before the stream: it ends with an error event, not [DONE].
        assert "receipt_not_recorded" in text and "[DONE]" not in text
