"""Asking Cedar about routes and tools, and reading its answers.

What a cedarpy 4.12 call costs (measured on the 2-core dev machine): about
4 µs per call and 6.5 µs per request in it; about 1 µs per policy evaluated,
0.7 µs more when it matches (the answer names it); about 2.3 µs per attribute
value it parses, entities and context alike. Hence, for routes: the context
carried on the principal (parsed once per decision, not once per request),
only the attributes the policies read, `prefer` folded into the `route` set
where that changes no answer (see compile), the policies the principal and
context rule out left out (see prune), all routes of a batch in one request
(see slots), and the routes' entities kept parsed between decisions.
"""

from __future__ import annotations

import itertools
from collections.abc import Hashable
from dataclasses import dataclass

from aicp.policy.ask import FAILED_POLICY, Answer, CedarSet, Entities, ask, entities
from aicp.policy.cache import Lru
from aicp.policy.compile import Compiled
from aicp.policy.encode import (
    Json,
    context_json,
    context_record,
    entities_json,
    principal_entities,
    request,
    requests,
    route_entity,
    tool_entity,
    uid,
)
from aicp.policy.model import PrincipalFacts, RequestFacts, RouteFacts
from aicp.policy.policyset import PolicySet
from aicp.policy.reads import CONTEXT_ATTRS
from aicp.policy.slots import batch_entity, batch_names

_SETTLED_MEMO = 4096  # distinct answers whose outcomes are kept (then all are dropped)
Verdict = tuple[bool, tuple[str, ...], tuple[str, ...]]  # allowed, deciding ids, errors
ToolAnswers = tuple[tuple[str, tuple[bool, tuple[str, ...]]], ...]


@dataclass(frozen=True, slots=True)
class Outcome:
    """One route's result: allowed, deciding ids, `prefer` permits (None: not preferred),
    and the annotations of all those policies."""

    allowed: bool
    policies: tuple[str, ...]
    preferred_by: tuple[str, ...] | None
    errors: tuple[str, ...] = ()
    redactions: frozenset[str] = frozenset()
    constraints: tuple[str, ...] = ()


NO_PERMIT = Outcome(False, (), None)


class Evaluator:
    """Cedar calls for one policy set."""

    def __init__(self, policies: PolicySet, cache_size: int) -> None:
        self.policies = policies
        #: Parsed route entities, and batch entities (see slots), by the routes' facts.
        self._bases: Lru[Hashable, Entities] = Lru(cache_size)
        self._settled_memo: dict[Hashable, Outcome] = {}
        self._attrs = policies.reads.route_attrs
        self._route_values = policies.reads.route_key()
        self._names: dict[int, list[str]] = {}  # batch_names by route count

    def routes(
        self,
        compiled: Compiled,
        principal: PrincipalFacts,
        routes: list[RouteFacts],
        request: RequestFacts,
    ) -> list[Outcome]:
        """Outcomes for `routes`, asked in batches whose route keys (entity ids) are distinct."""
        if compiled.get("route") is None:
            return [NO_PERMIT] * len(routes)
        if len({r.key for r in routes}) == len(routes):
            return self._batch(compiled, principal, routes, request)
        out: dict[int, Outcome] = {}
        while len(out) < len(routes):
            seen: set[str] = set()
            batch = []
            for i, route in enumerate(routes):
                if i not in out and route.key not in seen:
                    seen.add(route.key)
                    batch.append(i)
            done = self._batch(compiled, principal, [routes[i] for i in batch], request)
            out.update(zip(batch, done, strict=True))
        return [out[i] for i in range(len(routes))]

    def _batch(
        self,
        compiled: Compiled,
        principal: PrincipalFacts,
        routes: list[RouteFacts],
        request: RequestFacts,
    ) -> list[Outcome]:
        pruner = compiled.route_pruner
        assert pruner is not None  # there is a route set
        principals, context = self._inputs(compiled, principal, request)
        delta = entities_json(principals) if principals else ""
        inputs = _Inputs(self, principal, routes, context, delta)
        pruned = pruner.prune(inputs, delta + (context or ""))
        answers = pruned.ask(inputs)
        prefer_set = compiled.get("prefer")
        if compiled.prefer_in_route is not None or prefer_set is None:
            return [self._settled(compiled.prefer_in_route, a) for a in answers]
        verdicts = [self._verdict(a) for a in answers]
        wanted = [i for i, (allowed, _, _) in enumerate(verdicts) if allowed]
        prefers: dict[int, tuple[str, ...]] = {}
        if wanted:
            uids = [uid("Aicp::Route", routes[i].key) for i in wanted]
            asked = requests(principal, "prefer", uids, context)
            found = self._ask(prefer_set, inputs.entities(False), asked)
            prefers = {i: ids for i, (ok, ids, _) in zip(wanted, found, strict=True) if ok}
        return [
            self._outcome(allowed, ids, prefers.get(i), errors)
            for i, (allowed, ids, errors) in enumerate(verdicts)
        ]

    def _settled(self, merged: frozenset[str] | None, answer: Answer) -> Outcome:
        """A route's outcome from its `route` answer, which holds the `prefer` permits
        `merged` (or no `prefer` policy applies); memoised, as few answers recur."""
        allowed, reasons, errors = answer
        key = (merged, allowed, tuple(sorted(reasons)), tuple(errors))
        found = self._settled_memo.get(key)
        if found is None:
            allowed, ids, found_errors = self._verdict(answer)
            preferred = None
            if allowed and merged is not None:
                mine = tuple(p for p in ids if p not in merged)
                if mine and len(mine) < len(ids):
                    preferred = tuple(p for p in ids if p in merged)
                allowed, ids = bool(mine), mine  # a `prefer` permit alone allows not
            found = self._outcome(allowed, ids, preferred, found_errors)
            if len(self._settled_memo) >= _SETTLED_MEMO:
                self._settled_memo.clear()
            self._settled_memo[key] = found
        return found

    def _outcome(
        self,
        allowed: bool,
        ids: tuple[str, ...],
        preferred_by: tuple[str, ...] | None,
        errors: tuple[str, ...],
    ) -> Outcome:
        known = self.policies.policies
        deciding = [known[i] for i in (*ids, *(preferred_by or ())) if i in known]
        return Outcome(
            allowed,
            ids,
            preferred_by,
            errors,
            frozenset(r for p in deciding for r in p.redactions),
            tuple(dict.fromkeys(c for p in deciding for c in p.constraints)),
        )

    def tools(
        self,
        compiled: Compiled,
        principal: PrincipalFacts,
        tools: tuple[tuple[str, bool], ...],
        request: RequestFacts,
    ) -> ToolAnswers:
        tool_set = compiled.get("use_tool")
        if not tools or tool_set is None:
            return tuple((name, (False, ())) for name, _ in tools)
        entities, context = self._inputs(compiled, principal, request)
        entities += [tool_entity(name, production) for name, production in tools]
        uids = [uid("Aicp::Tool", name) for name, _ in tools]
        asked = requests(principal, "use_tool", uids, context)
        found = self._ask(tool_set, entities_json(entities), asked)
        return tuple(
            (name, (ok, ids)) for (name, _), (ok, ids, _) in zip(tools, found, strict=True)
        )

    def _inputs(
        self, compiled: Compiled, principal: PrincipalFacts, request: RequestFacts
    ) -> tuple[list[Json], str | None]:
        """The principal's entities and the Cedar context (None: it rides on the principal)."""
        reads = self.policies.reads
        if not compiled.carried:
            return principal_entities(principal, reads), context_json(request, CONTEXT_ATTRS)
        record = context_record(request, reads.context_attrs) if reads.context_attrs else None
        return principal_entities(principal, reads, record), None

    def base(self, routes: list[RouteFacts], slotted: bool) -> Entities:
        """The routes' entities, or their batch entity (see slots), parsed once per set."""
        values = [self._route_values(r) for r in routes]
        key = (True, *values) if slotted else (False, *[r.key for r in routes], *values)
        found = self._bases.get(key)
        if found is None:
            if slotted:
                names = self._names.get(len(routes))
                if names is None:
                    names = self._names[len(routes)] = batch_names(self._attrs, len(routes))
                parts = [batch_entity(names, itertools.chain.from_iterable(values))]
            else:
                parts = [route_entity(r, self.policies.reads) for r in routes]
            found = entities(entities_json(parts))
            self._bases.put(key, found)
        return found

    def _ask(
        self, cedar_set: CedarSet, entities: Entities | str, asked: list[Json]
    ) -> list[Verdict]:
        return [self._verdict(a) for a in ask(cedar_set, entities, asked)]

    def _verdict(self, answer: Answer) -> Verdict:
        """A forbid that failed to evaluate forbids: Cedar would skip it, failing open."""
        allowed, reasons, found = answer
        errors = tuple(found)
        failed = set()
        for error in errors:
            match = FAILED_POLICY.search(error)
            policy = self.policies.policies.get(match.group(1)) if match else None
            if policy is not None and policy.effect == "forbid":
                failed.add(policy.id)
        if allowed and not failed:
            return True, tuple(sorted(reasons)), errors
        deciding = failed if allowed else failed | set(reasons)
        return False, tuple(sorted(deciding)), errors


class _Inputs:
    """A batch of routes as Cedar is asked about it (see prune.Inputs)."""

    def __init__(
        self,
        evaluator: Evaluator,
        principal: PrincipalFacts,
        routes: list[RouteFacts],
        context: str | None,
        delta: str,
    ) -> None:
        self._evaluator = evaluator
        self._principal = principal
        self._routes = routes
        self._context = context
        self._delta = delta
        self._made: dict[bool, Entities] = {}
        self.n = len(routes)
        self.first = request(principal, "route", uid("Aicp::Route", routes[0].key), context)

    def per_route(self) -> list[Json]:
        uids = [uid("Aicp::Route", r.key) for r in self._routes]
        return requests(self._principal, "route", uids, self._context)

    def entities(self, slotted: bool) -> Entities:
        found = self._made.get(slotted)
        if found is None:
            found = self._evaluator.base(self._routes, slotted)
            if self._delta:
                found = found.with_added_json_str(self._delta, None)
            self._made[slotted] = found
        return found
