"""Traces: a span per request, per stage and per upstream attempt; W3C context upstream."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from types import SimpleNamespace
from typing import Any

import openai
import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF
from opentelemetry.trace import SpanKind, StatusCode

from aicp.observability.tracing import Tracing, create_tracing
from aicp.plane.exchange import Exchange
from aicp.testing import FakeUpstream, GatewayServer
from tests.helpers import make_settings, openai_settings

HI = [{"role": "user", "content": "hi"}]
CLIENT_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CLIENT_SPAN = "00f067aa0ba902b7"
TRACEPARENT = f"00-{CLIENT_TRACE}-{CLIENT_SPAN}-01"


@pytest.fixture
def traced(upstream: FakeUpstream) -> Iterator[tuple[GatewayServer, InMemorySpanExporter]]:
    gw = GatewayServer(openai_settings(upstream, reliability={"max_retries": 1}))
    exporter = InMemorySpanExporter()
    gw.app.export_spans_to(exporter)
    with gw:
        yield gw, exporter


def chat(gw: GatewayServer, **kwargs: Any) -> Any:
    c = openai.OpenAI(base_url=gw.url + "/v1", api_key="sk-x", max_retries=0)
    return c.chat.completions.create(model="up/fake-model", messages=HI, **kwargs)


def by_kind(spans: tuple[ReadableSpan, ...], kind: SpanKind) -> list[ReadableSpan]:
    return [s for s in spans if s.kind == kind]


#: The stages that decide something with these settings, in path order: each gets a
#: span (compress, switched off here, is a placeholder and gets none).
TRACED_STAGES = [
    "authenticate",
    "started",
    "classify",
    "guard_input",
    "policy",
    "recall",
    "route",
    "limits",
    "budget",
    "execute",
    "guard_output",
    "settle",
    "meter",
    "record",
    "learn",
]


def traceparents(upstream: FakeUpstream) -> list[str]:
    return [r.headers["traceparent"] for r in upstream.requests if r.path.endswith("/completions")]


def test_a_request_is_a_server_span_with_a_span_per_stage_and_attempt(
    traced: tuple[GatewayServer, InMemorySpanExporter], upstream: FakeUpstream
) -> None:
    gw, exporter = traced
    reply = chat(gw, extra_headers={"traceparent": TRACEPARENT}, max_tokens=50, temperature=0.2)
    spans = exporter.get_finished_spans()
    [root] = by_kind(spans, SpanKind.SERVER)
    [attempt] = by_kind(spans, SpanKind.CLIENT)
    stages = [s for s in spans if s.kind == SpanKind.INTERNAL]
    # The client's trace goes on: its span is the request span's parent.
    assert format(root.context.trace_id, "032x") == CLIENT_TRACE
    assert root.parent is not None and format(root.parent.span_id, "016x") == CLIENT_SPAN
    assert {s.context.trace_id for s in spans} == {root.context.trace_id}
    assert [s.name for s in stages] == TRACED_STAGES
    assert all(s.parent is not None and s.parent.span_id == root.context.span_id for s in stages)
    [execute] = [s for s in stages if s.name == "execute"]
    assert attempt.parent is not None and attempt.parent.span_id == execute.context.span_id
    assert root.name == "chat up/fake-model" and attempt.name == "chat fake-model"
    usage = reply.usage
    assert dict(attempt.attributes or {}) | {"server.port": 0} == {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.system": "openai",
        "gen_ai.request.model": "fake-model",
        "gen_ai.request.max_tokens": 50,
        "gen_ai.request.temperature": 0.2,
        "gen_ai.response.model": reply.model,
        "gen_ai.response.id": reply.id,
        "gen_ai.response.finish_reasons": ("stop",),
        "gen_ai.usage.input_tokens": usage.prompt_tokens,
        "gen_ai.usage.output_tokens": usage.completion_tokens,
        "gen_ai.usage.cache_read.input_tokens": 3,
        "http.response.status_code": 200,
        "server.address": "127.0.0.1",
        "server.port": 0,
        "aicp.deployment": "up/fake-model",
        "aicp.attempt": 1,
    }
    attrs = root.attributes or {}
    assert attrs["gen_ai.request.model"] == "up/fake-model"
    assert attrs["gen_ai.response.model"] == "fake-model"
    assert attrs["gen_ai.usage.output_tokens"] == usage.completion_tokens
    assert attrs["http.response.status_code"] == 200 and attrs["aicp.route"] == "up/fake-model"
    # The upstream saw the attempt's context: the same trace, the attempt as parent.
    [sent] = traceparents(upstream)
    assert sent == f"00-{CLIENT_TRACE}-{format(attempt.context.span_id, '016x')}-01"


def test_a_retry_is_a_second_attempt_span_and_a_second_traceparent(
    traced: tuple[GatewayServer, InMemorySpanExporter], upstream: FakeUpstream
) -> None:
    gw, exporter = traced
    upstream.fault(status=500, path="/chat/completions")
    chat(gw)
    spans = exporter.get_finished_spans()
    [root] = by_kind(spans, SpanKind.SERVER)
    failed, ok = by_kind(spans, SpanKind.CLIENT)
    assert failed.status.status_code == StatusCode.ERROR
    assert (failed.attributes or {})["error.type"] == "500"
    assert ok.status.status_code == StatusCode.UNSET and (ok.attributes or {})["aicp.attempt"] == 2
    sent = traceparents(upstream)
    trace = format(root.context.trace_id, "032x")
    # The flags: sampled, and (W3C level 2) "random" for a trace id the SDK made.
    assert [t[:-3] for t in sent] == [f"00-{trace}-{s.context.span_id:016x}" for s in (failed, ok)]
    assert all(int(t[-2:], 16) & 1 for t in sent)


def test_a_stream_attempt_lasts_until_the_stream_ends(
    traced: tuple[GatewayServer, InMemorySpanExporter],
) -> None:
    gw, exporter = traced
    chunks = list(chat(gw, stream=True, stream_options={"include_usage": True}))
    spans = exporter.get_finished_spans()
    [root] = by_kind(spans, SpanKind.SERVER)
    [attempt] = by_kind(spans, SpanKind.CLIENT)
    [execute] = [s for s in spans if s.name == "execute"]
    assert attempt.end_time is not None and execute.end_time is not None
    assert attempt.end_time > execute.end_time  # the chunks came after execute returned
    attrs = attempt.attributes or {}
    assert attrs["gen_ai.request.stream"] is True
    usage = chunks[-1].usage
    assert usage is not None and attrs["gen_ai.usage.output_tokens"] == usage.completion_tokens
    assert attrs["gen_ai.response.time_to_first_chunk"] > 0
    assert (root.attributes or {})["gen_ai.response.time_to_first_chunk"] > 0


def test_a_failed_request_is_an_error_span(
    traced: tuple[GatewayServer, InMemorySpanExporter], upstream: FakeUpstream
) -> None:
    gw, exporter = traced
    upstream.fault(status=503, times=2, path="/chat/completions")
    with pytest.raises(openai.APIStatusError):
        chat(gw)
    [root] = by_kind(exporter.get_finished_spans(), SpanKind.SERVER)
    assert root.status.status_code == StatusCode.ERROR
    assert (root.attributes or {})["http.response.status_code"] >= 500
    assert (root.attributes or {})["error.type"]


def test_log_lines_carry_the_spans_trace_id(
    traced: tuple[GatewayServer, InMemorySpanExporter], capsys: pytest.CaptureFixture[str]
) -> None:
    gw, exporter = traced
    capsys.readouterr()
    chat(gw)
    err = capsys.readouterr().err
    [line] = [
        json.loads(x) for x in err.splitlines() if x.startswith("{") and '"aicp.requests"' in x
    ]
    [root] = by_kind(exporter.get_finished_spans(), SpanKind.SERVER)
    assert line["trace_id"] == format(root.context.trace_id, "032x")


# --- without a collector, and with one ----------------------------------------------------


def test_without_an_endpoint_opentelemetry_is_not_even_imported() -> None:
    assert create_tracing(make_settings(), env={}) is None
    script = """
import asyncio, sys, tempfile
from aicp.config import load_settings
from aicp.state import create_state

async def main():
    state = await create_state(load_settings(env={"AICP_DATA_DIR": tempfile.mkdtemp()}))
    assert state.tracing is None and state.path.tracing is None
    await state.aclose()

asyncio.run(main())
print(sorted(m for m in sys.modules if m.startswith("opentelemetry")))
"""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "AICP_"))}
    out = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_with_an_endpoint_spans_go_out_over_otlp_http() -> None:
    received: list[tuple[str, str, int]] = []

    class Collector(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            size = int(self.headers["content-length"])
            self.rfile.read(size)
            received.append((self.path, self.headers["content-type"], size))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Collector)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        endpoint = f"http://127.0.0.1:{server.server_address[1]}"
        tracing = create_tracing(make_settings(), env={"OTEL_EXPORTER_OTLP_ENDPOINT": endpoint})
        assert tracing is not None
        tracing.tracer.start_span("chat m").end()
        asyncio.run(tracing.aclose())  # flushes the batch
    finally:
        server.shutdown()
    [(path, content_type, size)] = received
    assert path == "/v1/traces" and content_type == "application/x-protobuf" and size > 0


def test_a_trace_the_sampler_drops_makes_no_child_spans_but_still_propagates() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(sampler=ALWAYS_OFF)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing = Tracing(provider, {"up": "openai"})
    unsampled = {"traceparent": TRACEPARENT[:-2] + "00"}
    ex = Exchange("req_1", "openai", "chat", {"model": "m"}, unsampled)
    tracing.start_request(ex)
    assert tracing.start_stage("route") is None
    dep: Any = SimpleNamespace(provider=SimpleNamespace(name="up"), model="m", key="up/m")
    span, headers = tracing.start_attempt(ex, dep)
    assert span is None and headers["traceparent"].startswith(f"00-{CLIENT_TRACE}-")
    tracing.end_request(ex)
    assert exporter.get_finished_spans() == ()
