"""The policy engine: which routes and tools a request may use, and which policies said so.

`route` decides each route (Cedar: allowed iff some permit and no forbid);
`prefer` marks allowed routes to try first; `@redact` and `@constraint` on
the policies that decided add to the decision. A forbid that fails to
evaluate forbids (Cedar would skip it, which fails open).

Caches, all dropped by `replace()`: whole decisions keyed by the facts as
given; per-route outcomes keyed by only the facts the policies read (a new
mix of routes, or a request that differs only in what no policy looks at,
reuses earlier work); parsed route entities (see `evaluate`); and, on the
policy set, guard outcomes and the Cedar sets built for them (see `prune`).
"""

from __future__ import annotations

import itertools
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from types import MappingProxyType

from aicp.policy.cache import Lru
from aicp.policy.evaluate import Evaluator, Outcome, ToolAnswers
from aicp.policy.model import Decision, PrincipalFacts, RequestFacts, RouteFacts, RouteVerdict
from aicp.policy.policyset import PolicySet
from aicp.policy.reads import Getter

__all__ = ["PolicyEngine", "PolicySet"]

ToolVerdicts = dict[str, tuple[bool, tuple[str, ...]]]


@dataclass(frozen=True, slots=True)
class _State:
    """A policy set with its evaluator and key functions; swapped as one."""

    policies: PolicySet
    evaluator: Evaluator
    principal_key: Getter
    route_key: Getter
    request_key: Getter

    @classmethod
    def of(cls, policies: PolicySet, cache_size: int) -> _State:
        r = policies.reads
        evaluator = Evaluator(policies, max(cache_size // 16, 16))
        return cls(policies, evaluator, r.principal_key(), r.route_key(), r.request_key())


class PolicyEngine:
    def __init__(self, policies: PolicySet, cache_size: int = 4096) -> None:
        self._cache_size = cache_size
        self._state = _State.of(policies, cache_size)
        self._decisions: Lru[Hashable, Decision] = Lru(cache_size)
        self._outcomes: Lru[Hashable, Outcome] = Lru(cache_size * 4)
        self._tools: Lru[Hashable, ToolAnswers] = Lru(cache_size)
        #: A number for each (bypass, principal, request) key, so that the per-route
        #: keys of `_outcomes` hash cheaply; never reused, so dropping them is safe.
        self._base_ids: dict[Hashable, int] = {}
        self._next_id = itertools.count()

    @property
    def policies(self) -> PolicySet:
        return self._state.policies

    def replace(self, policies: PolicySet) -> None:
        """Install a new set: later calls use it; everything cached is dropped."""
        self._state = _State.of(policies, self._cache_size)
        self._decisions.clear()
        self._outcomes.clear()
        self._tools.clear()
        self._base_ids.clear()

    def decide(
        self, principal: PrincipalFacts, routes: Sequence[RouteFacts], request: RequestFacts
    ) -> Decision:
        """Allowed and forbidden routes, preferences, redactions and constraints."""
        routes = tuple(routes)
        key = (principal, routes, request)
        found = self._decisions.get(key)
        if found is None:
            found = self._decide(self._state, principal, routes, request)
            self._decisions.put(key, found)
        return found

    def _decide(
        self,
        state: _State,
        principal: PrincipalFacts,
        routes: tuple[RouteFacts, ...],
        request: RequestFacts,
    ) -> Decision:
        bypass = request.bypass & state.policies.ids
        base = (bypass, state.principal_key(principal), state.request_key(request))
        number = self._base_ids.get(base)
        seen = number is not None  # else no outcome can be cached for it
        if number is None:
            if len(self._base_ids) >= self._cache_size * 4:
                self._base_ids.clear()
            number = self._base_ids[base] = next(self._next_id)
        keys: list[Hashable] = [(number, state.route_key(r)) for r in routes]
        outcomes: dict[Hashable, Outcome] = {}
        missing: dict[Hashable, RouteFacts] = {}
        for key, route in zip(keys, routes, strict=True):
            if key in outcomes or key in missing:
                continue
            hit = self._outcomes.get(key) if seen else None
            if hit is None:
                missing[key] = route
            else:
                outcomes[key] = hit
        if missing:
            compiled = state.policies.compiled(bypass)
            fresh = state.evaluator.routes(compiled, principal, list(missing.values()), request)
            for done, outcome in zip(missing, fresh, strict=True):
                outcomes[done] = outcome
                self._outcomes.put(done, outcome)
        return _assemble(routes, [outcomes[k] for k in keys])

    def authorize_tools(
        self,
        principal: PrincipalFacts,
        tools: Sequence[tuple[str, bool]],
        request: RequestFacts,
    ) -> ToolVerdicts:
        """Tool name -> (allowed, ids of the deciding policies), for `use_tool`."""
        state = self._state
        named = tuple(dict((str(n), bool(p)) for n, p in tools).items())
        bypass = request.bypass & state.policies.ids
        key = (bypass, state.principal_key(principal), state.request_key(request), named)
        found = self._tools.get(key)
        if found is None:
            compiled = state.policies.compiled(bypass)
            found = state.evaluator.tools(compiled, principal, named, request)
            self._tools.put(key, found)
        return dict(found)


def _assemble(routes: tuple[RouteFacts, ...], outcomes: list[Outcome]) -> Decision:
    pairs = list(zip(routes, outcomes, strict=True))
    preferred_by = {
        r.key: o.preferred_by for r, o in pairs if o.allowed and o.preferred_by is not None
    }
    return Decision(
        verdicts=tuple([RouteVerdict(r.key, o.allowed, o.policies) for r, o in pairs]),
        preferred=tuple(preferred_by),
        redactions=frozenset().union(*[o.redactions for o in outcomes if o.redactions]),
        constraints=_joined([o.constraints for o in outcomes if o.constraints]),
        preferred_by=MappingProxyType(preferred_by),  # cached decisions are shared
        errors=_joined([o.errors for o in outcomes if o.errors]),
    )


def _joined(parts: list[tuple[str, ...]]) -> tuple[str, ...]:
    """The strings of `parts` in order, each once."""
    return tuple(dict.fromkeys(itertools.chain.from_iterable(parts))) if parts else ()
