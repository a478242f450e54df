"""Leaving out, for one principal and context, the policies no route can change.

Cedar evaluates every policy of a set for every request (about 2 µs each), and
most policies test the request before the route: `context.task_class ==
"legal" && resource.locality == "external"` is false for every route of a code
request. A policy's condition is Cedar's `&&` of its scope and its `when`
bodies (an `unless` body negated), evaluated left to right, and `&&` stops at
a false operand without evaluating (or failing on) the rest. The *guard* of a
policy is its principal scope and the longest prefix of those operands that
cannot see a route (no `resource`, no entity literal but the principal's kinds
and actions). One Cedar request asks every guard, as a permit (so that Cedar
reports each one that holds):

- guard false: the policy matches no route and fails on none: left out;
- guard true and the whole policy (its resource scope names a type at most):
  it matches every route; its id joins each route's answer by Cedar's rule
  (allowed iff a permit and no forbid matched; a denial names the forbids);
- guard true otherwise: asked per route without the guard (which holds);
- guard failed to evaluate: asked per route as written, so Cedar reports the
  same error as ever.

Guards see only the principal's entities and the context, so their outcomes
are cached by those; the Cedar set for each pattern of outcomes is built once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import reduce
from typing import Any, Protocol

from aicp.policy.ask import FAILED_POLICY, Answer, CedarSet, Entities, ask, policy_set
from aicp.policy.cache import Lru
from aicp.policy.reads import scope_is_blind
from aicp.policy.slots import (
    ALL,
    BATCH,
    MAX_SLOTS,
    ROUTE_FREE_TYPES,
    SlotSet,
    read,
    slot_set,
    slottable,
)

Json = dict[str, Any]
_INPUTS_CACHE = 1024  # principal + context combinations whose guard outcomes are kept
_SETS_CACHE = 64  # patterns of guard outcomes whose Cedar sets are kept
#: Slot sets kept per policy set, bypasses included (by pattern and route count):
#: each takes about 1.4 ms and 130 KB to build for 4 policies and 10 routes, about
#: 10 ms and 600 KB for 9 and 16.
_COPIES_CACHE = 32
#: Fewer routes are asked unpruned unless their guards' outcome is known: measured, the
#: guard request costs more than it saves below this.
_MIN_ROUTES = 4
_DROP, _HOIST, _TRIM, _KEEP = "drop", "hoist", "trim", "keep"


class Inputs(Protocol):
    """A batch of routes as Cedar is asked about it, each part made when first used."""

    first: Json  # the request for the first route
    n: int  # how many routes

    def entities(self, slotted: bool) -> Entities:
        """The principal's entities with the batch entity (see slots) or the routes'."""

    def per_route(self) -> list[Json]:
        """One request per route."""


class Pruned:
    """What to ask per route, and the route-independent policies known to match."""

    __slots__ = ("_copies", "cedar", "forbids", "permits", "policies", "slottable")

    def __init__(
        self,
        copies: Copies,
        policies: Mapping[str, Json],
        cedar: CedarSet | None,
        permits: tuple[str, ...] = (),
        forbids: tuple[str, ...] = (),
    ) -> None:
        self._copies = copies  # slot sets (see slots), shared by the pruner's sets
        self.policies = policies  # what `cedar` holds, by id
        self.cedar = cedar  # None: no policy is left to ask
        self.permits = permits
        self.forbids = forbids
        #: Whether its routes can be asked all at once (see slots).
        self.slottable = slottable(policies)

    def ask(self, inputs: Inputs) -> list[Answer]:
        """Each route's answer from the full set."""
        n = inputs.n
        if self.cedar is None:
            return [self.join((False, [], []))] * n
        slots = self._slot_set(n)
        found = None
        if slots is not None:
            batch = {**inputs.first, "resource": BATCH}
            found = read(slots, ask(slots.cedar, inputs.entities(True), [batch])[0], n)
        if found is None:
            found = ask(self.cedar, inputs.entities(False), inputs.per_route())
        return [self.join(a) for a in found]

    def _slot_set(self, n: int) -> SlotSet | None:
        if n > MAX_SLOTS or not self.slottable:
            return None
        found = self._copies.get((self, n))
        if found is None:
            found = slot_set(self.policies, n)
            self._copies.put((self, n), found)
        return found

    def join(self, answer: Answer) -> Answer:
        """One route's answer from the full set, given the answer from `cedar`."""
        allowed, reasons, errors = answer
        if self.forbids or (not allowed and reasons):
            return False, [*self.forbids, *([] if allowed else reasons)], errors
        permits = [*self.permits, *(reasons if allowed else [])]
        return bool(permits), permits, errors


@dataclass(frozen=True, slots=True)
class _Split:
    guard: Json  # a permit that holds iff the policy's guard does
    whole: bool  # the guard is the whole policy
    rest: Json  # the policy without its guard, asked when the guard holds


Copies = Lru[tuple[Pruned, int], SlotSet]


def copies_cache() -> Copies:
    """Where pruners keep their slot sets; one per policy set bounds their memory."""
    return Lru(_COPIES_CACHE)


class Pruner:
    """Guards and pruned Cedar sets for one set of policies (id -> Cedar JSON)."""

    def __init__(self, policies: Mapping[str, Json], full: CedarSet, copies: Copies) -> None:
        """`full` is the Cedar set of all of `policies` (id -> Cedar JSON)."""
        self._policies = policies
        self._copies = copies
        self._all = Pruned(self._copies, policies, full)
        #: Whether routes can be asked all at once (see slots), whatever is pruned.
        self.slottable = self._all.slottable
        self._splits = {i: s for i, est in policies.items() if (s := _split(est)) is not None}
        self._guards = policy_set({i: s.guard for i, s in self._splits.items()})
        self._by_inputs: Lru[str, Pruned] = Lru(_INPUTS_CACHE)
        self._by_states: Lru[tuple[str, ...], Pruned] = Lru(_SETS_CACHE)

    def prune(self, inputs: Inputs, key: str) -> Pruned:
        """The set for the principal and context of `inputs`; `key` is their Cedar JSON."""
        if not self._splits:
            return self._all
        found = self._by_inputs.get(key)
        if found is None and inputs.n < _MIN_ROUTES:
            return self._all  # asking the guards would cost more than it saves
        if found is None:
            entities = inputs.entities(self.slottable and inputs.n <= MAX_SLOTS)
            ((allowed, held, errors),) = ask(self._guards, entities, [inputs.first])
            states = self._states(set(held) if allowed else set(), errors)
            found = self._by_states.get(states)
            if found is None:
                found = self._build(dict(zip(self._splits, states, strict=True)))
                self._by_states.put(states, found)
            self._by_inputs.put(key, found)
        return found

    def _states(self, held: set[str], errors: list[str]) -> tuple[str, ...]:
        failed = {m.group(1) for e in errors if (m := FAILED_POLICY.search(e))} if errors else set()
        if len(failed) < len(errors) or not failed <= self._splits.keys():
            return (_KEEP,) * len(self._splits)  # an error not pinned on a guard: ask all
        return tuple(
            _KEEP if i in failed else _DROP if i not in held else _HOIST if s.whole else _TRIM
            for i, s in self._splits.items()
        )

    def _build(self, states: Mapping[str, str]) -> Pruned:
        if all(s == _KEEP for s in states.values()):
            return self._all
        chosen: dict[str, Json] = {}
        hoisted: dict[str, list[str]] = {"permit": [], "forbid": []}
        for pid, est in self._policies.items():
            state = states.get(pid, _KEEP)
            if state == _HOIST:
                hoisted[est["effect"]].append(pid)
            elif state != _DROP:
                chosen[pid] = self._splits[pid].rest if state == _TRIM else est
        cedar = policy_set(chosen) if chosen else None
        permits, forbids = tuple(hoisted["permit"]), tuple(hoisted["forbid"])
        return Pruned(self._copies, chosen, cedar, permits, forbids)


def _split(est: Mapping[str, Any]) -> _Split | None:
    """The policy's guard, or None when it has none worth asking."""
    parts = _conjuncts(est.get("conditions") or [])
    n = 0
    while n < len(parts) and _route_free(parts[n]):
        n += 1
    principal, resource = est.get("principal", ALL), est.get("resource", ALL)
    typed = scope_is_blind(resource)
    whole = n == len(parts) and typed
    if not (whole or n or principal.get("op") != "All"):
        return None
    guard = {
        "effect": "permit",
        "principal": principal,
        "action": est.get("action", ALL),
        "resource": resource if typed else ALL,
        "conditions": _when(parts[:n]),
    }
    rest = {**est, "principal": ALL, "conditions": _when(parts[n:])}
    return _Split(guard, whole, rest)


def _conjuncts(conditions: Sequence[Mapping[str, Any]]) -> list[Json]:
    """The operands of the condition's `&&`, in the order Cedar evaluates them."""
    parts: list[Json] = []
    for clause in conditions:
        body = clause["body"]
        parts += _flatten(body) if clause["kind"] == "when" else [{"!": {"arg": body}}]
    return parts


def _flatten(node: Json) -> list[Json]:
    if node.keys() == {"&&"}:
        return _flatten(node["&&"]["left"]) + _flatten(node["&&"]["right"])
    return [node]


def _when(parts: list[Json]) -> list[Json]:
    if not parts:
        return []
    body = reduce(lambda left, right: {"&&": {"left": left, "right": right}}, parts)
    return [{"kind": "when", "body": body}]


def _route_free(node: object) -> bool:
    if isinstance(node, list):
        return all(_route_free(item) for item in node)
    if not isinstance(node, Mapping):
        return True
    if node.get("Var") == "resource":
        return False
    entity = node.get("__entity")
    if isinstance(entity, Mapping) and entity.get("type") not in ROUTE_FREE_TYPES:
        return False
    return all(_route_free(value) for value in node.values())
