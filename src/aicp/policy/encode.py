"""Facts as Cedar's JSON: entities, request context and requests.

Only what the policies read is encoded (see `reads`): parsing is most of
what a Cedar call costs. For the same reason the context normally rides on
the principal entity: Cedar parses a request's context once per request, but
the entities once per batch, and every request of a decision shares one
context. `carry_context` rewrites a policy's `context.x` to
`principal.aicp_context.x` (same value, same errors), which is sound unless
a policy uses `context` whole; then the context is sent as Cedar's context.
Policies are validated as their authors wrote them, before any rewriting.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import orjson

from aicp.policy.model import PrincipalFacts, RequestFacts, RouteFacts
from aicp.policy.reads import KEY_ATTRS, Reads

Json = dict[str, object]

_PARENTS: tuple[tuple[str, str], ...] = (
    ("user_id", "Aicp::User"),
    ("team_id", "Aicp::Team"),
    ("service_account_id", "Aicp::ServiceAccount"),
)


#: The principal's attribute that carries the request context (not in the schema).
CARRIED = "aicp_context"
_CARRIED_CONTEXT = {".": {"left": {"Var": "principal"}, "attr": CARRIED}}


def carry_context(node: Any) -> Any:
    """A copy of a policy's Cedar JSON reading the context from the principal."""
    if isinstance(node, list):
        return [carry_context(item) for item in node]
    if not isinstance(node, Mapping):
        return node
    if node.keys() == {"Var"} and node["Var"] == "context":
        return _CARRIED_CONTEXT
    return {k: carry_context(v) for k, v in node.items()}


def uid(type_: str, id_: str) -> Json:
    return {"type": type_, "id": id_}


def principal_entities(
    principal: PrincipalFacts, reads: Reads, context: Json | None = None
) -> list[Json]:
    """The key (with what policies read of it, and a carried `context`) and, when its
    identity matters, its parents."""
    if not reads.key_attrs and not reads.principal_whole and context is None:
        return []
    attrs = {a: getattr(principal, KEY_ATTRS[a]) for a in reads.key_attrs}
    if context is not None:
        attrs[CARRIED] = context
    parents = []
    if reads.principal_whole:
        parents = [uid(t, getattr(principal, f)) for f, t in _PARENTS if getattr(principal, f)]
    key: Json = {"uid": uid("Aicp::Key", principal.key_id), "attrs": attrs, "parents": parents}
    return [key, *(_bare(p) for p in parents)]


def _bare(entity: Json) -> Json:
    return {"uid": entity, "attrs": {}, "parents": []}


def route_entity(route: RouteFacts, reads: Reads) -> Json:
    attrs = {a: getattr(route, a) for a in reads.route_attrs}
    return {"uid": uid("Aicp::Route", route.key), "attrs": attrs, "parents": []}


def tool_entity(name: str, production: bool) -> Json:
    attrs = {"name": name, "production": production}
    return {"uid": uid("Aicp::Tool", name), "attrs": attrs, "parents": []}


def context_record(request: RequestFacts, attrs: Iterable[str]) -> Json:
    context: Json = {}
    for name in attrs:
        value = getattr(request, name)
        context[name] = sorted(value) if isinstance(value, frozenset) else value
    return context


def context_json(request: RequestFacts, attrs: Iterable[str]) -> str:
    return orjson.dumps(context_record(request, attrs)).decode()


def entities_json(entities: Iterable[Json]) -> str:
    return orjson.dumps(list(entities)).decode()


def requests(
    principal: PrincipalFacts, action: str, resources: Iterable[Json], context: str | None
) -> list[Json]:
    """One Cedar request per resource uid, all sharing the principal and context."""
    one = request(principal, action, {}, context)
    return [{**one, "resource": r} for r in resources]


def request(principal: PrincipalFacts, action: str, resource: Json, context: str | None) -> Json:
    """A Cedar request (`context` None: none, it rides on the principal)."""
    asked: Json = {"principal": uid("Aicp::Key", principal.key_id)}
    asked["action"] = uid("Aicp::Action", action)
    asked["resource"] = resource
    if context is not None:
        asked["context"] = context
    return asked
