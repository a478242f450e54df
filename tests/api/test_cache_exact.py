"""The exact answer cache end to end: the official SDKs ask twice and the upstream
hears once; hits are receipts of their own, streamed when asked for a stream, and
never cross a sensitivity level, a team or a policy; admins read stats and
invalidate; a second gateway process on the same database sees the entries."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import anthropic
import openai
import pytest

from aicp.testing import FakeUpstream, GatewayServer
from tests.helpers import admin_client, make_key, make_settings

MASTER = "sk-master-cache-test"
QUESTION = [{"role": "user", "content": "What is the capital of France?"}]


def _settings(up: FakeUpstream, data_dir: str | None = None, **cache: Any) -> Any:
    data: dict[str, Any] = {
        "server": {"master_key": MASTER},
        "providers": {"up": {"type": "openai", "base_url": up.url + "/v1", "api_key": "sk-up"}},
        "models": [
            {
                "name": "assistant",
                "deployments": [
                    {
                        "provider": "up",
                        "model": "fake-model",
                        "input_cost_per_mtok": 1.0,
                        "output_cost_per_mtok": 2.0,
                    }
                ],
            }
        ],
        "cache": {"exact": {"enabled": True}, "sync_s": 0.2, **cache},
    }
    if data_dir is not None:
        data["storage"] = {"data_dir": data_dir}
    return make_settings(data)


@pytest.fixture
def up() -> Iterator[FakeUpstream]:
    with FakeUpstream(reply="Paris is the capital of France.") as server:
        yield server


@pytest.fixture
def gw(up: FakeUpstream) -> Iterator[GatewayServer]:
    with GatewayServer(_settings(up)) as server:
        yield server


def _calls(up: FakeUpstream) -> int:
    return sum(1 for r in up.requests if r.method == "POST")


def _oai(gw: GatewayServer, key: str = MASTER) -> openai.OpenAI:
    return openai.OpenAI(base_url=gw.url + "/v1", api_key=key, max_retries=0)


def _ask(gw: GatewayServer, key: str = MASTER, **kw: Any) -> Any:
    return _oai(gw, key).chat.completions.with_raw_response.create(
        model="assistant", messages=QUESTION, **kw
    )


def _receipt(gw: GatewayServer, raw: Any) -> dict[str, Any]:
    with admin_client(gw.url, MASTER) as admin:
        resp = admin.get(f"/v1/receipts/{raw.headers['x-aicp-receipt-id']}")
    assert resp.status_code == 200, resp.text
    receipt: dict[str, Any] = resp.json()["receipt"]
    return receipt


def test_the_second_ask_is_answered_from_the_cache(gw: GatewayServer, up: FakeUpstream) -> None:
    first = _ask(gw)
    second = _ask(gw)
    assert _calls(up) == 1
    a, b = first.parse(), second.parse()
    assert b.choices[0].message.content == a.choices[0].message.content
    assert b.usage is not None and b.usage.total_tokens == a.usage.total_tokens
    original, hit = _receipt(gw, first), _receipt(gw, second)
    assert original["cache"] == [{"kind": "exact", "result": "miss"}]
    (record,) = hit["cache"]
    assert record["result"] == "hit" and record["original_receipt"] == original["id"]
    assert record["tokens_saved"] == a.usage.total_tokens and record["cost_saved_micros"] > 0
    assert hit["cost_micros"] == 0 and hit["attempts"] == [] and hit["usage"]["prompt_tokens"] == 0


def test_a_cached_answer_streams_in_both_protocols(gw: GatewayServer, up: FakeUpstream) -> None:
    answer = _ask(gw).parse().choices[0].message.content
    stream = _oai(gw).chat.completions.create(
        model="assistant", messages=QUESTION, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == answer
    assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens > 0
    client = anthropic.Anthropic(base_url=gw.url, api_key=MASTER, max_retries=0)
    ask = {"model": "assistant", "max_tokens": 100, "messages": QUESTION}
    message = client.messages.create(**ask)  # type: ignore[call-overload]
    with client.messages.stream(**ask) as streamed:  # type: ignore[arg-type]
        text = "".join(streamed.text_stream)
    assert text == message.content[0].text  # type: ignore[union-attr]
    assert _calls(up) == 2  # one per protocol: an Anthropic request is another request


def test_clients_may_skip_the_cache(gw: GatewayServer, up: FakeUpstream) -> None:
    _ask(gw)
    _ask(gw, extra_headers={"x-aicp-cache": "off"})
    _ask(gw, extra_headers={"cache-control": "no-cache"})
    assert _calls(up) == 3
    _ask(gw, extra_headers={"cache-control": "no-store"}, temperature=0.3)
    _ask(gw, temperature=0.3)  # the no-store answer was not kept
    assert _calls(up) == 5
    _ask(gw, temperature=0.3)
    assert _calls(up) == 5


def test_a_cached_answer_never_crosses_sensitivity_or_teams(
    gw: GatewayServer, up: FakeUpstream
) -> None:
    with admin_client(gw.url, MASTER) as admin:
        team_a = admin.post("/admin/teams", json={"name": "a"}).json()["id"]
        team_b = admin.post("/admin/teams", json={"name": "b"}).json()["id"]
        a1 = make_key(admin, team_id=team_a)["key"]
        a2 = make_key(admin, team_id=team_a)["key"]
        b1 = make_key(admin, team_id=team_b)["key"]
    _ask(gw, a1)
    _ask(gw, a2)  # same team: shared
    assert _calls(up) == 1
    _ask(gw, b1)  # another team (isolation: team, the default)
    assert _calls(up) == 2
    _ask(gw, a1, extra_headers={"x-aicp-sensitivity": "confidential"})
    assert _calls(up) == 3


def test_stats_and_invalidation(gw: GatewayServer, up: FakeUpstream) -> None:
    _ask(gw)
    _ask(gw)
    with admin_client(gw.url, MASTER) as admin:
        stats = admin.get("/admin/cache/stats").json()
        assert (stats["hits"], stats["misses"]) == (1, 1) and stats["entries"]["exact"] == 1
        assert stats["models"]["assistant"]["tokens_saved"] > 0
        assert admin.delete("/admin/cache").status_code == 422  # no filter named
        assert admin.delete("/admin/cache", params={"model": "assistant"}).json() == {"deleted": 1}
        _ask(gw)
        assert _calls(up) == 2
        key = make_key(admin)["key"]
        assert (
            httpx_status(gw, key, "/admin/cache/stats") == 403
        )  # only admins read the cache's stats


def httpx_status(gw: GatewayServer, key: str, path: str) -> int:
    with admin_client(gw.url, key) as client:
        return client.get(path).status_code


def test_a_second_gateway_on_the_same_database_sees_the_entries(
    up: FakeUpstream, tmp_path: Any
) -> None:
    with (
        GatewayServer(_settings(up, str(tmp_path))) as one,
        GatewayServer(_settings(up, str(tmp_path))) as two,
    ):
        _ask(one)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            receipt = _receipt(two, _ask(two))
            if receipt["cache"][0]["result"] == "hit":
                break
            time.sleep(0.3)
        assert receipt["cache"][0]["result"] == "hit"


def test_a_streamed_answer_is_kept_too(gw: GatewayServer, up: FakeUpstream) -> None:
    ask = {"model": "assistant", "messages": QUESTION, "stream": True, "temperature": 0.1}
    text = "".join(
        c.choices[0].delta.content or ""
        for c in _oai(gw).chat.completions.create(**ask)
        if c.choices
    )
    assert text == up.reply
    again = "".join(
        c.choices[0].delta.content or ""
        for c in _oai(gw).chat.completions.create(**ask)
        if c.choices
    )
    whole = _oai(gw).chat.completions.create(**{**ask, "stream": False})
    assert again == text and whole.choices[0].message.content == text
    assert _calls(up) == 1
    client = anthropic.Anthropic(base_url=gw.url, api_key=MASTER, max_retries=0)
    messages = {"model": "assistant", "max_tokens": 64, "messages": QUESTION}
    with client.messages.stream(**messages) as streamed:  # type: ignore[arg-type]
        first = "".join(streamed.text_stream)
    second = client.messages.create(**messages)  # type: ignore[call-overload]
    assert second.content[0].text == first == up.reply
    assert _calls(up) == 2


def test_responses_api_answers_are_cached_whole_and_streamed(
    gw: GatewayServer, up: FakeUpstream
) -> None:
    client = _oai(gw)
    first = client.responses.create(model="assistant", input="What is the capital of France?")
    second = client.responses.create(model="assistant", input="What is the capital of France?")
    assert second.output_text == first.output_text == up.reply
    assert _calls(up) == 1
    with client.responses.stream(model="assistant", input="Name a French city.") as stream:
        streamed = "".join(e.delta for e in stream if e.type == "response.output_text.delta")
    again = client.responses.create(model="assistant", input="Name a French city.", stream=True)
    text = "".join(e.delta for e in again if e.type == "response.output_text.delta")
    assert text == streamed == up.reply
    assert _calls(up) == 2
