"""Policy unit tests: YAML cases of a principal, a request, routes or tools, and what to expect.

    - name: legal data never goes to an external route
      principal: {key_id: k1, trust_level: 2}
      request: {task_class: legal, sensitivity: confidential}
      routes:
        - {key: openai/gpt-4o, locality: external}     # provider, model: from the key
        - {key: ollama/llama3, locality: local}
      expect:
        allowed: [ollama/llama3]                        # compared as sets
        forbidden: {openai/gpt-4o: [no-external-legal]} # or a list of keys
        preferred: [ollama/llama3]                      # in route order
        redactions: [pii]                               # optional, as is constraints
      tools: [{name: deploy, production: true}]
      expect: {tools: {deploy: {allowed: false, policies: [production-tools-need-override]}}}

Unknown keys and wrong types are errors naming the file, the case and the key.
"""

from __future__ import annotations

import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TypeVar

import yaml

from aicp.errors import ConfigError
from aicp.policy.engine import PolicyEngine
from aicp.policy.model import Decision, PrincipalFacts, RequestFacts, RouteFacts
from aicp.policy.policyset import PolicySet

T = TypeVar("T")
_CASE_KEYS = {"name", "principal", "request", "routes", "tools", "expect"}
_EXPECT_KEYS = {"allowed", "forbidden", "preferred", "redactions", "constraints", "tools"}


@dataclass(frozen=True, slots=True)
class Case:
    name: str
    source: str  # "file #n"
    principal: PrincipalFacts
    request: RequestFacts
    routes: tuple[RouteFacts, ...]
    tools: tuple[tuple[str, bool], ...]
    expect: Mapping[str, object]


@dataclass(frozen=True, slots=True)
class CaseResult:
    case: Case
    problems: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.problems

    def line(self) -> str:
        if self.ok:
            return f"pass  {self.case.source}: {self.case.name}"
        return f"FAIL  {self.case.source}: {self.case.name}: " + "; ".join(self.problems)


def case_files(directory: Path) -> list[Path]:
    """Every *.yaml (and *.yml) under DIR/tests/."""
    tests = directory / "tests"
    return sorted(p for p in (*tests.rglob("*.yaml"), *tests.rglob("*.yml")) if p.is_file())


def run_cases(policies: PolicySet, files: Sequence[Path]) -> list[CaseResult]:
    engine = PolicyEngine(policies)
    return [run_case(engine, case) for path in files for case in load_cases(path)]


def run_case(engine: PolicyEngine, case: Case) -> CaseResult:
    problems: list[str] = []
    expect = case.expect
    if case.routes:
        decision = engine.decide(case.principal, case.routes, case.request)
        problems += _route_problems(expect, decision)
    elif any(k in expect for k in _EXPECT_KEYS - {"tools"}):
        problems.append("expects a route decision but gives no routes")
    wanted = expect.get("tools")
    if isinstance(wanted, Mapping):
        got = engine.authorize_tools(case.principal, case.tools, case.request)
        problems += _tool_problems(wanted, got)
    return CaseResult(case, tuple(problems))


def _route_problems(expect: Mapping[str, object], decision: Decision) -> list[str]:
    out = []
    checks = {
        "allowed": (_set(expect.get("allowed")), set(decision.allowed)),
        "preferred": (_list(expect.get("preferred")), list(decision.preferred)),
        "redactions": (_set(expect.get("redactions")), set(decision.redactions)),
        "constraints": (_set(expect.get("constraints")), set(decision.constraints)),
    }
    for name, (wanted, got) in checks.items():
        if name in expect and wanted != got:
            out.append(f"{name}: expected {_show(wanted)}, got {_show(got)}")
    forbidden = expect.get("forbidden")
    got_forbidden = {k: set(v) for k, v in decision.forbidden.items()}
    if isinstance(forbidden, Mapping):
        wanted_forbidden = {str(k): _set(v) for k, v in forbidden.items()}
        if wanted_forbidden != got_forbidden:
            out.append(f"forbidden: expected {_show(wanted_forbidden)}, got {_show(got_forbidden)}")
    elif "forbidden" in expect and _set(forbidden) != set(got_forbidden):
        out.append(f"forbidden: expected {_show(_set(forbidden))}, got {_show(set(got_forbidden))}")
    return out


def _tool_problems(
    wanted: Mapping[object, object], got: Mapping[str, tuple[bool, tuple[str, ...]]]
) -> list[str]:
    out = []
    for name, spec in wanted.items():
        if str(name) not in got:
            out.append(f"tools.{name}: not among the case's tools")
            continue
        allowed, ids = got[str(name)]
        spec = spec if isinstance(spec, Mapping) else {}
        if "allowed" in spec and spec["allowed"] != allowed:
            out.append(f"tools.{name}.allowed: expected {spec['allowed']}, got {allowed}")
        if "policies" in spec and _set(spec["policies"]) != set(ids):
            out.append(
                f"tools.{name}.policies: expected {_show(_set(spec['policies']))}, "
                f"got {_show(set(ids))}"
            )
    return out


def _set(value: object) -> set[str]:
    return {str(v) for v in value} if isinstance(value, list) else set()


def _list(value: object) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list) else []


def _show(value: object) -> str:
    if isinstance(value, set):
        return "[" + ", ".join(sorted(value)) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_show(v)}" for k, v in sorted(value.items())) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(value) + "]"
    return str(value)


def load_cases(path: Path) -> list[Case]:
    """The cases in one YAML file (a list of mappings)."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read the policy test cases: {exc}") from None
    if data is None:
        return []
    if not isinstance(data, list):
        raise ConfigError(f"{path}: policy test cases are a YAML list of mappings")
    return [_case(f"{path.name} #{n}", item) for n, item in enumerate(data, 1)]


def _case(source: str, item: object) -> Case:
    where = source
    if not isinstance(item, Mapping):
        raise ConfigError(f"{where}: a case is a mapping")
    _no_unknown(where, item, _CASE_KEYS)
    name = item.get("name")
    if not isinstance(name, str) or not name:
        raise ConfigError(f"{where}: `name` is required")
    where = f"{where} ({name})"
    expect = item.get("expect")
    if not isinstance(expect, Mapping) or not expect:
        raise ConfigError(f"{where}: `expect` is required (a mapping)")
    _no_unknown(f"{where}: expect", expect, _EXPECT_KEYS)
    principal = {"key_id": "anonymous", **_mapping(where, "principal", item)}
    routes = [
        _route(f"{where}: routes[{i}]", r) for i, r in enumerate(_items(where, "routes", item))
    ]
    tools = [_tool(f"{where}: tools[{i}]", t) for i, t in enumerate(_items(where, "tools", item))]
    return Case(
        name=name,
        source=source,
        principal=_facts(f"{where}: principal", PrincipalFacts, principal),
        request=_facts(f"{where}: request", RequestFacts, _mapping(where, "request", item)),
        routes=tuple(routes),
        tools=tuple(tools),
        expect=expect,
    )


def _route(where: str, item: object) -> RouteFacts:
    if not isinstance(item, Mapping) or not isinstance(item.get("key"), str):
        raise ConfigError(f"{where}: a route is a mapping with a `key`")
    provider, _, model = str(item["key"]).partition("/")
    return _facts(where, RouteFacts, {"provider": provider, "model": model, **item})


def _tool(where: str, item: object) -> tuple[str, bool]:
    if not isinstance(item, Mapping) or not isinstance(item.get("name"), str):
        raise ConfigError(f"{where}: a tool is a mapping with a `name`")
    _no_unknown(where, item, {"name", "production"})
    production = item.get("production", False)
    if not isinstance(production, bool):
        raise ConfigError(f"{where}: `production` is true or false")
    return str(item["name"]), production


def _mapping(where: str, key: str, item: Mapping[str, object]) -> Mapping[str, object]:
    value = item.get(key) or {}
    if not isinstance(value, Mapping):
        raise ConfigError(f"{where}: `{key}` is a mapping")
    return value


def _items(where: str, key: str, item: Mapping[str, object]) -> list[object]:
    value = item.get(key) or []
    if not isinstance(value, list):
        raise ConfigError(f"{where}: `{key}` is a list")
    return value


def _no_unknown(where: str, item: Mapping[str, object], known: set[str]) -> None:
    unknown = sorted(str(k) for k in item if k not in known)
    if unknown:
        raise ConfigError(
            f"{where}: unknown key {unknown[0]!r} (known: {', '.join(sorted(known))})"
        )


def _facts(where: str, cls: type[T], data: Mapping[str, object]) -> T:
    """A facts dataclass from YAML, each value checked against the field's type."""
    hints = typing.get_type_hints(cls)
    names = {f.name for f in fields(cls)}  # type: ignore[arg-type]
    _no_unknown(where, data, names)
    values: dict[str, object] = {}
    for name, value in data.items():
        kind = hints[name]
        is_int = isinstance(value, int) and not isinstance(value, bool)
        if (kind is bool and isinstance(value, bool)) or (kind is int and is_int):
            values[name] = value
        elif kind is str and isinstance(value, str | int) and not isinstance(value, bool):
            values[name] = str(value)
        elif kind == frozenset[str] and isinstance(value, list):
            values[name] = frozenset(str(v) for v in value)
        else:
            raise ConfigError(f"{where}: `{name}` has the wrong type ({type(value).__name__})")
    try:
        return cls(**values)
    except TypeError as exc:  # a required field missing
        raise ConfigError(f"{where}: {exc}") from None
