"""Rate limits end to end: the official SDKs -> the gateway (in process and on Redis).

Deployment limits come from the configuration; key limits from a key made with
the admin API. User and team limits are covered at the stage level
(tests/accounting/test_ratelimit_stages.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import anthropic
import httpx
import openai
import pytest

from aicp.testing import FakeUpstream, GatewayServer
from tests.backends import Counters
from tests.helpers import openai_settings

MASTER = "sk-master-for-tests"
HI = [{"role": "user", "content": "hi"}]


def limited(rpm: int | None = None, tpm: int | None = None) -> dict[str, Any]:
    dep: dict[str, Any] = {"provider": "up", "model": "fake-model"}
    if rpm:
        dep["rpm"] = rpm
    if tpm:
        dep["tpm"] = tpm
    return {"name": "limited", "deployments": [dep]}


@pytest.fixture
def limits() -> dict[str, int]:
    return {"rpm": 2, "tpm": 60}


@pytest.fixture
def gateway(
    upstream: FakeUpstream, counters: Counters, limits: dict[str, int]
) -> Iterator[GatewayServer]:
    storage = {"redis_url": counters.url} if counters.url else {}
    settings = openai_settings(
        upstream,
        models=[limited(**limits)],
        server={"master_key": MASTER},
        storage=storage,
    )
    with GatewayServer(settings) as gw:
        yield gw


@pytest.fixture
def client(gateway: GatewayServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway.url + "/v1", api_key=MASTER, max_retries=0)


def ratelimit_headers(headers: httpx.Headers) -> dict[str, str]:
    return {k: v for k, v in headers.items() if k.startswith("x-ratelimit-")}


def test_a_reply_carries_the_tightest_limits(client: openai.OpenAI) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model="limited", messages=HI, max_tokens=5
    )
    assert raw.parse().choices[0].message.content
    h = ratelimit_headers(raw.headers)
    assert h["x-ratelimit-limit-requests"] == "2"
    assert h["x-ratelimit-remaining-requests"] == "1"
    assert h["x-ratelimit-reset-requests"] == "30s"
    assert h["x-ratelimit-limit-tokens"] == "60"
    assert 40 < int(h["x-ratelimit-remaining-tokens"]) < 60


def test_tokens_are_corrected_to_the_actual_usage(client: openai.OpenAI) -> None:
    # max_tokens 30 is reserved; the fake upstream reports 18 tokens used.
    first = client.chat.completions.with_raw_response.create(
        model="limited", messages=HI, max_tokens=30
    )
    estimate = 60 - int(first.headers["x-ratelimit-remaining-tokens"])
    assert estimate > 30
    second = client.chat.completions.with_raw_response.create(
        model="limited", messages=HI, max_tokens=1
    )
    left = int(second.headers["x-ratelimit-remaining-tokens"])
    # 60 - 18 (used) - (estimate - 29) (this one's), plus up to a token or two drained since.
    expected = 60 - 18 - (estimate - 29)
    assert expected <= left <= expected + 2


def test_a_stream_carries_the_headers(client: openai.OpenAI) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model="limited", messages=HI, stream=True
    )
    assert raw.headers["x-ratelimit-remaining-requests"] == "1"
    assert raw.headers["x-ratelimit-limit-tokens"] == "60"
    assert "".join(c.choices[0].delta.content or "" for c in raw.parse() if c.choices)


def test_an_upstream_error_carries_the_headers(
    client: openai.OpenAI, upstream: FakeUpstream
) -> None:
    upstream.fault(status=400, message="bad thing")
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="limited", messages=HI)
    assert info.value.response.headers["x-ratelimit-remaining-requests"] == "1"
    assert info.value.response.headers["x-ratelimit-limit-requests"] == "2"


def test_over_the_limit_is_a_429_in_openai_format(client: openai.OpenAI) -> None:
    for _ in range(2):
        client.chat.completions.create(model="limited", messages=HI, max_tokens=1)
    with pytest.raises(openai.RateLimitError) as info:
        client.chat.completions.create(model="limited", messages=HI, max_tokens=1)
    err = info.value
    assert err.status_code == 429
    assert err.code == "rate_limit_exceeded"
    assert isinstance(err.body, dict) and err.body["type"] == "rate_limit_error"
    assert "deployment up/fake-model of model 'limited'" in err.message
    assert "(RPM): limit 2" in err.message
    headers = err.response.headers
    assert 1 <= int(headers["retry-after"]) <= 30
    assert headers["x-ratelimit-remaining-requests"] == "0"


def test_over_the_limit_is_a_429_in_anthropic_format(gateway: GatewayServer) -> None:
    client = anthropic.Anthropic(base_url=gateway.url, api_key=MASTER, max_retries=0)
    for _ in range(2):
        raw = client.messages.with_raw_response.create(
            model="limited", max_tokens=5, messages=[{"role": "user", "content": "hi"}]
        )
        assert raw.headers["x-ratelimit-limit-requests"] == "2"
    with pytest.raises(anthropic.RateLimitError) as info:
        client.messages.create(
            model="limited", max_tokens=5, messages=[{"role": "user", "content": "hi"}]
        )
    err = info.value
    assert err.status_code == 429
    assert isinstance(err.body, dict)
    assert err.body["type"] == "error" and err.body["error"]["type"] == "rate_limit_error"
    assert "Rate limit reached" in err.body["error"]["message"]
    assert int(err.response.headers["retry-after"]) >= 1


@pytest.mark.parametrize("limits", [{}])
def test_no_limit_means_no_headers(client: openai.OpenAI) -> None:
    raw = client.chat.completions.with_raw_response.create(model="limited", messages=HI)
    assert ratelimit_headers(raw.headers) == {}


@pytest.mark.parametrize("limits", [{}])  # no deployment limits: only the key's
def test_a_keys_own_rpm_is_enforced(gateway: GatewayServer) -> None:
    made = httpx.post(
        gateway.url + "/admin/keys",
        headers={"authorization": f"Bearer {MASTER}"},
        json={"name": "slow", "rpm": 1, "tpm": 100_000},
    )
    assert made.status_code in (200, 201), made.text
    client = openai.OpenAI(base_url=gateway.url + "/v1", api_key=made.json()["key"], max_retries=0)
    raw = client.chat.completions.with_raw_response.create(model="up/fake-model", messages=HI)
    assert raw.headers["x-ratelimit-limit-requests"] == "1"
    assert raw.headers["x-ratelimit-limit-tokens"] == "100000"
    with pytest.raises(openai.RateLimitError) as info:
        client.chat.completions.create(model="up/fake-model", messages=HI)
    assert "Rate limit reached for key sk-aicp-" in info.value.message
    assert info.value.response.headers["retry-after"] == "60"
