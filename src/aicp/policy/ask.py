"""One batch of Cedar requests, and its answers as plain tuples.

This calls cedarpy's extension module directly: its public wrapper decodes
each answer with the stdlib `json` and wraps it in objects, which costs more
per request (about 5 µs) than most policies do. The answers are the same JSON
documents the wrapper reads (`decision`, `diagnostics.reason`,
`diagnostics.errors`).

`cedarpy._internal` is private: its functions and answer format may change in
any release. What protects this module is the pin `cedarpy>=4.12,<4.13` in
pyproject.toml; before widening it, run tests/policy (test_equivalence compares
every decision with the public `cedarpy.is_authorized`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import orjson
from cedarpy import _internal  # private: see the module docstring

Entities = _internal.Entities
CedarSet = _internal.PolicySet
#: allowed, ids of the satisfied policies Cedar reports, error messages.
Answer = tuple[bool, list[str], list[str]]
#: The policy an error message of Cedar's names (group 1).
FAILED_POLICY = re.compile(r"policy `([^`]*)`")


def entities(text: str) -> Entities:
    return _internal.Entities.from_json_str(text, None)


def policy_set(policies: Mapping[str, object]) -> CedarSet:
    """A Cedar set from policies in Cedar's JSON form, by id."""
    body = {"staticPolicies": dict(policies), "templates": {}, "templateLinks": []}
    return _internal.PolicySet.from_json_str(orjson.dumps(body).decode())


def ask(cedar_set: CedarSet, entities: Entities | str, asked: list[dict[str, Any]]) -> list[Answer]:
    """Cedar's answer to each request (which carry no context or a JSON string one)."""
    return [_answer(s) for s in _internal.is_authorized_batch(asked, cedar_set, entities)]


def _answer(text: str) -> Answer:
    found = orjson.loads(text)
    diagnostics = found.get("diagnostics") or {}
    allowed = found.get("decision") == "Allow"
    return allowed, diagnostics.get("reason") or [], diagnostics.get("errors") or []
