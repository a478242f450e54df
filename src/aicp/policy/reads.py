"""Which facts a policy set reads, found in Cedar's JSON form of its policies.

The engine keys its caches on these facts alone (a budget that changes on
every request does not defeat the cache when no policy looks at it) and sends
Cedar only these attributes (parsing is most of Cedar's cost per call). The
walk over-approximates: a variable used other than as `var.attr` or
`var has attr` (compared, `in`, passed whole) counts as read in full.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, fields
from operator import attrgetter

from aicp.policy.model import PrincipalFacts, RequestFacts, RouteFacts

#: Cedar attribute of `Aicp::Key` -> the PrincipalFacts field it comes from.
KEY_ATTRS = {
    "trust_level": "trust_level",
    "is_admin": "is_admin",
    "team": "team_id",
    "user": "user_id",
    "service_account": "service_account_id",
}
ROUTE_ATTRS = tuple(f.name for f in fields(RouteFacts))
CONTEXT_ATTRS = tuple(f.name for f in fields(RequestFacts))
_PRINCIPAL_FIELDS = tuple(f.name for f in fields(PrincipalFacts))

Getter = Callable[[object], tuple[object, ...]]


def _getter(names: tuple[str, ...]) -> Getter:
    if not names:
        return lambda obj: ()
    if len(names) == 1:
        one = attrgetter(names[0])
        return lambda obj: (one(obj),)
    many: Getter = attrgetter(*names)  # a tuple for two or more names
    return many


@dataclass(frozen=True, slots=True)
class Reads:
    """The attributes (Cedar names) policies read, and whether an entity is used whole."""

    key_attrs: tuple[str, ...] = ()
    principal_whole: bool = False  # its id or parents matter
    route_attrs: tuple[str, ...] = ()
    context_attrs: tuple[str, ...] = ()
    context_whole: bool = False  # `context` used other than by attribute

    def principal_key(self) -> Getter:
        if self.principal_whole:
            return _getter(_PRINCIPAL_FIELDS)
        return _getter(tuple(KEY_ATTRS[a] for a in self.key_attrs))

    def route_key(self) -> Getter:
        return _getter(self.route_attrs)

    def request_key(self) -> Getter:
        return _getter(self.context_attrs)


def reads_of(policies: Iterable[Mapping[str, object]]) -> Reads:
    """What a set of policies (Cedar JSON, one mapping each) reads."""
    attrs: dict[str, set[str]] = {"principal": set(), "resource": set(), "context": set()}
    whole: set[str] = set()
    for policy in policies:
        for var in ("principal", "resource"):
            scope = policy.get(var)
            if isinstance(scope, Mapping) and not scope_is_blind(scope):
                whole.add(var)
        _walk(policy.get("conditions"), attrs, whole)
    key = KEY_ATTRS if "principal" in whole else attrs["principal"] & KEY_ATTRS.keys()
    route = ROUTE_ATTRS if "resource" in whole else attrs["resource"]
    context = CONTEXT_ATTRS if "context" in whole else attrs["context"]
    return Reads(
        key_attrs=tuple(a for a in KEY_ATTRS if a in key),
        principal_whole="principal" in whole,
        route_attrs=tuple(a for a in ROUTE_ATTRS if a in route),
        context_attrs=tuple(a for a in CONTEXT_ATTRS if a in context),
        context_whole="context" in whole,
    )


def scope_is_blind(scope: Mapping[str, object]) -> bool:
    """`principal` or `resource` unconstrained, or only by type (which never varies)."""
    return scope.get("op") == "All" or (scope.get("op") == "is" and "in" not in scope)


def _walk(node: object, attrs: dict[str, set[str]], whole: set[str]) -> None:
    if isinstance(node, list):
        for item in node:
            _walk(item, attrs, whole)
        return
    if not isinstance(node, Mapping):
        return
    for op in (".", "has"):
        inner = node.get(op)
        if isinstance(inner, Mapping) and isinstance(inner.get("attr"), str):
            left = inner.get("left")
            if isinstance(left, Mapping) and left.keys() == {"Var"} and left["Var"] in attrs:
                attrs[str(left["Var"])].add(str(inner["attr"]))
                return
    if node.keys() == {"Var"}:
        whole.add(str(node["Var"]))
        return
    for value in node.values():
        _walk(value, attrs, whole)
