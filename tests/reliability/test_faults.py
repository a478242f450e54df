"""Reliability end to end: the OpenAI SDK -> the gateway -> fake upstreams with faults.

The SDK's own retries are off (`max_retries=0`) so every retry counted here is the
gateway's. Two fake upstreams stand for a primary and a fallback deployment.
"""

# Over 500 lines on purpose for now: every test here shares the module's fixtures and
# request helpers; splitting means moving those to tests/helpers.py first (noted on the issue).

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
from aicp.errors import UpstreamStatusError
from aicp.providers.base import Timeouts
from aicp.providers.http import HttpClient
from aicp.testing import FakeUpstream, GatewayServer
from aicp.testing.upstream import Recorded
from tests.helpers import make_settings

SECRET = "sk-upstream-secret"
MESSAGES: list[Any] = [{"role": "user", "content": "hi"}]


@pytest.fixture
def up() -> Iterator[FakeUpstream]:
    with FakeUpstream() as u:
        yield u


@pytest.fixture
def up2() -> Iterator[FakeUpstream]:
    with FakeUpstream(reply="Hello from the fallback") as u:
        yield u


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
