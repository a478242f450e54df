"""Reliability end to end: the OpenAI SDK -> the gateway -> fake upstreams with faults.

The SDK's own retries are off (`max_retries=0`) so every retry counted here is the
gateway's. Two fake upstreams stand for a primary and a fallback deployment.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from aicp.config import Settings
from aicp.testing import FakeUpstream, GatewayServer
from aicp.testing.upstream import Recorded
from tests.helpers import make_settings

SECRET = "sk-upstream-secret"
MESSAGES: list[Any] = [{"role": "user", "content": "hi"}]


def settings(
    up: FakeUpstream, up2: FakeUpstream, bare_url: str | None = None, **extra: Any
) -> Settings:
    """`main` runs on `up` and falls back to `backup` on `up2`; `bare` is at `bare_url`."""
    reliability = {"backoff_base_s": 0.01, "backoff_max_s": 0.05, **extra.pop("reliability", {})}
    data: dict[str, Any] = {
        "providers": {
            "up": {
                "type": "openai",
                "base_url": up.url + "/v1",
                "api_key": SECRET,
                "models": ["fake-model"],
            },
            "up2": {
                "type": "openai",
                "base_url": up2.url + "/v1",
                "api_key": "sk-fallback-secret",
                "models": ["fake-model-2"],
            },
        },
        "models": [
            {
                "name": "main",
                "deployments": [{"provider": "up", "model": "fake-model"}],
                "fallbacks": ["backup"],
            },
            {"name": "backup", "deployments": [{"provider": "up2", "model": "fake-model-2"}]},
        ],
        "reliability": reliability,
        **extra,
    }
    if bare_url is not None:
        data["providers"]["bare"] = {"type": "openai", "base_url": bare_url, "models": ["m"]}
    return make_settings(data)


def client(gw: GatewayServer, key: str = "unused", **kw: Any) -> openai.OpenAI:
    return openai.OpenAI(base_url=gw.url + "/v1", api_key=key, max_retries=0, timeout=10, **kw)


def chats(u: FakeUpstream) -> list[Recorded]:
    return [r for r in u.requests if r.path.endswith("/chat/completions")]


def chat(gw: GatewayServer, model: str = "main", **kw: Any) -> Any:
    return client(gw).chat.completions.create(model=model, messages=MESSAGES, **kw)


def sse_events(body: str) -> list[str]:
    return [e[len("data: ") :] for e in body.strip().split("\n\n") if e.startswith("data: ")]


def raw_stream(gw: GatewayServer, model: str = "main") -> tuple[int, str, float]:
    """POST a streamed chat with httpx; the status, the whole body, and how long it took."""
    started = time.monotonic()
    with httpx.stream(
        "POST",
        gw.url + "/v1/chat/completions",
        json={"model": model, "messages": MESSAGES, "stream": True},
        timeout=10,
    ) as resp:
        body = resp.read().decode()
    return resp.status_code, body, time.monotonic() - started


def health(gw: GatewayServer, key: str | None = None) -> dict[str, Any]:
    headers = {"authorization": f"Bearer {key}"} if key else {}
    resp = httpx.get(gw.url + "/v1/providers/health", headers=headers, timeout=5)
    assert resp.status_code == 200
    data: dict[str, Any] = resp.json()
    return data


# --- rate limits and Retry-After ----------------------------------------------------


def test_429_is_retried_no_sooner_than_retry_after(up: FakeUpstream, up2: FakeUpstream) -> None:
    up.fault(status=429, retry_after=1)
    with GatewayServer(settings(up, up2)) as gw:
        started = time.monotonic()
        resp = chat(gw)
        elapsed = time.monotonic() - started
    assert resp.choices[0].message.content == "Hello from the fake upstream"
    assert len(chats(up)) == 2 and not chats(up2)
    assert elapsed >= 1.0


def test_retry_after_ms_is_honoured(up: FakeUpstream, up2: FakeUpstream) -> None:
    up.fault(status=429, retry_after_ms=400)
    with GatewayServer(settings(up, up2)) as gw:
        started = time.monotonic()
        chat(gw)
        elapsed = time.monotonic() - started
    assert len(chats(up)) == 2
    assert elapsed >= 0.4


def test_retry_after_past_the_deadline_returns_the_429_at_once(
    up: FakeUpstream, up2: FakeUpstream
) -> None:
    up.fault(status=429, retry_after=30, message="slow down")
    with GatewayServer(settings(up, up2, reliability={"deadline_s": 5})) as gw:
        started = time.monotonic()
        with pytest.raises(openai.RateLimitError) as info:
            chat(gw)
        elapsed = time.monotonic() - started
    assert elapsed < 2
    assert info.value.status_code == 429
    assert info.value.response.headers["retry-after"] == "30"
    assert "slow down" in info.value.message
    assert len(chats(up)) == 1 and not chats(up2)


# --- retries and fallback -------------------------------------------------------------


def test_5xx_is_retried_max_retries_times_then_falls_back(
    up: FakeUpstream, up2: FakeUpstream
) -> None:
    up.fault(status=500, times=10)
    with GatewayServer(settings(up, up2, reliability={"max_retries": 2})) as gw:
        resp = chat(gw)
    assert resp.choices[0].message.content == "Hello from the fallback"
    assert len(chats(up)) == 3  # the first attempt and two retries
    assert [r.body["model"] for r in chats(up2)] == ["fake-model-2"]


def test_5xx_on_every_deployment_returns_the_last_error(
    up: FakeUpstream, up2: FakeUpstream
) -> None:
    up.fault(status=503, times=10)
    up2.fault(status=502, times=10, message="fallback is down too")
    s = settings(up, up2, reliability={"max_retries": 1})
    with GatewayServer(s) as gw, pytest.raises(openai.APIStatusError) as info:
        chat(gw)
    assert info.value.status_code == 502
    assert "fallback is down too" in info.value.message
    assert (len(chats(up)), len(chats(up2))) == (2, 2)


def test_a_400_is_passed_to_the_client_unretried(up: FakeUpstream, up2: FakeUpstream) -> None:
    up.fault(status=400, message="messages[0].content is too long")
    with GatewayServer(settings(up, up2)) as gw, pytest.raises(openai.BadRequestError) as info:
        chat(gw)
    assert info.value.message.endswith("messages[0].content is too long")
    assert len(chats(up)) == 1 and not chats(up2)


# --- circuit breaker --------------------------------------------------------------------


def test_a_5xx_storm_opens_the_breaker_and_a_good_probe_closes_it(
    up: FakeUpstream, up2: FakeUpstream
) -> None:
    breaker = {"min_requests": 3, "failure_rate": 0.5, "open_s": 1.0, "half_open_probes": 1}
    s = settings(up, up2, reliability={"max_retries": 0, "breaker": breaker})
    up.fault(status=500, times=3)
    with GatewayServer(s) as gw:
        for _ in range(3):  # each fails on `up` and is served by the fallback
            assert chat(gw).choices[0].message.content == "Hello from the fallback"
        view = health(gw)["deployments"]["up/fake-model"]
        assert view["state"] == "open" and view["trips"] == 1
        assert len(chats(up)) == 3
        # Open: requests go straight to the fallback, or get a 503 when there is none.
        assert chat(gw).choices[0].message.content == "Hello from the fallback"
        with pytest.raises(openai.APIStatusError) as info:
            chat(gw, model="up/fake-model")
        assert info.value.status_code == 503
        assert len(chats(up)) == 3
        time.sleep(1.2)
        # Half-open: one probe reaches `up`, succeeds, and closes the breaker.
        assert chat(gw).choices[0].message.content == "Hello from the fake upstream"
        assert len(chats(up)) == 4
        assert health(gw)["deployments"]["up/fake-model"]["state"] == "closed"


def test_a_failed_probe_keeps_the_breaker_open(up: FakeUpstream, up2: FakeUpstream) -> None:
    breaker = {"min_requests": 2, "open_s": 0.5, "half_open_probes": 1}
    s = settings(up, up2, reliability={"max_retries": 0, "breaker": breaker})
    up.fault(status=500, times=3)
    with GatewayServer(s) as gw:
        chat(gw)
        chat(gw)
        assert health(gw)["deployments"]["up/fake-model"]["state"] == "open"
        time.sleep(0.7)
        chat(gw)  # the probe fails, the fallback answers
        view = health(gw)["deployments"]["up/fake-model"]
        assert view["state"] == "open" and view["trips"] == 2
        chat(gw)
        assert len(chats(up)) == 3


# --- retry budget -----------------------------------------------------------------------------


def test_the_retry_budget_caps_retries_during_an_outage(
    up: FakeUpstream, up2: FakeUpstream
) -> None:
    n, max_retries = 8, 3
    reliability = {
        "max_retries": max_retries,
        "retry_budget_percent": 0,
        "retry_budget_min": 1,
        "breaker": {"min_requests": 1000},
    }
    # Fast failures, long backoffs: a retry spends nearly all its time waiting.
    up.fault(status=503, retry_after_ms=300, times=1000)

    async def burst(gw: GatewayServer) -> list[BaseException | Any]:
        c = openai.AsyncOpenAI(base_url=gw.url + "/v1", api_key="x", max_retries=0, timeout=10)

        async def one(i: int) -> Any:
            await asyncio.sleep(0.03 * i)  # staggered, all inside the first one's retries
            return await c.chat.completions.create(model="up/fake-model", messages=MESSAGES)

        return await asyncio.gather(*(one(i) for i in range(n)), return_exceptions=True)

    with GatewayServer(settings(up, up2, reliability=reliability)) as gw:
        results = asyncio.run(burst(gw))
        assert health(gw)["retry_budget"]["retries_in_flight"] == 0
    assert all(isinstance(r, openai.APIStatusError) and r.status_code == 503 for r in results)
    # Without a budget the upstream would see n * (1 + max_retries) = 32 requests.
    assert n <= len(chats(up)) <= n + max_retries


# --- timeouts ---------------------------------------------------------------------------------


def test_first_byte_timeout_is_a_504_in_openai_format(up: FakeUpstream, up2: FakeUpstream) -> None:
    up.fault(delay_s=1.0, times=10)
    s = settings(up, up2, reliability={"first_byte_timeout_s": 0.3, "max_retries": 1})
    with GatewayServer(s) as gw:
        started = time.monotonic()
        resp = httpx.post(
            gw.url + "/v1/chat/completions",
            json={"model": "up/fake-model", "messages": MESSAGES},
            timeout=10,
        )
        elapsed = time.monotonic() - started
        assert resp.status_code == 504
        assert resp.json()["error"]["type"] == "timeout_error"
        assert elapsed < 1.6  # two attempts of 0.3s, not two of the upstream's 1s
        assert len(chats(up)) == 2
        # With a fallback the client never sees the timeout.
        assert chat(gw).choices[0].message.content == "Hello from the fallback"
        stream = chat(gw, stream=True)
        text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
        assert text == "Hello from the fallback"


def test_an_idle_stream_ends_with_an_error_event_and_no_done(
    up: FakeUpstream, up2: FakeUpstream
) -> None:
    up.fault(stall_s=1.0)
    with GatewayServer(settings(up, up2, reliability={"idle_timeout_s": 0.3})) as gw:
        status, body, elapsed = raw_stream(gw)
    events = sse_events(body)
    assert status == 200
    assert "[DONE]" not in events
    assert json.loads(events[0])["choices"][0]["delta"]["role"] == "assistant"
    error = json.loads(events[-1])["error"]
    assert error["type"] == "timeout_error" and "idle" in error["message"]
    assert elapsed < 2  # not the 6s the stalled upstream would take
    assert not chats(up2)  # committed after the first chunk: no fallback


def test_a_stream_cut_mid_way_ends_with_an_error_event_and_no_fallback(
    up: FakeUpstream, up2: FakeUpstream
) -> None:
    up.fault(cut_after=2)
    with GatewayServer(settings(up, up2)) as gw:
        status, body, elapsed = raw_stream(gw)
    events = sse_events(body)
    assert status == 200
    assert "[DONE]" not in events
    assert "error" in json.loads(events[-1])
    assert all("choices" in json.loads(e) for e in events[:-1])
    assert elapsed < 3
    assert len(chats(up)) == 1 and not chats(up2)


def test_streams_that_die_mid_way_open_the_breaker(up: FakeUpstream, up2: FakeUpstream) -> None:
    # Each stream delivers its first chunks (so it succeeded as far as fallback goes)
    # and then dies: that is the deployment failing, and the breaker must hear it.
    breaker = {"min_requests": 3, "failure_rate": 0.5, "open_s": 30}
    up.fault(cut_after=2, times=3)
    with GatewayServer(settings(up, up2, reliability={"breaker": breaker})) as gw:
        for _ in range(3):
            status, body, _ = raw_stream(gw)
            assert status == 200 and "error" in json.loads(sse_events(body)[-1])
        view = health(gw)["deployments"]["up/fake-model"]
        assert view["state"] == "open" and view["window_failures"] == 0  # cleared on opening
        assert view["trips"] == 1
        # The next stream goes straight to the fallback.
        stream = chat(gw, stream=True)
        text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
        assert text == "Hello from the fallback"
        assert len(chats(up)) == 3


def test_completed_streams_count_as_successes(up: FakeUpstream, up2: FakeUpstream) -> None:
    with GatewayServer(settings(up, up2)) as gw:
        for _ in range(2):
            status, body, _ = raw_stream(gw)
            assert status == 200 and sse_events(body)[-1] == "[DONE]"
        view = health(gw)["deployments"]["up/fake-model"]
    assert view["state"] == "closed"
    assert view["window_requests"] == 2 and view["window_failures"] == 0


def test_every_breaker_open_is_a_503_with_retry_after(up: FakeUpstream, up2: FakeUpstream) -> None:
    breaker = {"min_requests": 1, "failure_rate": 0.5, "open_s": 20}
    up.fault(status=500)
    with GatewayServer(settings(up, up2, reliability={"max_retries": 0, "breaker": breaker})) as gw:
        with pytest.raises(openai.APIStatusError):
            chat(gw, model="up/fake-model")
        resp = httpx.post(
            gw.url + "/v1/chat/completions",
            json={"model": "up/fake-model", "messages": MESSAGES},
            timeout=5,
        )
    assert resp.status_code == 503
    assert 15 <= int(resp.headers["retry-after"]) <= 20
    assert "breaker" in resp.json()["error"]["message"]


def test_a_stream_cut_before_its_first_chunk_falls_back(
    up: FakeUpstream, up2: FakeUpstream
) -> None:
    up.fault(cut_after=0, times=10)
    with GatewayServer(settings(up, up2, reliability={"max_retries": 1})) as gw:
        stream = chat(gw, stream=True)
        text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert text == "Hello from the fallback"
    assert len(chats(up)) == 2 and len(chats(up2)) == 1


def test_the_request_deadline_is_a_504(up: FakeUpstream, up2: FakeUpstream) -> None:
    up.fault(delay_s=1.5, times=10)
    up2.fault(delay_s=1.5, times=10)
    with GatewayServer(settings(up, up2, reliability={"deadline_s": 0.5})) as gw:
        started = time.monotonic()
        with pytest.raises(openai.APIStatusError) as info:
            chat(gw)
        elapsed = time.monotonic() - started
    assert info.value.status_code == 504
    assert 0.4 < elapsed < 1.3
    assert not chats(up2)  # the deadline passed on the first deployment


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def test_connection_refused_is_retried_then_a_502(up: FakeUpstream, up2: FakeUpstream) -> None:
    url = f"http://127.0.0.1:{closed_port()}/v1"
    s = settings(up, up2, url, reliability={"max_retries": 2})
    with GatewayServer(s) as gw:
        with pytest.raises(openai.APIStatusError) as info:
            chat(gw, model="bare/m")
        view = health(gw)["deployments"]["bare/m"]
    assert info.value.status_code == 502
    assert "cannot reach the upstream" in info.value.message
    assert view["requests"] == 3 and view["failures"] == 3


@pytest.fixture
def blackhole() -> Iterator[int]:
    """A loopback port whose accept queue is full: connecting to it hangs."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(0)
    port: int = server.getsockname()[1]
    fillers = []
    for _ in range(4):
        c = socket.socket()
        c.setblocking(False)
        c.connect_ex(("127.0.0.1", port))
        fillers.append(c)
    time.sleep(0.05)
    yield port
    for c in fillers:
        c.close()
    server.close()


def test_connect_timeout_is_retried_then_a_504(
    up: FakeUpstream, up2: FakeUpstream, blackhole: int
) -> None:
    url = f"http://127.0.0.1:{blackhole}/v1"
    s = settings(up, up2, url, reliability={"max_retries": 1, "connect_timeout_s": 0.3})
    with GatewayServer(s) as gw:
        started = time.monotonic()
        with pytest.raises(openai.APIStatusError) as info:
            chat(gw, model="bare/m")
        elapsed = time.monotonic() - started
        view = health(gw)["deployments"]["bare/m"]
    assert info.value.status_code == 504
    assert "connect" in info.value.message
    assert view["requests"] == 2
    assert 0.5 < elapsed < 2
