"""Forced routes, request ids, trace context and credentials end to end (the fixtures and
helpers are test_faults')."""

from __future__ import annotations

from typing import Any

import httpx
import openai
import pytest

from aicp.errors import UpstreamStatusError
from aicp.providers.base import Timeouts
from aicp.providers.http import HttpClient
from aicp.testing import FakeUpstream, GatewayServer
from tests.reliability.test_faults import (  # noqa: F401 (pytest fixtures, used by name)
    MESSAGES,
    SECRET,
    chat,
    chats,
    client,
    closed_port,
    health,
    settings,
)

# --- forced routes ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("server", "key", "allowed"),
    [
        ({}, None, False),
        ({"allow_forced_routes": True}, None, True),
        ({"master_key": "sk-master-1234"}, "sk-master-1234", True),
    ],
)
def test_a_forced_route_needs_the_right_to_force_it(
    up: FakeUpstream, up2: FakeUpstream, server: dict[str, Any], key: str | None, allowed: bool
) -> None:
    with GatewayServer(settings(up, up2, server=server)) as gw:
        c = client(gw, key or "unused", default_headers={"x-aicp-route": "up2/fake-model-2"})
        if allowed:
            resp = c.chat.completions.create(model="main", messages=MESSAGES)
            assert resp.choices[0].message.content == "Hello from the fallback"
            assert not chats(up)
        else:
            with pytest.raises(openai.PermissionDeniedError) as info:
                c.chat.completions.create(model="main", messages=MESSAGES)
            assert "x-aicp-route" in info.value.message
            assert not chats(up) and not chats(up2)
        # Without the header the normal route is taken.
        assert (
            client(gw, key or "unused")
            .chat.completions.create(model="main", messages=MESSAGES)
            .choices[0]
            .message.content
            == "Hello from the fake upstream"
        )


def test_a_forced_route_does_not_fall_back(up: FakeUpstream, up2: FakeUpstream) -> None:
    up.fault(status=500, times=10)
    s = settings(up, up2, server={"allow_forced_routes": True}, reliability={"max_retries": 1})
    with GatewayServer(s) as gw:
        c = client(gw, default_headers={"x-aicp-route": "up/fake-model"})
        with pytest.raises(openai.InternalServerError):
            c.chat.completions.create(model="main", messages=MESSAGES)
    assert len(chats(up)) == 2 and not chats(up2)


# --- request ids, trace context, credentials -----------------------------------------------


def test_every_response_carries_a_request_id(up: FakeUpstream, up2: FakeUpstream) -> None:
    up.fault(status=500, times=100, path="/chat")
    with GatewayServer(settings(up, up2, reliability={"max_retries": 0})) as gw:
        body = {"model": "backup", "messages": MESSAGES}
        responses = [
            httpx.post(gw.url + "/v1/chat/completions", json=body),
            httpx.post(gw.url + "/v1/chat/completions", json={**body, "stream": True}),
            httpx.post(gw.url + "/v1/chat/completions", json={**body, "model": "up/fake-model"}),
            httpx.post(gw.url + "/v1/chat/completions", json={**body, "model": "no-such"}),
            httpx.post(gw.url + "/v1/chat/completions", content=b"{not json"),
            httpx.get(gw.url + "/health"),
            httpx.get(gw.url + "/v1/models"),
            httpx.get(gw.url + "/v1/providers/health"),
            httpx.get(gw.url + "/v1/no-such-path"),
        ]
        assert [r.status_code for r in responses] == [200, 200, 500, 404, 400, 200, 200, 200, 404]
        ids = [r.headers.get("x-request-id") for r in responses]
        assert all(ids) and len(set(ids)) == len(ids)
        mine = {"x-request-id": "abc-123"}
        echoed = [
            httpx.post(gw.url + "/v1/chat/completions", json=body, headers=mine),
            httpx.post(gw.url + "/v1/chat/completions", json={}, headers=mine),
            httpx.get(gw.url + "/health", headers=mine),
        ]
        assert [r.status_code for r in echoed] == [200, 400, 200]
        assert all(r.headers["x-request-id"] == "abc-123" for r in echoed)


def test_the_clients_traceparent_reaches_the_upstream(up: FakeUpstream, up2: FakeUpstream) -> None:
    tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    with GatewayServer(settings(up, up2)) as gw:
        client(gw, default_headers={"traceparent": tp}).chat.completions.create(
            model="main", messages=MESSAGES
        )
        chat(gw, stream=True).close()
    assert chats(up)[0].headers["traceparent"] == tp
    assert "traceparent" not in chats(up)[1].headers


def test_provider_credentials_never_reach_the_client(up: FakeUpstream, up2: FakeUpstream) -> None:
    # An upstream that quotes the rejected key back, as some do.
    up.fault(status=401, message=f"Incorrect API key provided: {SECRET}.")
    up.fault(status=500, message=f"internal error for key={SECRET}", times=10)
    s = settings(up, up2, f"http://127.0.0.1:{closed_port()}/v1", reliability={"max_retries": 0})
    with GatewayServer(s) as gw:
        base = gw.url + "/v1"
        body = {"model": "up/fake-model", "messages": MESSAGES}
        texts = [
            httpx.post(base + "/chat/completions", json=body).text,
            httpx.post(base + "/chat/completions", json=body).text,
            httpx.post(base + "/chat/completions", json={**body, "stream": True}).text,
            httpx.post(base + "/chat/completions", json={**body, "model": "bare/m"}).text,
            httpx.get(base + "/providers/health").text,
            httpx.get(base + "/models").text,
        ]
    assert "Incorrect API key provided" in texts[0]
    for text in texts:
        assert SECRET not in text
        assert "sk-fallback-secret" not in text


@pytest.mark.parametrize(
    ("header", "value"),
    [
        ("authorization", "Bearer {}"),
        ("x-api-key", "{}"),
        ("api-key", "{}"),
        ("x-goog-api-key", "{}"),
        ("x-amz-security-token", "{}"),
    ],
)
async def test_upstream_error_text_never_quotes_a_credential_header(
    up: FakeUpstream, header: str, value: str
) -> None:
    token = "tok-" + "s3cr3t" * 4
    up.fault(status=403, message=f"credential {token} is not allowed")
    http = HttpClient()
    try:
        with pytest.raises(UpstreamStatusError) as info:
            await http.request(
                "POST",
                up.url + "/v1/chat/completions",
                body=b"{}",
                headers={header: value.format(token)},
                timeouts=Timeouts(connect=5, first_byte=5, idle=5),
            )
    finally:
        await http.aclose()
    assert info.value.message == "credential [redacted] is not allowed"
    assert token.encode() not in info.value.body
