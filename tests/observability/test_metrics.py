"""GET /metrics after real requests through the gateway, and the metrics' own rules."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import yaml
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from aicp.observability.events import Event
from aicp.observability.metrics import OTHER_AFTER, Metrics, Readings
from aicp.observability.series import Collector, CounterFamily, HistogramFamily
from aicp.testing import FakeUpstream, GatewayServer
from aicp.testing.server import free_port
from tests.helpers import openai_settings
from tests.observability.promutil import scrape

MASTER = "sk-master-metrics-test"
HI = [{"role": "user", "content": "hi"}]
ROUTE = "up/fake-model"


def client(gw: GatewayServer, key: str = MASTER) -> openai.OpenAI:
    return openai.OpenAI(base_url=gw.url + "/v1", api_key=key, max_retries=0)


@pytest.fixture
def gw(upstream: FakeUpstream) -> Iterator[GatewayServer]:
    settings = openai_settings(
        upstream,
        server={"master_key": MASTER},
        reliability={
            "max_retries": 0,
            "breaker": {"min_requests": 4, "failure_rate": 0.5, "open_s": 60},
        },
    )
    with GatewayServer(settings) as server:
        yield server


def test_requests_durations_ttft_and_tokens_are_counted(gw: GatewayServer) -> None:
    c = client(gw)
    usage = [c.chat.completions.create(model=ROUTE, messages=HI).usage for _ in range(3)]
    list(c.chat.completions.create(model=ROUTE, messages=HI, stream=True))
    m = scrape(gw)
    labels = {"route": ROUTE, "provider": "up", "deployment": ROUTE, "code": "200"}
    assert m.value("aicp_requests_total", protocol="openai", **labels) == 4
    assert m.value("aicp_request_duration_seconds_count", route=ROUTE, provider="up") == 4
    assert m.value("aicp_request_duration_seconds_bucket", route=ROUTE, le="+Inf") == 4
    assert 0 < m.value("aicp_request_duration_seconds_sum", route=ROUTE) < 10
    # Only the stream has a first token.
    assert m.value("aicp_time_to_first_token_seconds_count", route=ROUTE) == 1
    prompt = sum(u.prompt_tokens for u in usage if u is not None)
    assert m.value("aicp_tokens_total", route=ROUTE, type="input") > prompt  # + the stream's
    assert m.value("aicp_tokens_total", route=ROUTE, type="output") > 0
    # Nothing is in flight once the responses are in.
    assert m.value("aicp_active_streams") == 0
    assert m.value("aicp_requests_in_flight") == 0
    # Durable receipts: a response arrives only after its receipt left the queue.
    assert m.value("aicp_receipt_queue_depth") == 0
    assert m.series("aicp_info") == [{"version": "0.1.0"}]


def test_an_open_stream_is_active_and_in_flight_until_it_ends(
    gw: GatewayServer, upstream: FakeUpstream
) -> None:
    upstream.fault(stall_s=0.3, path="/chat/completions")
    stream = client(gw).chat.completions.create(model=ROUTE, messages=HI, stream=True)
    chunks = iter(stream)
    next(chunks)  # the stream has started: its first chunk is here, the rest stalls
    during = scrape(gw)
    rest = list(chunks)
    after = scrape(gw)
    assert rest
    assert during.value("aicp_active_streams") == 1
    assert during.value("aicp_requests_in_flight") == 1
    assert after.value("aicp_active_streams") == 0
    assert after.value("aicp_requests_in_flight") == 0


def test_labels_carry_no_key_or_request_id(gw: GatewayServer) -> None:
    made = httpx.post(
        gw.url + "/admin/keys", headers={"authorization": f"Bearer {MASTER}"}, json={"name": "m"}
    ).json()
    c = client(gw, made["key"])
    reply = c.chat.completions.with_raw_response.create(model=ROUTE, messages=HI)
    text = scrape(gw).text
    for value in (made["key"], made["id"], made["display"], reply.headers["x-request-id"]):
        assert value not in text


def test_failures_are_counted_by_status_code(gw: GatewayServer, upstream: FakeUpstream) -> None:
    c = client(gw)
    with pytest.raises(openai.NotFoundError):
        c.chat.completions.create(model="no-such-model", messages=HI)
    upstream.fault(status=400, message="bad request upstream")
    with pytest.raises(openai.BadRequestError):
        c.chat.completions.create(model=ROUTE, messages=HI)
    m = scrape(gw)
    # A name that resolves to no route has no route label: clients cannot mint series.
    assert m.value("aicp_requests_total", route="", code="404") == 1
    assert m.value("aicp_requests_total", route=ROUTE, code="400") == 1
    assert not [s for s in m.series("aicp_requests_total") if s["route"] == "no-such-model"]


def test_breaker_gauge_opens_under_an_upstream_5xx_storm(
    gw: GatewayServer, upstream: FakeUpstream
) -> None:
    c = client(gw)
    c.chat.completions.create(model=ROUTE, messages=HI)
    before = scrape(gw)
    assert before.value("aicp_breaker_state", deployment=ROUTE, state="closed") == 1
    assert before.value("aicp_breaker_state", deployment=ROUTE, state="open") == 0
    upstream.fault(status=503, times=10)
    for _ in range(6):
        with pytest.raises(openai.APIStatusError):
            c.chat.completions.create(model=ROUTE, messages=HI)
    after = scrape(gw)
    assert after.value("aicp_breaker_state", deployment=ROUTE, state="open") == 1
    assert after.value("aicp_breaker_state", deployment=ROUTE, state="closed") == 0
    assert after.value("aicp_breaker_opened_total", deployment=ROUTE) == 1
    failed = after.value("aicp_requests_total", route=ROUTE, code="503")
    refused = after.value("aicp_requests_total", route="", code="503")
    assert failed + refused + after.value("aicp_requests_total", route=ROUTE, code="502") >= 6


def test_retries_and_fallbacks_are_counted(upstream: FakeUpstream) -> None:
    settings = openai_settings(
        upstream,
        reliability={"max_retries": 1},
        models=[
            {
                "name": "chain",
                "deployments": [{"provider": "up", "model": "fake-model"}],
                "fallbacks": ["up/fake-model-2"],
            }
        ],
    )
    with GatewayServer(settings) as gw:
        upstream.fault(status=500, times=2, path="/chat/completions")
        client(gw).chat.completions.create(model="chain", messages=HI)
        m = scrape(gw)
    assert m.value("aicp_retries_total", route="chain") == 1
    assert m.value("aicp_fallbacks_total", route="chain") == 1
    assert m.value("aicp_requests_total", route="chain", deployment=ROUTE + "-2") == 1


def test_rate_limit_and_budget_rejections_are_counted(upstream: FakeUpstream) -> None:
    priced = {"provider": "up", "model": "fake-model", "input_cost_per_mtok": 100_000}
    settings = openai_settings(
        upstream,
        server={"master_key": MASTER},
        models=[{"name": "priced", "deployments": [{**priced, "output_cost_per_mtok": 100_000}]}],
    )
    auth = {"authorization": f"Bearer {MASTER}"}
    with GatewayServer(settings) as gw:
        slow = httpx.post(gw.url + "/admin/keys", headers=auth, json={"name": "s", "rpm": 1})
        poor = httpx.post(gw.url + "/admin/keys", headers=auth, json={"name": "p", "budget_usd": 1})
        c = client(gw, slow.json()["key"])
        c.chat.completions.create(model=ROUTE, messages=HI)
        with pytest.raises(openai.RateLimitError):
            c.chat.completions.create(model=ROUTE, messages=HI)
        refused = 0
        for _ in range(3):
            try:
                client(gw, poor.json()["key"]).chat.completions.create(model="priced", messages=HI)
            except openai.APIStatusError as exc:
                assert "budget" in exc.message
                refused += 1
        client(gw).chat.completions.create(model="priced", messages=HI)  # the master: no budget
        m = scrape(gw)
    assert refused >= 1
    assert m.value("aicp_ratelimit_rejections_total", scope="key", limit="rpm") == 1
    assert m.value("aicp_budget_rejections_total", scope="key") == refused
    assert m.value("aicp_cost_usd_total", route="priced") > 0


def test_metrics_can_be_turned_off(upstream: FakeUpstream) -> None:
    with GatewayServer(openai_settings(upstream, observability={"metrics": False})) as gw:
        assert httpx.get(gw.url + "/metrics").status_code == 404


# --- the metrics' own rules -------------------------------------------------------------


def _completed(route: str, deployment: str) -> Event:
    data: dict[str, Any] = {
        "route": route,
        "provider": "up",
        "deployment": deployment,
        "protocol": "openai",
        "status": 200,
        "latency_ms": 5.0,
        "ttft_ms": None,
        "prompt_tokens": 3,
        "completion_tokens": 2,
        "cost_usd": 0.0,
    }
    return Event("llm.request.completed", 0.0, data)


def test_undeclared_names_are_bounded_and_declared_ones_always_kept() -> None:
    metrics = Metrics(Readings(), declared_routes=["chat"], declared_deployments=["up/a"])
    for i in range(OTHER_AFTER + 50):
        metrics(_completed(f"up/m{i}", f"up/m{i}"))
    metrics(_completed("chat", "up/a"))
    text = metrics.exposition().decode()
    routes = {ls.split('route="')[1].split('"')[0] for ls in text.splitlines() if "route=" in ls}
    assert "chat" in routes and "other" in routes
    assert len(routes) == OTHER_AFTER + 2  # the first 100 undeclared, "other", "chat"
    assert 'deployment="up/a"' in text


def test_unknown_events_and_other_types_are_ignored() -> None:
    metrics = Metrics(Readings())
    metrics(Event("route.decided", 0.0, {"model": "x"}))
    metrics(Event("guardrail.triggered", 0.0, {"guardrail": "pii", "action": "redact"}))
    text = metrics.exposition().decode()
    assert 'aicp_guardrail_triggers_total{action="redact",guardrail="pii"} 1.0' in text
    assert "aicp_requests_total{" not in text


def test_lock_free_families_render_as_prometheus_client_does() -> None:
    ours, theirs = CollectorRegistry(), CollectorRegistry()
    buckets = (0.1, 1.0, 10.0)
    counter, histogram = (
        CounterFamily("x_total", "X.", ("a",)),
        HistogramFamily("y_seconds", "Y.", ("a",), buckets),
    )
    ours.register(Collector([counter, histogram]))
    c = Counter("x_total", "X.", ("a",), registry=theirs)
    h = Histogram("y_seconds", "Y.", ("a",), buckets=buckets, registry=theirs)
    for value in (0.05, 0.1, 0.5, 1.0, 3.0, 99.0):
        counter.labels("v").inc(value)
        c.labels("v").inc(value)
        histogram.labels("v").observe(value)
        h.labels("v").observe(value)

    def samples(registry: CollectorRegistry) -> list[str]:
        lines = generate_latest(registry).decode().splitlines()
        return sorted(line for line in lines if not line.startswith("#") and "_created" not in line)

    assert samples(ours) == samples(theirs)


# --- several workers ------------------------------------------------------------------


def test_workers_share_their_counts_through_the_multiprocess_directory(
    upstream: FakeUpstream, tmp_path: Path
) -> None:
    port = free_port()
    config = tmp_path / "aicp.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "server": {"port": port, "workers": 2},
                "storage": {"data_dir": str(tmp_path / "data")},
                "providers": {
                    "up": {"type": "openai", "base_url": upstream.url + "/v1", "api_key": "sk-x"}
                },
            }
        )
    )
    # Nothing of this environment (provider keys would add providers): a clean one.
    env = {k: os.environ[k] for k in ("PATH", "HOME", "LANG") if k in os.environ}
    env["AICP_MASTER_KEY"] = MASTER
    proc = subprocess.Popen(
        [sys.executable, "-m", "aicp.cli.main", "serve", "--config", str(config)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(url, proc)
        gw_client = openai.OpenAI(base_url=url + "/v1", api_key=MASTER, max_retries=0)
        for _ in range(20):
            gw_client.chat.completions.create(model=ROUTE, messages=HI)
        # Any worker may answer a scrape: every answer counts all twenty requests.
        for _ in range(6):
            m = scrape(url)
            assert m.value("aicp_requests_total", route=ROUTE, code="200") == 20
            assert m.value("aicp_request_duration_seconds_count", route=ROUTE) == 20
        assert (tmp_path / "data" / "prometheus").is_dir()
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(30)


def _wait_ready(url: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert proc.poll() is None, "aicp serve exited"
        try:
            if httpx.get(url + "/ready", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError("aicp serve did not become ready")
