"""The YAML policy test runner: parsing cases, reporting differences."""

from __future__ import annotations

from pathlib import Path

import pytest

from aicp.errors import ConfigError
from aicp.policy.cases import load_cases, run_cases
from aicp.policy.policyset import PolicySet

CASE = """
- name: legal stays home
  principal: {key_id: k1, trust_level: 2}
  request: {task_class: legal, findings: [pii]}
  routes:
    - {key: openai/gpt-4o, locality: external}
    - {key: ollama/llama3, locality: local, latency_ms: 120}
  expect:
    allowed: [ollama/llama3]
    forbidden: {openai/gpt-4o: [no-external-legal]}
"""


def cases_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "cases.yaml"
    path.write_text(text)
    return path


def test_a_case_reads_its_facts(tmp_path: Path) -> None:
    (case,) = load_cases(cases_file(tmp_path, CASE))
    assert case.principal.trust_level == 2
    assert case.request.findings == {"pii"}
    assert case.routes[1].provider == "ollama" and case.routes[1].model == "llama3"
    assert case.routes[1].latency_ms == 120
    assert case.source == "cases.yaml #1"


def test_a_passing_case_prints_pass(tmp_path: Path) -> None:
    (result,) = run_cases(PolicySet.load(None), [cases_file(tmp_path, CASE)])
    assert result.ok
    assert result.line() == "pass  cases.yaml #1: legal stays home"


def test_a_failing_case_prints_the_difference(tmp_path: Path) -> None:
    wrong = CASE.replace("no-external-legal]", "block-secrets]").replace(
        "allowed: [ollama/llama3]", "allowed: [openai/gpt-4o]\n    preferred: [ollama/llama3]"
    )
    (result,) = run_cases(PolicySet.load(None), [cases_file(tmp_path, wrong)])
    assert not result.ok
    line = result.line()
    assert line.startswith("FAIL  cases.yaml #1: legal stays home: ")
    assert "allowed: expected [openai/gpt-4o], got [ollama/llama3]" in line
    assert "preferred: expected [ollama/llama3], got []" in line
    assert "forbidden: expected {openai/gpt-4o: [block-secrets]}" in line


def test_tool_expectations_are_checked(tmp_path: Path) -> None:
    text = """
- name: deploy needs an override
  tools: [{name: deploy, production: true}]
  expect: {tools: {deploy: {allowed: true}, missing: {allowed: true}}}
"""
    (result,) = run_cases(PolicySet.load(None), [cases_file(tmp_path, text)])
    assert "tools.deploy.allowed: expected True, got False" in result.line()
    assert "tools.missing: not among the case's tools" in result.line()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("- {name: x, expect: {allowed: []}, routse: []}", "unknown key 'routse'"),
        ("- {name: x, expect: {alowed: []}}", "expect: unknown key 'alowed'"),
        ("- {name: x, expect: {allowed: []}, request: {hour: noon}}", "`hour` has the wrong type"),
        ("- {name: x, expect: {allowed: []}, routes: [{key: a/b}]}", "locality"),
        ("- {expect: {allowed: []}}", "`name` is required"),
        ("- {name: x}", "`expect` is required"),
        ("{name: x}", "a YAML list"),
    ],
)
def test_a_malformed_case_is_an_error_naming_it(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_cases(cases_file(tmp_path, text))
    assert "cases.yaml" in caught.value.message
    assert message in caught.value.message
