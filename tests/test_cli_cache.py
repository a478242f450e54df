"""`aicp cache warmup|stats|clear` and `aicp routes memory` against a running gateway."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from aicp.testing import GatewayServer
from tests.helpers import make_settings, run_cli

MASTER = "sk-master-cli-cache"


@pytest.fixture
def gw(cli_env: None) -> Iterator[GatewayServer]:
    settings = make_settings(
        {
            "server": {"master_key": MASTER},
            "models": [{"name": "m", "deployments": [{"provider": "mock", "model": "mock-1"}]}],
            "cache": {"exact": {"enabled": True}},
        }
    )
    with GatewayServer(settings) as server:
        yield server


def _run(gw: GatewayServer, *args: str, code: int = 0) -> str:
    return run_cli(gw.url, MASTER, *args, code=code)


def test_warmup_fills_the_cache_and_clear_empties_it(gw: GatewayServer, tmp_path: Path) -> None:
    lines = [
        {"model": "m", "question": "What is a circuit breaker?"},
        {"model": "m", "messages": [{"role": "user", "content": "Explain retries."}]},
        {"model": "m", "question": "What is a circuit breaker?", "protocol": "anthropic"},
    ]
    file = tmp_path / "warm.jsonl"
    file.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    assert "3 requests sent" in _run(gw, "cache", "warmup", str(file))
    stats = json.loads(_run(gw, "cache", "stats"))
    assert stats["entries"]["exact"] == 3
    memory = _run(gw, "routes", "memory")
    assert "mock/mock-1" in memory and "100.0%" in memory
    assert "3 entries removed" in _run(gw, "cache", "clear", "--all")
    assert json.loads(_run(gw, "cache", "stats"))["entries"]["exact"] == 0


def test_warmup_refuses_a_bad_file(gw: GatewayServer, tmp_path: Path) -> None:
    file = tmp_path / "bad.jsonl"
    file.write_text('{"question": "no model"}\n')
    out = _run(gw, "cache", "warmup", str(file), code=2)
    assert "lines [1]" in out
