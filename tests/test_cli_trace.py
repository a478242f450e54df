"""`aicp trace` on a gateway's database after real requests, `aicp replay` against it live."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import httpx
import pytest
from typer.testing import CliRunner

from aicp.cli.main import app
from aicp.testing import FakeUpstream, GatewayServer
from tests.api.test_replay import MASTER, chat, settings_for

runner = CliRunner()

#: What would point the CLI at another database than the gateway's.
ENV_VARS = ("AICP_CONFIG", "AICP_DATA_DIR", "AICP_DATABASE_URL", "AICP_URL", "AICP_API_KEY")


@pytest.fixture
def gw(upstream: FakeUpstream, monkeypatch: pytest.MonkeyPatch) -> Iterator[GatewayServer]:
    for name in ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("COLUMNS", "160")
    with GatewayServer(settings_for(upstream)) as server:
        yield server


def trace(gw: GatewayServer, *args: str) -> str:
    result = runner.invoke(app, ["trace", *args, "--config", gw.app.settings.source])
    assert result.exit_code == 0, result.output
    return result.output


def test_trace_shows_the_stages_the_attempts_and_the_bodies(
    gw: GatewayServer, upstream: FakeUpstream
) -> None:
    upstream.fault(status=503, path="/chat/completions")  # one retry, then served
    rid = chat(gw)
    out = trace(gw, rid)
    assert rid in out and "live" in out
    assert "principal" in out and "master" in out
    assert "chat -> up/fake-model" in out
    assert "11 in (3 cached) / 7 out" in out
    for stage in ("authenticate", "route", "limits", "budget", "execute", "settle"):
        assert re.search(rf"^\s*{stage}\s+\d+\.\d\d ms\s+\d+\.\d\d ms", out, re.M), stage
    assert "█" in out  # execute is long enough to draw a bar
    attempts = re.findall(r"^\s*(\d)\s+up/fake-model\s+(\d{3})", out, re.M)
    assert attempts == [("1", "503"), ("2", "200")]
    assert "injected fault" in out
    assert "decisions" in out and '"chain": ["up/fake-model"]' in out
    assert "full  (aicp replay can re-run it)" in out
    assert "ttft -" in out


def test_trace_json_is_the_receipt_and_an_unknown_id_fails(gw: GatewayServer) -> None:
    rid = chat(gw)
    receipt = json.loads(trace(gw, rid, "--json"))
    assert receipt["id"] == rid and receipt["route"]["served"] == "up/fake-model"
    missing = runner.invoke(app, ["trace", "rcpt_" + "0" * 28, "--config", gw.app.settings.source])
    assert missing.exit_code == 1 and "no receipt" in missing.output


def test_trace_of_a_stream_shows_its_time_to_first_token(gw: GatewayServer) -> None:
    import openai

    c = openai.OpenAI(base_url=gw.url + "/v1", api_key=MASTER)
    raw = c.chat.completions.with_raw_response.create(
        model="chat", messages=[{"role": "user", "content": "hi"}], stream=True
    )
    list(raw.parse())
    out = trace(gw, raw.headers["x-aicp-receipt-id"])
    assert re.search(r"ttft \d+\.\d\d ms", out)
    assert "openai chat stream" in out


def test_replay_cli_shows_both_sides_and_marks_the_differences(
    gw: GatewayServer, upstream: FakeUpstream
) -> None:
    upstream.reply = "before"
    rid = chat(gw)
    upstream.reply = "after"
    base = ["--url", gw.url, "--key", MASTER]
    result = runner.invoke(app, ["replay", rid, "--mode", "live", *base])
    assert result.exit_code == 0, result.output
    out = result.output
    assert f"replay of {rid} (live)" in out
    assert re.search(r"output \*\s+.*before\s+.*after", out)
    assert re.search(r"^\W*served\W+up/fake-model\W+up/fake-model", out, re.M)
    assert "* differs" in out

    budget = {"scope": "key", "scope_id": "master", "period": "daily", "hard_limit_usd": 5}
    made = httpx.post(
        f"{gw.url}/admin/budgets", json=budget, headers={"authorization": f"Bearer {MASTER}"}
    )
    assert made.status_code == 201, made.text
    sent = len(upstream.requests)
    result = runner.invoke(app, ["replay", rid, "--route", "up/fake-model-2", *base])
    assert result.exit_code == 0, result.output
    assert len(upstream.requests) == sent
    assert "nothing was sent upstream" in result.output
    assert re.search(r"served \*.*up/fake-model-2 \(estimate\)", result.output)
    # Two requests of $0.025 were spent against it already.
    assert f"{made.json()['id']} (key): $4.950000 left, fits" in result.output

    as_json = runner.invoke(app, ["replay", rid, "--json", *base])
    assert json.loads(as_json.output)["replay"]["mode"] == "simulate"


def test_replay_cli_prints_the_refusal(upstream: FakeUpstream) -> None:
    with GatewayServer(settings_for(upstream, bodies="none")) as gw:
        rid = chat(gw)
        result = runner.invoke(app, ["replay", rid, "--url", gw.url, "--key", MASTER])
    assert result.exit_code == 1
    assert "HTTP 409" in result.output and "not retained" in result.output


def test_replay_cli_rejects_an_unknown_mode() -> None:
    result = runner.invoke(app, ["replay", "rcpt_x", "--mode", "dream"])
    assert result.exit_code == 2
