"""The facts a policy decision is made on, and the decision itself.

Facts are frozen so that they hash: the engine caches decisions keyed by them.
Sentinels stand in for "none" so that every attribute is always present and
policies never need `has`: `budget_remaining_micros == -1` (no budget),
`budget_fraction_left_pct == 100` (no budget), `latency_sla_ms == 0` (no SLA),
`latency_ms == 0` (not measured yet), and "" for a missing user, team or
service account.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType


@dataclass(frozen=True, slots=True)
class PrincipalFacts:
    """Who asks: the virtual key and what it belongs to."""

    key_id: str  # "anonymous" / "master" when no virtual key
    user_id: str = ""
    team_id: str = ""
    service_account_id: str = ""
    trust_level: int = 1
    is_admin: bool = False


@dataclass(frozen=True, slots=True)
class RouteFacts:
    """One candidate deployment, with its live health."""

    key: str  # "provider/model"
    provider: str
    model: str
    locality: str  # "local" | "external"
    region: str = ""
    cost_micros_per_mtok: int = 0  # input + output USD per million tokens, x 1e6
    latency_ms: int = 0  # EWMA; 0 when unmeasured
    error_rate_bp: int = 0  # basis points, 0..10000
    breaker: str = "closed"  # "closed" | "open" | "half_open"


@dataclass(frozen=True, slots=True)
class RequestFacts:
    """What the earlier stages learned about the request (Cedar's `context`)."""

    task_class: str = "general"
    sensitivity: str = "internal"  # "public" | "internal" | "confidential" | "restricted"
    trust: int = 1
    mode: str = "live"  # "live" | "simulate" | "offline"
    budget_remaining_micros: int = -1
    budget_fraction_left_pct: int = 100
    latency_sla_ms: int = 0
    hour: int = 0  # 0-23 UTC
    weekday: int = 0  # 0 = Monday
    findings: frozenset[str] = frozenset()  # finding kinds and detector names
    admin_override: bool = False
    bypass: frozenset[str] = frozenset()  # policy ids an admin asked to skip


@dataclass(frozen=True, slots=True)
class RouteVerdict:
    """Whether one route may be used, and the ids of the policies that said so.

    Forbidden: the forbids that matched (empty when no permit matched at all).
    Allowed: the permits that matched.
    """

    key: str
    allowed: bool
    policies: tuple[str, ...]


def _no_preferences() -> Mapping[str, tuple[str, ...]]:
    return MappingProxyType({})


@dataclass(frozen=True, slots=True)
class Decision:
    """The policy stage's answer for one request and its candidate routes."""

    verdicts: tuple[RouteVerdict, ...]  # in the order the routes were given
    preferred: tuple[str, ...]  # allowed route keys, in the order given, that `prefer` permitted
    redactions: frozenset[str]
    constraints: tuple[str, ...]
    #: For each preferred route, the ids of the policies that permitted `prefer`.
    preferred_by: Mapping[str, tuple[str, ...]] = field(default_factory=_no_preferences)
    #: Policies that failed to evaluate (a failing forbid counts as forbidding).
    errors: tuple[str, ...] = ()

    @property
    def allowed(self) -> tuple[str, ...]:
        return tuple(v.key for v in self.verdicts if v.allowed)

    @property
    def forbidden(self) -> dict[str, tuple[str, ...]]:
        return {v.key: v.policies for v in self.verdicts if not v.allowed}

    @property
    def ranked(self) -> tuple[str, ...]:
        """The allowed routes with the preferred ones first (otherwise in the order given)."""
        preferred = set(self.preferred)
        allowed = self.allowed
        return tuple(k for k in allowed if k in preferred) + tuple(
            k for k in allowed if k not in preferred
        )

    def as_dict(self) -> dict[str, object]:
        """Plain JSON-able data, for receipts and simulate responses."""
        out: dict[str, object] = {
            "allowed": list(self.allowed),
            "forbidden": {k: list(ids) for k, ids in self.forbidden.items()},
            "permitted_by": {v.key: list(v.policies) for v in self.verdicts if v.allowed},
            "preferred": list(self.preferred),
            "preferred_by": {k: list(ids) for k, ids in self.preferred_by.items()},
            "redactions": sorted(self.redactions),
            "constraints": list(self.constraints),
        }
        if self.errors:
            out["errors"] = list(self.errors)
        return out
