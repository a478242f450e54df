"""The approval stage type: its options, and a decision (or a timeout) turned into an output."""

from __future__ import annotations

from typing import Any

import pytest

from aicp.pipeline.builtins.approval import APPROVAL, DEFAULT_TIMEOUT_S, decide, failure, settings
from aicp.pipeline.model import StageFailed
from tests.pipeline.fake_ctx import FakeCtx, stage


def test_defaults_wait_a_day_and_reject() -> None:
    s = settings(stage("approval"))
    assert s.timeout_s == DEFAULT_TIMEOUT_S == 86400
    assert (s.default, s.on_reject) == ("reject", "fail")
    assert s.message == "Approve stage 'a_approval'?"


def test_an_approval_is_the_output() -> None:
    s = stage("approval", message="Ship it?")
    out = decide(s, {"approved": True, "by": "ana", "comment": "looks good"})
    assert out == {"approved": True, "by": "ana", "comment": "looks good", "timed_out": False}
    assert failure(s, out) is None
    assert decide(s, {"decision": "Reject"})["approved"] is False


def test_a_rejection_fails_the_run_unless_told_to_continue() -> None:
    out = decide(stage("approval"), {"approved": False, "by": "bo", "comment": "too costly"})
    err = failure(stage("approval"), out)
    assert isinstance(err, StageFailed)
    assert "rejected by bo: too costly" in str(err) and err.report == out
    assert failure(stage("approval", on_reject="continue"), out) is None


def test_a_timeout_takes_the_default() -> None:
    rejecting = decide(stage("approval"), None)
    assert rejecting == {"approved": False, "by": None, "comment": None, "timed_out": True}
    err = failure(stage("approval", timeout_s=60), rejecting)
    assert err is not None and "no decision within 60s" in str(err)
    assert decide(stage("approval", default="approve"), None)["approved"] is True


def test_a_decision_that_says_neither_is_refused() -> None:
    with pytest.raises(ValueError, match="approved"):
        decide(stage("approval"), {"decision": "maybe"})


@pytest.mark.parametrize(
    ("options", "problem"),
    [
        ({"timeout_s": 0}, "option 'timeout_s' must be a number > 0"),
        ({"timeout_s": "1h"}, "option 'timeout_s' must be a number > 0"),
        ({"default": "yes"}, "must be one of approve, reject"),
        ({"on_reject": "retry"}, "must be one of fail, continue"),
        ({"approvers": ["ana"]}, "unknown option 'approvers'"),
    ],
)
def test_check_reports_bad_options(options: dict[str, Any], problem: str) -> None:
    assert any(problem in p for p in APPROVAL.check(stage("approval", **options)))


def test_check_accepts_the_documented_options() -> None:
    full = stage("approval", message="ok?", timeout_s=3600, default="approve", on_reject="continue")
    assert APPROVAL.check(full) == []


def test_running_it_outside_the_runner_fails_plainly() -> None:
    with pytest.raises(StageFailed, match="run by the runner"):
        APPROVAL.run(FakeCtx(stage("approval")), {})
