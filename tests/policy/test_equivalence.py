"""The engine's evaluation (pruned sets, all routes in one request, caches) decides exactly
as the plain one: one public `cedarpy.is_authorized` call per route and action, with
every fact, the policies as written."""

from __future__ import annotations

import itertools
import json
import random
from collections.abc import Iterable, Mapping

import cedarpy

from aicp.policy.engine import PolicyEngine, PolicySet
from aicp.policy.model import PrincipalFacts, RequestFacts, RouteFacts
from aicp.policy.policyset import PACK_DIR, policy_files
from aicp.policy.reads import CONTEXT_ATTRS, KEY_ATTRS, ROUTE_ATTRS

ROUTE = 'action == Aicp::Action::"route"'
PREFER = 'action == Aicp::Action::"prefer"'
#: Beside the pack: scopes, `unless`, principal attributes, route-independent
#: policies, policies that fail to evaluate (in the guard and after it), a resource
#: scope and a condition that use the route's id, annotations.
EXTRA = f"""
@id("team-no-external") @constraint("team-rule")
forbid (principal in Aicp::Team::"t2", {ROUTE}, resource)
when {{ resource.locality == "external" }};
@id("interns-cheap-only")
forbid (principal, {ROUTE}, resource is Aicp::Route)
when {{ principal.trust_level < 1 && resource.cost_micros_per_mtok > 5000000 }};
@id("night-off") @redact("pii")
forbid (principal, {ROUTE}, resource) when {{ context.hour >= 22 }} unless {{ principal.is_admin }};
@id("bob-only-local")
forbid (principal in Aicp::User::"bob", {ROUTE}, resource)
unless {{ resource.locality == "local" }};
@id("budget-overflow")
forbid (principal, {ROUTE}, resource)
when {{ context.hour == 3 && context.budget_remaining_micros * 1000000000000 > 0 }};
@id("cost-overflow")
forbid (principal, {ROUTE}, resource)
when {{ context.weekday == 6 && resource.cost_micros_per_mtok * 1000000000000 > 0 }};
@id("pinned") @constraint("pinned")
permit (principal, {ROUTE}, resource == Aicp::Route::"p1/m1")
when {{ context.task_class == "infra" }};
@id("not-p2")
forbid (principal, {ROUTE}, resource)
when {{ context.mode == "simulate" && resource == Aicp::Route::"p2/m2" }};
@id("admins-prefer-fast") @redact("email")
permit (principal, {PREFER}, resource) when {{ principal.is_admin && resource.latency_ms < 300 }};
"""

PREFER_FORBID = f"""
@id("slow-not-first") @constraint("slow")
forbid (principal, {PREFER}, resource) when {{ resource.latency_ms > 400 }};
"""


def sets() -> list[PolicySet]:
    pack = [(f"pack/{p.name}", p.read_text()) for p in policy_files(PACK_DIR)]
    only_forbids = [(n, t) for n, t in pack if n != "pack/base.cedar"]
    return [
        PolicySet.from_texts(pack),
        PolicySet.from_texts([*pack, ("extra.cedar", EXTRA)]),
        # a `prefer` forbid: `prefer` is asked apart from `route`
        PolicySet.from_texts([*pack, ("extra.cedar", EXTRA + PREFER_FORBID)]),
        PolicySet.from_texts([*only_forbids, ("extra.cedar", EXTRA)]),
    ]


def fleet(rng: random.Random, n: int) -> tuple[RouteFacts, ...]:
    """`n` routes; some keys repeat in a small fleet, none in a large one."""
    keys = rng.sample(range(48), n) if n > 12 else [rng.randrange(12) for _ in range(n)]
    routes = []
    for i in keys:
        routes.append(
            RouteFacts(
                key=f"p{i}/m{i}",
                provider=f"p{i}",
                model=f"m{i}",
                locality=rng.choice(("local", "external")),
                cost_micros_per_mtok=rng.choice((0, 1_000_000, 9_000_000, 10**9)),
                latency_ms=rng.choice((0, 120, 450, 900)),
                error_rate_bp=rng.choice((0, 200, 800)),
            )
        )
    return tuple(routes)


def principals() -> list[PrincipalFacts]:
    return [
        PrincipalFacts("k1", team_id="t1", trust_level=2),
        PrincipalFacts("k2", team_id="t2", trust_level=0),
        PrincipalFacts("k3", user_id="bob", is_admin=True),
        PrincipalFacts("anonymous"),
    ]


def requests(rng: random.Random, n: int) -> Iterable[RequestFacts]:
    for _ in range(n):
        yield RequestFacts(
            task_class=rng.choice(("code", "legal", "infra", "general")),
            sensitivity=rng.choice(("public", "internal", "restricted")),
            mode=rng.choice(("live", "offline", "simulate")),
            budget_remaining_micros=rng.choice((-1, 1, 10**9)),
            budget_fraction_left_pct=rng.choice((100, 15)),
            latency_sla_ms=rng.choice((0, 500)),
            hour=rng.choice((3, 12, 23)),
            weekday=rng.choice((0, 6)),
            findings=rng.choice((frozenset(), frozenset({"secrets"}), frozenset({"pii"}))),
            bypass=rng.choice((frozenset(), frozenset({"latency-sla", "night-off"}))),
        )


def plain(
    policies: PolicySet,
    principal: PrincipalFacts,
    routes: Iterable[RouteFacts],
    request: RequestFacts,
) -> dict[str, object]:
    """Decision.as_dict() by the documented rules, one Cedar call per route and action."""
    chosen = {i: p.est for i, p in policies.policies.items() if i not in request.bypass}
    cedar_set = cedarpy.PolicySet.from_json_str(
        json.dumps({"staticPolicies": chosen, "templates": {}, "templateLinks": []})
    )
    key = {"type": "Aicp::Key", "id": principal.key_id}
    parents = [
        {"type": t, "id": getattr(principal, f)}
        for f, t in (
            ("user_id", "Aicp::User"),
            ("team_id", "Aicp::Team"),
            ("service_account_id", "Aicp::ServiceAccount"),
        )
        if getattr(principal, f)
    ]
    attrs = {a: getattr(principal, f) for a, f in KEY_ATTRS.items()}
    people = [{"uid": key, "attrs": attrs, "parents": parents}]
    people += [{"uid": p, "attrs": {}, "parents": []} for p in parents]
    context = {a: getattr(request, a) for a in CONTEXT_ATTRS}
    context = {a: sorted(v) if isinstance(v, frozenset) else v for a, v in context.items()}
    out: dict[str, dict[str, list[str]]] = {"forbidden": {}, "permitted_by": {}, "preferred_by": {}}
    allowed_keys: list[str] = []
    deciding: list[str] = []
    errors: set[str] = set()
    for route in routes:
        uid = {"type": "Aicp::Route", "id": route.key}
        entity = {"uid": uid, "attrs": {a: getattr(route, a) for a in ROUTE_ATTRS}, "parents": []}
        asked = {"principal": key, "resource": uid, "context": context}
        answer = _ask(cedar_set, asked, "route", [*people, entity])
        errors |= set(answer.diagnostics.errors)
        failed = {i for i in chosen if chosen[i]["effect"] == "forbid" and _named(i, answer)}
        allowed = answer.allowed and not failed
        ids = sorted(answer.diagnostics.reasons if allowed else failed | _denying(answer))
        out["permitted_by" if allowed else "forbidden"][route.key] = ids
        allowed_keys += [route.key] if allowed else []
        deciding += ids
        if allowed and (prefer := _ask(cedar_set, asked, "prefer", [*people, entity])).allowed:
            out["preferred_by"][route.key] = sorted(prefer.diagnostics.reasons)
            deciding += out["preferred_by"][route.key]
    known = policies.policies
    return {
        "allowed": allowed_keys,
        **out,
        "preferred": list(out["preferred_by"]),
        "redactions": sorted({r for i in deciding for r in known[i].redactions}),
        "constraints": list(dict.fromkeys(c for i in deciding for c in known[i].constraints)),
        "errors": sorted(errors),
    }


def _ask(
    cedar_set: cedarpy.PolicySet, asked: Mapping[str, object], action: str, entities: list[object]
) -> cedarpy.AuthzResult:
    request = {**asked, "action": {"type": "Aicp::Action", "id": action}}
    return cedarpy.is_authorized(request, cedar_set, entities)  # type: ignore[arg-type]


def _named(policy_id: str, answer: cedarpy.AuthzResult) -> bool:
    return any(f"policy `{policy_id}`" in e for e in answer.diagnostics.errors)


def _denying(answer: cedarpy.AuthzResult) -> set[str]:
    return set() if answer.allowed else set(answer.diagnostics.reasons)


def test_the_engine_decides_as_plain_cedar_calls_do() -> None:
    rng = random.Random(5)
    for policies in sets():
        engine = PolicyEngine(policies, cache_size=64)  # small: caches fill and evict
        for request, principal in itertools.product(requests(rng, 40), principals()):
            routes = fleet(rng, rng.choice((1, 2, 3, 10, 10, 40)))
            # then a few of them, for which much is cached
            for some in (routes, routes[:2]):
                got = engine.decide(principal, some, request).as_dict()
                errors = got.get("errors", [])
                assert isinstance(errors, list)
                got["errors"] = sorted(errors)  # Cedar's order is arbitrary
                assert got == plain(policies, principal, some, request), (principal, request, some)


def test_the_sample_reaches_every_kind_of_outcome() -> None:
    """So the comparison above cannot pass by deciding only easy cases."""
    rng = random.Random(5)
    policies = sets()[1]
    seen: set[str] = set()
    for request, principal in itertools.product(requests(rng, 40), principals()):
        d = plain(policies, principal, fleet(rng, 10), request)
        seen |= {i for ids in d["forbidden"].values() for i in ids}  # type: ignore[attr-defined]
        seen |= {i for ids in d["preferred_by"].values() for i in ids}  # type: ignore[attr-defined]
        seen |= {"an error"} if d["errors"] else set()
        seen |= {"an allowed route"} if d["allowed"] else set()
    assert seen >= {
        "an error",
        "an allowed route",
        "team-no-external",
        "interns-cheap-only",
        "night-off",
        "bob-only-local",
        "budget-overflow",
        "cost-overflow",
        "not-p2",
        "admins-prefer-fast",
        "prefer-local-internal-code",
        "latency-sla",
        "no-external-legal",
        "block-secrets",
    }


def test_a_policy_naming_a_route_entity_sees_the_other_candidates() -> None:
    """Such a policy is never asked in the one-request form, which has no route entities."""
    text = (
        f'@id("allow") permit(principal, {ROUTE}, resource);\n'
        f'@id("fast-first") forbid(principal, {ROUTE}, resource)'
        ' when { Aicp::Route::"p/fast" has locality && resource.locality == "external" };'
    )
    fast = RouteFacts("p/fast", "p", "fast", "local", latency_ms=10)
    slow = [RouteFacts(f"q/{i}", "q", str(i), "external", latency_ms=100) for i in range(5)]
    with_fast = PolicyEngine(PolicySet.from_texts([("t.cedar", text)]))
    decision = with_fast.decide(PrincipalFacts("k"), (fast, *slow), RequestFacts())
    assert decision.allowed == ("p/fast",)
    assert set(decision.forbidden.values()) == {("fast-first",)}
    without = PolicyEngine(PolicySet.from_texts([("t.cedar", text)]))
    assert len(without.decide(PrincipalFacts("k"), slow, RequestFacts()).allowed) == 5
