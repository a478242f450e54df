"""`aicp memory add|search|show|history` against a running gateway."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from typer.testing import CliRunner

from aicp.cli.main import app
from aicp.testing import GatewayServer
from tests.helpers import make_settings

runner = CliRunner()
MASTER = "sk-master-cli-memory"


@pytest.fixture
def gw(monkeypatch: pytest.MonkeyPatch) -> Iterator[GatewayServer]:
    for name in ("AICP_URL", "AICP_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("COLUMNS", "200")
    with GatewayServer(make_settings({"server": {"master_key": MASTER}})) as server:
        yield server


def _run(gw: GatewayServer, *args: str, code: int = 0) -> str:
    result = runner.invoke(app, ["memory", *args, "--url", gw.url, "--key", MASTER])
    assert result.exit_code == code, result.output
    return result.output


def test_add_search_show_and_history(gw: GatewayServer) -> None:
    line = _run(gw, "add", "Deploys", "Deploy with make ship.", "--global", "--kind", "runbook")
    entry = line.split()[0]
    assert entry.startswith("mem_") and "v1 runbook" in line and "global" in line
    _run(gw, "add", "Deploys", "Deploy with make release.", "--update", entry, "--kind", "runbook")
    found = _run(gw, "search", "how to deploy")
    assert entry in found and "v2" in found
    assert "make release" in _run(gw, "show", entry)
    history = _run(gw, "history", entry)
    assert history.index("make ship") < history.index("make release")
    refused = _run(gw, "add", "key", "AKIAIOSFODNN7EXAMPLE", "--global", code=1)
    assert "holds a secret (aws_access_key)" in refused and "AKIAIOSFODNN7EXAMPLE" not in refused
