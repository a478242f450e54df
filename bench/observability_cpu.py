"""CPU per request of logs, metrics and traces (and of the events they need), in process.

Two measurements, as bench/identity_cpu.py (mock provider, no sockets, master key,
best of seven batches):

1. The subscribers alone on a real request's `llm.request.completed`: the metrics
   and the JSON request line (through the real handler and formatter, to
   /dev/null). Steady to a microsecond or two.
2. Whole requests through five apps, in rounds of short batches (the apps in a
   new order each round); each variant is compared with its base within a round
   and the median over the rounds is reported. This is the figure that counts:
   inside a real request the same code runs slower than in (1)'s tight loop
   (cold caches), about twice as slow here. It still moves by several
   microseconds with the machine's load.

   - bare: metrics off, no request log: nobody listens on the event bus
   - events: a subscriber that does nothing, so every producer builds its events
   - default: metrics on and one JSON log line per request (the default settings)
   - tracing: the default plus a span per stage and per attempt (to an exporter
     that drops them; a real OTLP exporter adds its encoding in a background thread)
   - unsampled: tracing with a sampler that keeps no trace (OTEL_TRACES_SAMPLER):
     the cost of a request that a ratio sampler drops

    .venv/bin/python bench/observability_cpu.py
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import uvloop
import yaml
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

sys.path.insert(0, str(Path(__file__).parent))
from identity_cpu import BODY, MASTER, call

from aicp.app import App, create_app
from aicp.config import Settings, load_settings
from aicp.observability.events import Event
from aicp.observability.logging import RequestLog, configure_logging

BATCHES, WARMUP = 7, 2000
ROUNDS, PER_ROUND = 60, 500
VARIANTS = ("bare", "events", "default", "tracing", "unsampled")
#: What each variant adds to: the figure reported is the difference.
BASES = {"events": "bare", "default": "events", "tracing": "default", "unsampled": "default"}
AUTH = [(b"authorization", f"Bearer {MASTER}".encode())]


class Drop(SpanExporter):
    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS


def settings_for(variant: str) -> Settings:
    data = Path(tempfile.mkdtemp(prefix="aicp-observability-cpu-"))
    config = data / "aicp.yaml"
    deployment: dict[str, Any] = {"provider": "mock", "model": "mock-1"}
    deployment |= {"input_cost_per_mtok": 0.15, "output_cost_per_mtok": 0.6}
    logs: dict[str, Any] = {"format": "json"}
    observability: dict[str, Any] = {"logging": logs}
    if variant in ("bare", "events"):
        observability["metrics"] = False
        logs["requests"] = False
    doc = {
        "models": [{"name": "m", "deployments": [deployment]}],
        "observability": observability,
        # Receipts are measured on their own: not waiting for each commit keeps their
        # SQLite writes from drowning the microseconds measured here.
        "receipts": {"durable": False, "bodies": "none"},
    }
    config.write_text(yaml.safe_dump(doc))
    env = {"AICP_DATA_DIR": str(data), "AICP_MASTER_KEY": MASTER}
    return load_settings(config, env=env)


def best_of(fn: Callable[[], None], n: int = 20_000) -> float:
    batches = []
    for _ in range(BATCHES):
        started = time.process_time()
        for _ in range(n):
            fn()
        batches.append((time.process_time() - started) / n * 1e6)
    return min(batches)


async def measure(sink: logging.Handler) -> dict[str, float]:
    apps: dict[str, App] = {}
    async with contextlib.AsyncExitStack() as stack:
        for variant in VARIANTS:
            settings = settings_for(variant)
            app = create_app(settings)
            if variant in ("tracing", "unsampled"):
                app.export_spans_to(Drop())
            if variant == "unsampled":
                # The SDK reads its sampler from the environment when the app starts.
                os.environ["OTEL_TRACES_SAMPLER"] = "traceidratio"
                os.environ["OTEL_TRACES_SAMPLER_ARG"] = "0"
            await stack.enter_async_context(app.web.router.lifespan_context(app.web))
            os.environ.pop("OTEL_TRACES_SAMPLER", None)
            os.environ.pop("OTEL_TRACES_SAMPLER_ARG", None)
            assert app.state is not None
            if variant == "events":
                app.state.events.subscribe(lambda event: None)
            apps[variant] = app
        # After the lifespans, which install the stderr handler: the log lines go nowhere.
        configure_logging(settings.observability.logging, handler=sink)
        for app in apps.values():
            for _ in range(WARMUP):
                done = await call(app, "/v1/chat/completions", BODY, AUTH)
            assert done["status"] == 200, done
        got = {"subscribers": await subscribers(apps["default"])}
        rounds: dict[str, list[float]] = {v: [] for v in VARIANTS}
        for i in range(ROUNDS):
            order = list(apps.items())
            random.Random(i).shuffle(order)
            for variant, app in order:
                started = time.process_time()
                for _ in range(PER_ROUND):
                    await call(app, "/v1/chat/completions", BODY, AUTH)
                rounds[variant].append((time.process_time() - started) / PER_ROUND * 1e6)
        # The variants of one round ran within a second of each other: compare them
        # within the round, then take the median over the rounds.
        out = {**got["subscribers"], "bare": statistics.median(rounds["bare"])}
        for variant, base in BASES.items():
            pairs = [a - b for a, b in zip(rounds[variant], rounds[base], strict=True)]
            out[variant] = statistics.median(pairs)
        return out


async def subscribers(app: App) -> dict[str, float]:
    state = app.state
    assert state is not None and state.metrics is not None
    seen: list[Event] = []
    unsubscribe = state.events.subscribe(seen.append)
    await call(app, "/v1/chat/completions", BODY, AUTH)
    unsubscribe()
    event = next(e for e in seen if e.type == "llm.request.completed")
    metrics, lines = state.metrics, RequestLog(state.settings.observability.logging)
    other = seen[0]

    def ignored() -> None:
        metrics(other)
        lines(other)

    return {
        "metrics": best_of(lambda: metrics(event)),
        "request_line": best_of(lambda: lines(event)),
        "other_event": best_of(ignored),
    }


def main() -> None:
    with open(os.devnull, "w") as devnull:
        got = uvloop.run(measure(logging.StreamHandler(devnull)))
    print(json.dumps({k: round(v, 1) for k, v in got.items()}))
    own = got["metrics"] + got["request_line"]
    print(f"metrics subscriber, one request:  {got['metrics']:.1f} µs CPU")
    print(f"JSON request line, one request:   {got['request_line']:.1f} µs CPU")
    print(f"  logs + metrics:                 {own:.1f} µs")
    print(f"any other event, both ignore it:  {got['other_event']:.2f} µs")
    print(f"bare request (nobody listens):    {got['bare']:.1f} µs")
    print(f"events built, nobody consumes:    {got['events']:+.1f} µs")
    print(f"logs + metrics (default):         {got['default']:+.1f} µs")
    print(f"tracing, every request sampled:   {got['tracing']:+.1f} µs")
    print(f"tracing, a request not sampled:   {got['unsampled']:+.1f} µs")


if __name__ == "__main__":
    main()
