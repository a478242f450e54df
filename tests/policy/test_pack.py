"""The shipped pack against its own YAML cases: one test per case."""

from __future__ import annotations

import pytest

from aicp.policy.cases import Case, case_files, load_cases, run_case
from aicp.policy.engine import PolicyEngine
from aicp.policy.policyset import PACK_DIR, PolicySet

CASES = [case for path in case_files(PACK_DIR) for case in load_cases(path)]


@pytest.fixture(scope="module")
def engine() -> PolicyEngine:
    return PolicyEngine(PolicySet.load(None))


def test_the_pack_ships_the_documented_policy_ids() -> None:
    assert PolicySet.load(None).ids == {
        "default-allow",
        "no-external-legal",
        "no-external-restricted",
        "block-secrets",
        "latency-sla",
        "error-rate",
        "prefer-local-internal-code",
        "prefer-self-hosted-low-budget",
        "production-tools-need-override",
        "offline-local-only",
    }


def test_every_pack_policy_is_exercised_by_a_case(engine: PolicyEngine) -> None:
    named: set[str] = set()
    for case in CASES:
        if case.routes:
            decision = engine.decide(case.principal, case.routes, case.request)
            named |= {p for v in decision.verdicts for p in v.policies}
            named |= {p for ids in decision.preferred_by.values() for p in ids}
        for _, ids in engine.authorize_tools(case.principal, case.tools, case.request).values():
            named |= set(ids)
    assert named == engine.policies.ids


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_pack_case(engine: PolicyEngine, case: Case) -> None:
    result = run_case(engine, case)
    assert result.ok, result.line()
