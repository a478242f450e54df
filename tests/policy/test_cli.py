"""`aicp policy validate` and `aicp policy test`."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from aicp.cli.policy import policy_app

SLOW = (
    '@id("slow") forbid(principal, action == Aicp::Action::"route", resource)\n'
    "when { resource.latency_ms > 500 };\n"
)
CASE = """
- name: slow routes are forbidden
  routes:
    - {key: a/slow, locality: external, latency_ms: 900}
    - {key: a/fast, locality: external, latency_ms: 100}
  expect:
    allowed: [a/fast]
    forbidden: {a/slow: [slow]}
"""


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(policy_app, list(args))
    return result.exit_code, result.output


def policy_dir(tmp_path: Path, case: str = CASE) -> Path:
    (tmp_path / "slow.cedar").write_text(SLOW)
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "slow.yaml").write_text(case)
    return tmp_path


def test_validate_lists_the_policies(tmp_path: Path) -> None:
    code, out = run("validate", str(policy_dir(tmp_path)))
    assert code == 0
    assert "ok, 11 policies (10 from the pack)" in out
    assert "slow" in out and "default-allow" in out


def test_validate_without_the_pack(tmp_path: Path) -> None:
    code, out = run("validate", str(policy_dir(tmp_path)), "--no-pack")
    assert code == 0 and "ok, 1 policies (0 from the pack)" in out


def test_validate_prints_errors_and_exits_1(tmp_path: Path) -> None:
    (tmp_path / "bad.cedar").write_text('@id("b") forbid(principal, action, resource) when { x };')
    code, out = run("validate", str(tmp_path))
    assert code == 1
    assert "bad.cedar" in out


def test_test_without_a_directory_runs_the_pack_cases() -> None:
    code, out = run("test")
    assert code == 0
    assert "pass  data.yaml #2: legal data never goes to an external route" in out
    assert ", 0 failed" in out


def test_test_runs_the_directory_cases(tmp_path: Path) -> None:
    code, out = run("test", str(policy_dir(tmp_path)))
    assert code == 0
    assert out.splitlines() == [
        "pass  slow.yaml #1: slow routes are forbidden",
        "1 passed, 0 failed",
    ]


def test_a_failing_case_exits_1(tmp_path: Path) -> None:
    directory = policy_dir(tmp_path, CASE.replace("[a/fast]", "[a/slow]"))
    code, out = run("test", str(directory))
    assert code == 1
    assert out.startswith("FAIL  slow.yaml #1: slow routes are forbidden: allowed: expected")
    assert "0 passed, 1 failed" in out


def test_test_runs_the_files_given(tmp_path: Path) -> None:
    directory = policy_dir(tmp_path)
    other = tmp_path / "other.yaml"
    other.write_text(CASE.replace("slow routes are forbidden", "given explicitly"))
    code, out = run("test", str(directory), str(other))
    assert code == 0
    assert "other.yaml #1: given explicitly" in out and "slow.yaml" not in out


def test_test_without_cases_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "slow.cedar").write_text(SLOW)
    code, out = run("test", str(tmp_path))
    assert code == 1 and "no test cases" in out
