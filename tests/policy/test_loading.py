"""Loading policy files: schema validation, ids, and errors that name the file and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from aicp.errors import ConfigError
from aicp.policy.policyset import PolicySet

GOOD = '@id("slow") forbid(principal, action == Aicp::Action::"route", resource)\n' + (
    "when { resource.latency_ms > 500 };\n"
)


def load_error(files: dict[str, str], tmp_path: Path, *, pack: bool = False) -> str:
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    with pytest.raises(ConfigError) as caught:
        PolicySet.load(tmp_path, pack=pack)
    return caught.value.message


def test_a_directory_adds_its_policies_to_the_pack(tmp_path: Path) -> None:
    (tmp_path / "slow.cedar").write_text(GOOD)
    (tmp_path / "notes.txt").write_text("not a policy")
    policies = PolicySet.load(tmp_path)
    assert "slow" in policies.ids and "default-allow" in policies.ids
    assert policies.policies["slow"].source == str(tmp_path / "slow.cedar")
    assert policies.policies["slow"].line == 1
    assert PolicySet.load(tmp_path, pack=False).ids == {"slow"}


def test_an_unknown_attribute_is_rejected_naming_the_file_policy_and_line(
    tmp_path: Path,
) -> None:
    text = (
        GOOD + '\n@id("typo")\nforbid(principal, action, resource) when { resource.latncy > 1 };\n'
    )
    message = load_error({"typo.cedar": text}, tmp_path)
    assert str(tmp_path / "typo.cedar") in message
    assert "line 4: policy 'typo'" in message
    assert "latncy" in message


def test_a_type_error_is_rejected(tmp_path: Path) -> None:
    text = '@id("t") forbid(principal, action, resource) when { context.hour == "noon" };'
    message = load_error({"t.cedar": text}, tmp_path)
    assert "policy 't'" in message


def test_an_action_outside_the_schema_is_rejected(tmp_path: Path) -> None:
    text = '@id("t") forbid(principal, action == Aicp::Action::"delete", resource);'
    assert "policy 't'" in load_error({"t.cedar": text}, tmp_path)


def test_a_duplicate_id_is_rejected_naming_both_files(tmp_path: Path) -> None:
    message = load_error({"a.cedar": GOOD, "b.cedar": GOOD}, tmp_path)
    assert "duplicate policy id 'slow'" in message
    assert str(tmp_path / "a.cedar") in message and str(tmp_path / "b.cedar") in message


def test_a_directory_may_not_reuse_a_pack_id(tmp_path: Path) -> None:
    text = GOOD.replace('"slow"', '"error-rate"')
    message = load_error({"mine.cedar": text}, tmp_path, pack=True)
    assert "duplicate policy id 'error-rate'" in message and "pack/health.cedar" in message


def test_a_policy_without_an_id_is_rejected(tmp_path: Path) -> None:
    text = GOOD + "forbid(principal, action, resource) when { context.hour > 22 };\n"
    message = load_error({"anon.cedar": text}, tmp_path)
    assert "anon.cedar: policy #2 in the file has no @id" in message


def test_a_parse_error_names_its_line(tmp_path: Path) -> None:
    text = GOOD + '\n// a comment\n@id("x") forbid(principal, action, resource) when { };\n'
    message = load_error({"broken.cedar": text}, tmp_path)
    assert f"{tmp_path / 'broken.cedar'}: line 5:" in message


def test_templates_are_rejected(tmp_path: Path) -> None:
    text = '@id("t") permit(principal == ?principal, action, resource);'
    assert "templates" in load_error({"t.cedar": text}, tmp_path)


def test_every_bad_file_is_reported_at_once(tmp_path: Path) -> None:
    message = load_error({"a.cedar": "permit(", "b.cedar": "forbid("}, tmp_path)
    assert "a.cedar" in message and "b.cedar" in message


def test_a_missing_directory_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        PolicySet.load(tmp_path / "nowhere")


def test_annotations_are_read(tmp_path: Path) -> None:
    (tmp_path / "r.cedar").write_text(
        '@id("r") @redact("pii, email") @constraint("eu-only")\n'
        "forbid(principal, action, resource) when { context.hour > 22 };"
    )
    policy = PolicySet.load(tmp_path, pack=False).policies["r"]
    assert policy.redactions == {"pii", "email"}
    assert policy.constraints == ("eu-only",)
    assert policy.effect == "forbid" and policy.actions is None


def test_redact_must_name_a_detector_with_spans(tmp_path: Path) -> None:
    text = '@id("r")\n@redact("pii, emails")\npermit(principal, action, resource);\n'
    message = load_error({"r.cedar": text}, tmp_path)
    assert "line 1: policy 'r': @redact names unknown detectors emails" in message
    assert "known: blocklist, pii, secrets" in message
    (tmp_path / "r.cedar").write_text(text.replace("pii, emails", "secrets, email"))
    assert PolicySet.load(tmp_path, pack=False).policies["r"].redactions == {"email", "secrets"}
