"""/v1/messages errors end to end: bad bodies, unknown models, upstream failures and cut streams,
in the client's own format (the fixtures are test_messages_endpoint's)."""

from __future__ import annotations

import json
from typing import Any

import anthropic
import httpx
import openai
import pytest

from aicp.testing import FakeUpstream, GatewayServer
from tests.api import test_messages_endpoint as endpoint
from tests.api.test_messages_endpoint import CLAUDE, _user

#: The endpoint module's fixtures, used here by name.
gw, claude, oai = endpoint.gw, endpoint.claude, endpoint.oai

# --- (e) errors -------------------------------------------------------------------


def _anthropic_error(resp: httpx.Response) -> dict[str, Any]:
    body = resp.json()
    assert body["type"] == "error"
    error: dict[str, Any] = body["error"]
    return error


def test_missing_max_tokens_is_a_400(gw: GatewayServer, upstream: FakeUpstream) -> None:
    resp = httpx.post(
        gw.url + "/v1/messages", json={"model": CLAUDE, "messages": _user("hi")}, timeout=10
    )
    assert resp.status_code == 400
    error = _anthropic_error(resp)
    assert error["type"] == "invalid_request_error" and "max_tokens" in error["message"]
    assert upstream.requests == []


def test_malformed_json_is_a_400(gw: GatewayServer) -> None:
    resp = httpx.post(
        gw.url + "/v1/messages",
        content=b'{"model": "x", "max_tokens": ',
        headers={"content-type": "application/json"},
        timeout=10,
    )
    assert resp.status_code == 400
    assert _anthropic_error(resp)["type"] == "invalid_request_error"


def test_unknown_model_is_a_404(claude: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.NotFoundError) as info:
        claude.messages.create(model="no-such-model", max_tokens=10, messages=_user("hi"))
    assert info.value.status_code == 404
    assert isinstance(info.value.body, dict)
    assert info.value.body["error"]["type"] == "not_found_error"


def test_upstream_overload_reaches_the_client_after_retries(
    claude: anthropic.Anthropic, upstream: FakeUpstream
) -> None:
    upstream.fault(status=529, times=10, message="Overloaded")
    with pytest.raises(anthropic.APIStatusError) as info:
        claude.messages.create(model=CLAUDE, max_tokens=10, messages=_user("hi"))
    assert info.value.status_code == 529
    assert isinstance(info.value.body, dict)
    assert info.value.body["error"] == {"type": "overloaded_error", "message": "Overloaded"}
    assert len(upstream.requests) == 3  # the first try and two retries


def test_cut_stream_ends_with_an_error_event(gw: GatewayServer, upstream: FakeUpstream) -> None:
    upstream.fault(cut_after=2)
    body = {"model": CLAUDE, "max_tokens": 64, "stream": True, "messages": _user("hi")}
    resp = httpx.post(gw.url + "/v1/messages", json=body, timeout=10)
    assert resp.status_code == 200
    assert resp.text.startswith("event: message_start")
    tail = resp.text.rstrip("\n").split("\n\n")[-1]
    name, data = tail.split("\n", 1)
    assert name == "event: error"
    assert json.loads(data.removeprefix("data: "))["type"] == "error"
    assert "message_stop" not in resp.text


def test_cut_stream_raises_in_the_sdk(claude: anthropic.Anthropic, upstream: FakeUpstream) -> None:
    upstream.fault(cut_after=3)
    with (
        pytest.raises(anthropic.APIStatusError),
        claude.messages.stream(model=CLAUDE, max_tokens=64, messages=_user("hi")) as stream,
    ):
        stream.get_final_message()


def test_cut_translated_stream_ends_with_an_error_for_openai(
    oai: openai.OpenAI, upstream: FakeUpstream
) -> None:
    upstream.fault(cut_after=3)
    with pytest.raises(openai.APIError):
        list(
            oai.chat.completions.create(
                model=CLAUDE, messages=[{"role": "user", "content": "hi"}], stream=True
            )
        )
