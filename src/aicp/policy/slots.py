"""All the routes of a decision in one Cedar request.

Cedar's fixed cost per request (about 7 µs: reading the ids, writing the
answer) is several times a policy's (about 1 µs). So when policies read a
route only by attribute (`resource.x`, `resource has x`, never its id), the
attributes of a batch's routes all go on one resource entity, route `i`'s `x`
as `"i.x"` (no attribute name has a dot), and each policy is copied once per
route with `resource.x` read as `resource["i.x"]`: the same values. The copies
are all permits, so Cedar names every copy that matched, and each route's
answer is rebuilt by Cedar's rule: a matching forbid denies (the answer names
the forbids), else a matching permit allows (naming the permits), else
nothing allows. An answer with errors is not rebuilt (`None`): the caller asks
route by route, so that errors read exactly as they always did.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from aicp.policy.ask import Answer, CedarSet, policy_set

Json = dict[str, Any]
#: Not in the schema, so no policy can name it.
BATCH = {"type": "Aicp::RouteBatch", "id": "routes"}
#: Entity types whose literals never name a route (the batch has no route entities).
ROUTE_FREE_TYPES = frozenset(
    {"Aicp::Key", "Aicp::User", "Aicp::Team", "Aicp::ServiceAccount", "Aicp::Action"}
)
#: Beyond this many routes a batch is asked route by route (copies cost build time and
#: memory: about 40 µs and 4 KB each).
MAX_SLOTS = 16
ALL: Json = {"op": "All"}
_ROUTE_TYPE = {"op": "is", "entity_type": "Aicp::Route"}


@dataclass(frozen=True, slots=True)
class SlotSet:
    cedar: CedarSet
    #: copy id -> route index, and the (policy id, forbid?) whose condition it is
    copies: Mapping[str, tuple[int, tuple[tuple[str, bool], ...]]]


def slottable(policies: Mapping[str, Json]) -> bool:
    """Whether every policy reads the route only by attribute (its resource scope names
    the route type at most) and names no route entity."""
    return all(
        est.get("resource", ALL) in (ALL, _ROUTE_TYPE) and _by_attribute(est.get("conditions"))
        for est in policies.values()
    )


def slot_set(policies: Mapping[str, Json], n: int) -> SlotSet:
    """Copies of `policies` (`slottable`) for `n` routes; policies with the same scope
    and condition (as pruning often leaves them) share their copies."""
    alike: dict[bytes, list[str]] = {}
    for pid, est in policies.items():
        shape = {k: est.get(k, ALL) for k in ("principal", "action")}
        shape["conditions"] = est.get("conditions") or []
        alike.setdefault(orjson.dumps(shape, option=orjson.OPT_SORT_KEYS), []).append(pid)
    ests: dict[str, Json] = {}
    copies: dict[str, tuple[int, tuple[tuple[str, bool], ...]]] = {}
    for group in alike.values():
        est = policies[group[0]]
        named = tuple((pid, policies[pid]["effect"] == "forbid") for pid in group)
        for i in range(n):
            copy = f"{i}/{group[0]}"
            ests[copy] = {
                "effect": "permit",
                "principal": est.get("principal", ALL),
                "action": est.get("action", ALL),
                "resource": ALL,
                "conditions": _in_slot(est.get("conditions") or [], f"{i}."),
            }
            copies[copy] = (i, named)
    return SlotSet(policy_set(ests), copies)


def batch_names(attrs: Sequence[str], n: int) -> list[str]:
    """The batch entity's attribute names for `n` routes with attributes `attrs`."""
    return [f"{i}.{a}" for i in range(n) for a in attrs]


def batch_entity(names: Sequence[str], values: Iterable[object]) -> Json:
    """The resource of the one request: route `i`'s attribute `x` is its `"i.x"`;
    `values` are the routes' attributes in the order of `batch_names`."""
    return {"uid": BATCH, "attrs": dict(zip(names, values, strict=True)), "parents": []}


def read(slots: SlotSet, answer: Answer, n: int) -> list[Answer] | None:
    """Each route's answer as if asked alone; None when Cedar reported errors."""
    allowed, held, errors = answer
    if errors:
        return None
    permits: list[list[str]] = [[] for _ in range(n)]
    forbids: list[list[str]] = [[] for _ in range(n)]
    for copy in held if allowed else ():
        i, named = slots.copies[copy]
        for pid, forbid in named:
            (forbids if forbid else permits)[i].append(pid)
    return [
        (False, f, []) if f else (bool(p), p, []) for p, f in zip(permits, forbids, strict=True)
    ]


def _in_slot(node: Any, prefix: str) -> Any:
    """`node` with each `resource.x` and `resource has x` naming `prefix + x`."""
    if isinstance(node, list):
        return [_in_slot(item, prefix) for item in node]
    if not isinstance(node, Mapping):
        return node
    for op in (".", "has"):
        inner = node.get(op)
        if isinstance(inner, Mapping) and inner.get("left") == {"Var": "resource"}:
            return {op: {**inner, "attr": prefix + inner["attr"]}}
    return {k: _in_slot(v, prefix) for k, v in node.items()}


def _by_attribute(node: Any) -> bool:
    """No `resource` in `node` but as the left side of `.` or `has`, and no literal
    of an entity type that could be a route's."""
    if isinstance(node, list):
        return all(_by_attribute(item) for item in node)
    if not isinstance(node, Mapping):
        return True
    if node.keys() == {"Var"} and node["Var"] == "resource":
        return False
    entity = node.get("__entity")
    if isinstance(entity, Mapping) and entity.get("type") not in ROUTE_FREE_TYPES:
        return False
    for op in (".", "has"):
        inner = node.get(op)
        if isinstance(inner, Mapping) and inner.get("left") == {"Var": "resource"}:
            return all(_by_attribute(v) for k, v in inner.items() if k != "left")
    return all(_by_attribute(value) for value in node.values())
