"""`aicp memory add|search|show|history` against a running gateway."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from aicp.testing import GatewayServer
from tests.helpers import make_settings, run_cli

MASTER = "sk-master-cli-memory"


@pytest.fixture
def gw(cli_env: None) -> Iterator[GatewayServer]:
    with GatewayServer(make_settings({"server": {"master_key": MASTER}})) as server:
        yield server


def _run(gw: GatewayServer, *args: str, code: int = 0) -> str:
    return run_cli(gw.url, MASTER, "memory", *args, code=code)


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
