"""Cedar policy sets built for evaluation, one per action.

Cedar's cost per request grows with the number of policies in the set,
whether or not their scope matches, so each action gets only the policies
that can apply to it. And since a request costs more than a policy, `prefer`
permits ride along in the `route` set when that changes no answer: when every
policy for `prefer` is a permit scoped to exactly `prefer` that does not look
at `action`. A route is then allowed iff a `route` permit matched and no
forbid, and preferred iff a `prefer` permit matched as well; a denied request
reports only forbids, so the rule for `route` is the same as without them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from aicp.policy.ask import CedarSet, policy_set
from aicp.policy.encode import carry_context
from aicp.policy.files import Policy
from aicp.policy.prune import Copies, Pruner

#: The actions of the schema.
ACTIONS = ("route", "prefer", "use_tool", "admin")
_ROUTE_SCOPE = {"op": "==", "entity": {"type": "Aicp::Action", "id": "route"}}


@dataclass(frozen=True, slots=True)
class Compiled:
    """Cedar handles for one set of policies, by action."""

    by_action: Mapping[str, CedarSet]
    carried: bool  # the request context rides on the principal (see encode.carry_context)
    #: Ids of the `prefer` permits merged into the `route` set; None: ask `prefer` apart.
    prefer_in_route: frozenset[str] | None = None
    #: Leaves out of the `route` set what a request's principal and context rule out.
    route_pruner: Pruner | None = None  # None: no `route` set

    def get(self, action: str) -> CedarSet | None:
        """None when no policy can apply to `action` (so nothing is permitted)."""
        return self.by_action.get(action)


def compile_policies(policies: Sequence[Policy], carried: bool, copies: Copies) -> Compiled:
    """The Cedar sets; the `route` set's pruner keeps its slot sets in `copies`."""
    route = [p for p in policies if p.applies_to("route")]
    prefer = [p for p in policies if p.applies_to("prefer")]
    merged = None
    if route and prefer and all(_mergeable(p) for p in prefer):
        route += [replace(p, est={**p.est, "action": _ROUTE_SCOPE}) for p in prefer]
        merged = frozenset(p.id for p in prefer)
    by_action = {}
    pruner = None
    if route:  # built once, with the `prefer` permits merged in when they can be
        ests = _ests(route, carried)
        by_action["route"] = policy_set(ests)
        pruner = Pruner(ests, by_action["route"], copies)
    for action in ACTIONS[1:]:
        chosen = [p for p in policies if p.applies_to(action)]
        if chosen:
            by_action[action] = policy_set(_ests(chosen, carried))
    return Compiled(by_action, carried, merged, pruner)


def _mergeable(policy: Policy) -> bool:
    return (
        policy.effect == "permit"
        and policy.actions == frozenset({"prefer"})
        and '{"Var": "action"}' not in json.dumps(policy.est.get("conditions"))
    )


def _ests(policies: Sequence[Policy], carried: bool) -> dict[str, Any]:
    return {p.id: carry_context(p.est) if carried else p.est for p in policies}
