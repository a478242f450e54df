"""Reading one *.cedar file: parse, check annotations, validate against the schema.

Errors name the file, the policy and, where it can be found, the line: Cedar's
parser reports only the token it choked on.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

import cedarpy

from aicp.guardrails.pii import PiiDetector
from aicp.guardrails.secrets import SecretsDetector

_ID_ANNOTATION = re.compile(r'@id\s*\(\s*"((?:[^"\\]|\\.)*)"\s*\)')
_SPLIT = re.compile(r"[\s,]+")
#: What `@redact` may name: an input detector whose findings have spans to redact, or
#: one kind of finding of the PII or secrets detector (`email`, `aws_access_key`).
REDACTABLE = frozenset({"pii", "secrets", "blocklist"}) | PiiDetector.KINDS | SecretsDetector.KINDS
#: Beyond this many lines a parse error is reported without hunting for its line.
_LOCATE_MAX_LINES = 2000


@dataclass(frozen=True, slots=True)
class Policy:
    """One static policy as loaded: its id, effect, annotations and Cedar JSON form."""

    id: str
    effect: str  # "permit" | "forbid"
    actions: frozenset[str] | None  # the action ids its scope names; None: any action
    redactions: frozenset[str]  # from @redact("pii, email")
    constraints: tuple[str, ...]  # from @constraint("...")
    source: str  # the file, as shown in messages
    line: int  # of its @id, 0 when unknown
    est: Mapping[str, object] = field(compare=False, hash=False, repr=False)
    #: From @soft: a forbid that gives way when it would leave a request no route at all.
    soft: bool = False

    def applies_to(self, action: str) -> bool:
        return self.actions is None or action in self.actions


def parse_file(source: str, text: str, schema: cedarpy.Schema) -> tuple[list[Policy], list[str]]:
    """The policies in one file, and the errors that make it unusable (empty when fine)."""
    try:
        est = json.loads(cedarpy.policies_to_json_str(text))
    except ValueError as exc:
        line = _parse_error_line(text)
        where = f"{source}: line {line}" if line else source
        return [], [f"{where}: {exc}"]
    errors: list[str] = []
    if est.get("templates"):
        errors.append(f"{source}: templates (?principal, ?resource) are not supported")
    positional: dict[str, str] = {}
    policies: list[Policy] = []
    for n, (cedar_id, body) in enumerate(est.get("staticPolicies", {}).items(), 1):
        policy = _policy(source, text, body)
        if policy is None:
            errors.append(f"{source}: policy #{n} in the file has no @id(...)")
            continue
        unknown = sorted(policy.redactions - REDACTABLE)
        if unknown:
            where = f"{source}: line {policy.line}" if policy.line else source
            errors.append(
                f"{where}: policy {policy.id!r}: @redact names unknown detectors "
                f"{', '.join(unknown)} (known: blocklist, pii, secrets and the kinds of "
                "pii and secrets in docs/guardrails.md)"
            )
        positional[cedar_id] = policy.id
        policies.append(policy)
    if not errors:
        errors += _schema_errors(source, text, schema, positional, policies)
    return policies, errors


def _policy(source: str, text: str, body: Mapping[str, object]) -> Policy | None:
    notes = body.get("annotations")
    notes = notes if isinstance(notes, Mapping) else {}
    policy_id = notes.get("id")
    if not isinstance(policy_id, str) or not policy_id:
        return None
    redact = str(notes.get("redact") or "")
    constraint = str(notes.get("constraint") or "")
    return Policy(
        id=policy_id,
        effect=str(body.get("effect")),
        actions=_actions(body.get("action")),
        redactions=frozenset(r for r in _SPLIT.split(redact) if r),
        constraints=(constraint,) if constraint else (),
        source=source,
        line=_line_of_id(text, policy_id),
        est=body,
        soft="soft" in notes,
    )


def _actions(scope: object) -> frozenset[str] | None:
    if not isinstance(scope, Mapping):
        return None
    named = scope.get("entities") or ([scope["entity"]] if "entity" in scope else None)
    if scope.get("op") not in ("==", "in") or not isinstance(named, list):
        return None
    return frozenset(str(e.get("id")) for e in named if isinstance(e, Mapping))


def _schema_errors(
    source: str,
    text: str,
    schema: cedarpy.Schema,
    positional: Mapping[str, str],
    policies: list[Policy],
) -> list[str]:
    result = cedarpy.validate_policies(text, schema)
    if result.validation_passed:
        return []
    lines = {p.id: p.line for p in policies}
    out = []
    for error in result.errors:
        policy_id = positional.get(error.policy_id, error.policy_id)
        message = error.error
        if error.policy_id:
            message = message.replace(f"`{error.policy_id}`", f"`{policy_id}`")
        line = lines.get(policy_id, 0)
        where = f"{source}: line {line}" if line else source
        if error.policy_id:
            where += f": policy {policy_id!r}"
        out.append(f"{where}: {message}")
    return out


def _line_of_id(text: str, policy_id: str) -> int:
    for match in _ID_ANNOTATION.finditer(text):
        if match.group(1) == policy_id:
            return text.count("\n", 0, match.start()) + 1
    return 0


def _parse_error_line(text: str) -> int:
    """The first line at which a prefix of the file fails other than by ending early."""
    lines = text.splitlines(keepends=True)
    if len(lines) > _LOCATE_MAX_LINES:
        return 0
    for n in range(1, len(lines) + 1):
        try:
            cedarpy.policies_to_json_str("".join(lines[:n]))
        except ValueError as exc:
            if "end of input" not in str(exc):
                return n
    return 0
