"""Hot reload: a good change is installed, a bad one keeps the previous set."""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path

import pytest

from aicp.policy.engine import PolicyEngine, PolicySet
from aicp.policy.model import PrincipalFacts, RequestFacts, RouteFacts
from aicp.policy.reload import PolicyWatcher

Setup = tuple[PolicyEngine, PolicyWatcher, list[str], list[PolicySet]]
KEY = PrincipalFacts("k1")
ROUTES = (RouteFacts("openai/gpt-4o", "openai", "gpt-4o", "external", latency_ms=900),)
FORBID_SLOW = (
    '@id("slow") forbid(principal, action == Aicp::Action::"route", resource)\n'
    "when {{ resource.latency_ms > {limit} }};\n"
)


def write(path: Path, text: str) -> None:
    """Write and move the mtime on, so the change shows even within one clock tick."""
    path.write_text(text)
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))


def allowed(engine: PolicyEngine) -> tuple[str, ...]:
    return engine.decide(KEY, ROUTES, RequestFacts()).allowed


@pytest.fixture
def setup(tmp_path: Path) -> Setup:
    write(tmp_path / "slow.cedar", FORBID_SLOW.format(limit=500))
    engine = PolicyEngine(PolicySet.load(tmp_path))
    errors: list[str] = []
    reloads: list[PolicySet] = []
    watcher = PolicyWatcher(
        engine, tmp_path, pack=True, on_reload=reloads.append, on_error=errors.append
    )
    return engine, watcher, errors, reloads


def test_nothing_changed_installs_nothing(setup: Setup) -> None:
    engine, watcher, errors, reloads = setup
    assert watcher.check() is False
    assert reloads == [] and errors == []
    assert allowed(engine) == ()


def test_a_good_change_is_installed(setup: Setup, tmp_path: Path) -> None:
    engine, watcher, errors, reloads = setup
    write(tmp_path / "slow.cedar", FORBID_SLOW.format(limit=1000))
    assert watcher.check() is True
    assert allowed(engine) == ("openai/gpt-4o",)
    assert reloads == [engine.policies] and errors == []


def test_a_bad_file_keeps_the_previous_set_and_reports_once(
    setup: Setup,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    engine, watcher, errors, _ = setup
    before = engine.policies
    write(tmp_path / "broken.cedar", '@id("b") forbid(principal, action, resource) when { x };')
    with caplog.at_level(logging.WARNING, logger="aicp.policy"):
        assert watcher.check() is False
        assert watcher.check() is False
    assert engine.policies is before
    assert allowed(engine) == ()
    assert len(errors) == 1 and "broken.cedar" in errors[0]
    assert [r.levelname for r in caplog.records] == ["WARNING"]
    assert "broken.cedar" in caplog.records[0].getMessage()
    (tmp_path / "broken.cedar").unlink()
    write(tmp_path / "slow.cedar", FORBID_SLOW.format(limit=2000))
    assert watcher.check() is True
    assert allowed(engine) == ("openai/gpt-4o",)


def test_removing_a_file_is_a_change(setup: Setup, tmp_path: Path) -> None:
    engine, watcher, _, _ = setup
    (tmp_path / "slow.cedar").unlink()
    assert watcher.check() is True
    assert allowed(engine) == ("openai/gpt-4o",)


async def test_run_polls_until_cancelled(setup: Setup, tmp_path: Path) -> None:
    engine, watcher, _, reloads = setup
    watcher.interval_s = 0.01
    task = asyncio.create_task(watcher.run())
    write(tmp_path / "slow.cedar", FORBID_SLOW.format(limit=1000))
    for _ in range(200):
        if reloads:
            break
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert allowed(engine) == ("openai/gpt-4o",)
