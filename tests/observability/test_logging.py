"""Logs: JSON lines with the request's ids bound, one per request, never a secret."""

from __future__ import annotations

import io
import json
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import yaml

from aicp.config import LoggingSettings
from aicp.observability.events import Event
from aicp.observability.logging import RequestLog, build_handler, configure_logging, redact
from aicp.testing import FakeUpstream, GatewayServer
from aicp.testing.server import free_port
from tests.helpers import openai_settings
from tests.observability.test_metrics import _wait_ready

MASTER = "sk-master-logging-test-0123456789"
UPSTREAM_SECRET = "sk-upstream-secret"  # tests.helpers.openai_settings
HI = [{"role": "user", "content": "hi, my favourite colour is teal"}]
TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def lines(text: str) -> list[dict[str, Any]]:
    """Every line of `text` that is one of ours (JSON objects), parsed."""
    out = []
    for line in text.splitlines():
        if line.startswith("{"):
            out.append(json.loads(line))
    return out


def requests_of(text: str) -> list[dict[str, Any]]:
    return [line for line in lines(text) if line["logger"] == "aicp.requests"]


@pytest.fixture
def gw(upstream: FakeUpstream) -> Iterator[GatewayServer]:
    settings = openai_settings(
        upstream,
        server={"master_key": MASTER},
        reliability={"max_retries": 0},
        observability={"logging": {"format": "json"}},
    )
    with GatewayServer(settings) as server:
        yield server


def new_key(gw: GatewayServer) -> dict[str, str]:
    resp = httpx.post(
        gw.url + "/admin/keys", headers={"authorization": f"Bearer {MASTER}"}, json={"name": "l"}
    )
    assert resp.status_code == 201, resp.text
    made: dict[str, str] = resp.json()
    return made


def test_request_lines_carry_the_ids_and_no_secret(
    gw: GatewayServer, capsys: pytest.CaptureFixture[str]
) -> None:
    made = new_key(gw)
    c = openai.OpenAI(base_url=gw.url + "/v1", api_key=made["key"], max_retries=0)
    capsys.readouterr()
    raw = c.chat.completions.with_raw_response.create(
        model="up/fake-model", messages=HI, extra_headers={"traceparent": TRACEPARENT}
    )
    err = capsys.readouterr().err
    rid = raw.headers["x-request-id"]
    [line] = requests_of(err)
    assert line["msg"] == "request completed" and line["level"] == "info"
    assert line["request_id"] == rid
    assert line["key_prefix"] == made["display"]
    assert line["route"] == "up/fake-model" and line["status"] == 200
    assert line["trace_id"] == TRACEPARENT[3:35]  # the client's trace, with tracing off
    assert line["receipt_id"] == raw.headers["x-aicp-receipt-id"]
    assert line["ts"].endswith("Z") and line["latency_ms"] > 0
    # Another logger's line inside the request (the first use of an unpriced model)
    # carries the same ids without its code binding anything.
    [price] = [x for x in lines(err) if x["logger"] == "aicp.prices"]
    assert price["request_id"] == rid and price["key_prefix"] == made["display"]
    assert price["route"] == "up/fake-model" and price["event"] == "price.unknown"
    for secret in (made["key"], made["key"][len("sk-aicp-") :], UPSTREAM_SECRET, MASTER):
        assert secret not in err
    assert "teal" not in err  # no bodies by default


def test_a_secret_shaped_model_name_is_redacted(
    gw: GatewayServer, capsys: pytest.CaptureFixture[str]
) -> None:
    leaked = "sk-proj-" + "A1b2C3d4" * 4
    c = openai.OpenAI(base_url=gw.url + "/v1", api_key=MASTER, max_retries=0)
    capsys.readouterr()
    c.chat.completions.create(model=f"up/{leaked}", messages=HI)
    err = capsys.readouterr().err
    [line] = requests_of(err)
    assert line["route"] == "up/[redacted]"
    assert leaked not in err


def test_a_failure_is_one_warning_line_with_its_error(
    gw: GatewayServer, upstream: FakeUpstream, capsys: pytest.CaptureFixture[str]
) -> None:
    upstream.fault(status=500, message=f"upstream broke; it was sent {UPSTREAM_SECRET}")
    c = openai.OpenAI(base_url=gw.url + "/v1", api_key=MASTER, max_retries=0)
    capsys.readouterr()
    with pytest.raises(openai.APIStatusError):
        c.chat.completions.create(model="up/fake-model", messages=HI)
    err = capsys.readouterr().err
    [line] = requests_of(err)
    assert line["msg"] == "request failed" and line["level"] == "warning"
    assert line["status"] >= 500 and line["error"]["kind"]
    assert UPSTREAM_SECRET not in err


def test_bodies_are_logged_only_when_asked_at_debug(
    upstream: FakeUpstream, capsys: pytest.CaptureFixture[str]
) -> None:
    body_logging = {"logging": {"format": "json", "level": "DEBUG", "bodies": True}}
    for observability, expected in (({"logging": {"level": "DEBUG"}}, 0), (body_logging, 2)):
        with GatewayServer(openai_settings(upstream, observability=observability)) as gw:
            c = openai.OpenAI(base_url=gw.url + "/v1", api_key="sk-x", max_retries=0)
            capsys.readouterr()
            c.chat.completions.create(model="up/fake-model", messages=HI)
            err = capsys.readouterr().err
        bodies = [x for x in lines(err) if x["logger"] == "aicp.bodies"]
        assert len(bodies) == expected
        if expected:
            request, response = bodies
            assert request["msg"] == "request body" and "teal" in request["body"]
            assert response["msg"] == "response body" and "fake upstream" in response["body"]
            assert request["level"] == "debug" and request["request_id"]
    configure_logging(LoggingSettings(format="json"))  # back to INFO for the tests after


def test_serve_writes_uvicorn_and_aicp_lines_in_one_format(
    upstream: FakeUpstream, tmp_path: Path
) -> None:
    port = free_port()
    config = tmp_path / "aicp.yaml"
    providers = {"up": {"type": "openai", "base_url": upstream.url + "/v1", "api_key": "sk-x"}}
    config.write_text(
        yaml.safe_dump(
            {
                "server": {"port": port},
                "storage": {"data_dir": str(tmp_path / "data")},
                "providers": providers,
                "observability": {"logging": {"format": "json"}},
            }
        )
    )
    env = {k: os.environ[k] for k in ("PATH", "HOME", "LANG") if k in os.environ}
    proc = subprocess.Popen(
        [sys.executable, "-m", "aicp.cli.main", "serve", "--config", str(config)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        _wait_ready(f"http://127.0.0.1:{port}", proc)
        c = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="x", max_retries=0)
        c.chat.completions.create(model="up/fake-model", messages=HI)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    text = err.decode()
    assert text.strip()
    assert all(line.startswith("{") for line in text.splitlines() if line.strip()), text
    loggers = {line["logger"] for line in lines(text)}
    assert {"uvicorn.error", "aicp", "aicp.requests"} <= loggers


# --- the format itself ---------------------------------------------------------------


def _logger(name: str, settings: LoggingSettings) -> tuple[logging.Logger, io.StringIO]:
    """A logger of its own with one aicp-format handler, as `configure_logging` makes."""
    out = io.StringIO()
    log = logging.getLogger(name)
    log.handlers = [build_handler(settings, logging.StreamHandler(out))]
    log.propagate = False
    log.setLevel(logging.DEBUG)
    return log, out


def test_stdlib_records_get_the_format_extras_and_tracebacks() -> None:
    log, out = _logger("aicp.test.format", LoggingSettings(format="json"))
    log.warning("hello %s", "world", extra={"event": "x.happened", "count": 3})
    try:
        raise ValueError("boom with Bearer abcdefghijklmnop")
    except ValueError:
        log.exception("it failed")
    first, second = (json.loads(line) for line in out.getvalue().splitlines())
    assert first["msg"] == "hello world" and first["level"] == "warning"
    assert first["logger"] == "aicp.test.format"
    assert first["event"] == "x.happened" and first["count"] == 3
    assert second["level"] == "error" and "ValueError" in second["exception"]
    assert "abcdefghijklmnop" not in second["exception"]
    assert "Bearer [redacted]" in second["exception"]


def _completed() -> Event:
    data = {"route": "m", "status": 200, "latency_ms": 1.5, "key_prefix": "sk-aicp-Ab3d…x9Q0"}
    return Event("llm.request.completed", 0.0, data, request_id="req_1")


def test_the_direct_request_line_equals_the_one_through_logging() -> None:
    settings = LoggingSettings(format="json")
    log, out = _logger("aicp.test.requests", settings)
    RequestLog(settings, log)(_completed())  # one handler: written directly
    log.addHandler(logging.NullHandler())  # two: through the LogRecord machinery
    RequestLog(settings, log)(_completed())
    direct, through = (json.loads(line) for line in out.getvalue().splitlines())
    direct.pop("ts"), through.pop("ts")
    assert direct == through
    assert direct["msg"] == "request completed" and direct["request_id"] == "req_1"
    assert direct["key_prefix"] == "sk-aicp-Ab3d…x9Q0"  # a display form is not a secret
    RequestLog(settings, log)(Event("route.decided", 0.0, {}))
    assert len(out.getvalue().splitlines()) == 2


def test_console_lines_are_readable() -> None:
    settings = LoggingSettings(format="console")
    log, out = _logger("aicp.test.console", settings)
    log.handlers[0].formatter = build_handler(settings).formatter  # colours off: not a TTY
    RequestLog(settings, log)(_completed())
    text = out.getvalue()
    assert "request completed" in text and "route=m" in text and not text.startswith("{")


def test_configure_logging_is_idempotent_and_leaves_other_handlers() -> None:
    root = logging.getLogger()
    others = [h for h in root.handlers if not hasattr(h, "_aicp")]
    settings = LoggingSettings(format="json")
    configure_logging(settings)
    first = [h for h in root.handlers if hasattr(h, "_aicp")]
    configure_logging(settings)
    assert [h for h in root.handlers if hasattr(h, "_aicp")] == first and len(first) == 1
    assert [h for h in root.handlers if not hasattr(h, "_aicp")] == others


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("Authorization: Bearer abc.def-ghi_jkl", "abc.def-ghi_jkl"),
        ("Bearer sk-proj-abcdefghijklmnopqrstuvwx", "sk-proj-abcdefghijklmnopqrstuvwx"),
        ('{"api_key":"abcdefgh12345"}', "abcdefgh12345"),
        ("key=AKIAIOSFODNN7EXAMPLE here", "AKIAIOSFODNN7EXAMPLE"),
        ("aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "wJalrXUtnFEMI"),
        ("x-api-key: 0123456789abcdef", "0123456789abcdef"),
        ("google AIzaSyA1234567890abcdefghijklmnopqrstu", "AIzaSyA1234567890"),
        ("token ghp_abcdefghijklmnopqrstuvwxyz0123456789", "ghp_abcdefghijklmnop"),
        ("password=hunter2hunter2", "hunter2hunter2"),
        ("quoted 'sk-ant-api03-abcdefghijklmnopqrstuvwxyz'", "sk-ant-api03"),
    ],
)
def test_secret_shapes_are_redacted(text: str, secret: str) -> None:
    out = redact(text)
    assert "[redacted]" in out and secret not in out
    assert out.startswith(text[: text.index(secret)])  # the field name or scheme stays


@pytest.mark.parametrize(
    "text",
    ["key sk-aicp-Ab3d…x9Q0", "request completed in 3 ms", "model gpt-4o-mini", "route up/fake"],
)
def test_ordinary_text_is_left_alone(text: str) -> None:
    assert redact(text) == text


class _CountingStream(io.StringIO):
    def __init__(self) -> None:
        super().__init__()
        self.writes = 0

    def write(self, text: str) -> int:
        self.writes += 1
        return super().write(text)


async def test_request_lines_of_one_loop_turn_go_out_in_one_write_in_order() -> None:
    import asyncio

    settings = LoggingSettings(format="json")
    out = _CountingStream()
    log = logging.getLogger("aicp.test.coalesce")
    log.handlers = [build_handler(settings, logging.StreamHandler(out))]
    log.propagate = False
    log.setLevel(logging.INFO)
    requests = RequestLog(settings, log)
    for n in range(5):
        requests(Event("llm.request.completed", 0.0, {"status": 200}, request_id=f"req_{n}"))
    assert out.getvalue() == ""  # not yet: at the end of this turn of the loop
    await asyncio.sleep(0)
    ids = [json.loads(line)["request_id"] for line in out.getvalue().splitlines()]
    assert ids == [f"req_{n}" for n in range(5)] and out.writes == 1
    requests(Event("llm.request.completed", 0.0, {"status": 200}, request_id="req_5"))
    await asyncio.sleep(0)
    assert len(out.getvalue().splitlines()) == 6 and out.writes == 2


def test_a_client_chosen_route_name_is_redacted_in_a_completed_line() -> None:
    settings = LoggingSettings(format="json")
    log, out = _logger("aicp.test.route-secret", settings)
    secret = "sk-proj-" + "A1b2C3d4E5f6G7h8I9j0" * 2
    data = {"route": f"openai/{secret}", "upstream_model": secret, "status": 200}
    RequestLog(settings, log)(Event("llm.request.completed", 0.0, data, request_id="req_1"))
    line = json.loads(out.getvalue())
    assert secret not in out.getvalue()
    assert line["route"].startswith("openai/") and "[redacted]" in line["route"]
    failed = {"status": 502, "error": {"message": f"upstream said: bad key {secret}"}}
    RequestLog(settings, log)(Event("llm.request.failed", 0.0, failed, request_id="req_2"))
    assert secret not in out.getvalue()
