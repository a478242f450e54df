"""PolicyEngine semantics: forbids, permits, bypass, preferences, annotations, caching."""

from __future__ import annotations

import json

from aicp.policy.engine import PolicyEngine, PolicySet
from aicp.policy.model import PrincipalFacts, RequestFacts, RouteFacts
from aicp.policy.policyset import PACK_DIR, policy_files

ROUTE = 'action == Aicp::Action::"route"'
PREFER = 'action == Aicp::Action::"prefer"'
ALLOW = f'@id("allow") permit(principal, {ROUTE}, resource);'


def rule(effect: str, policy_id: str, when: str = "", action: str = ROUTE, notes: str = "") -> str:
    """One policy's text; `when` is its condition, if any."""
    condition = f" when {{ {when} }}" if when else ""
    return f'@id("{policy_id}") {notes} {effect}(principal, {action}, resource){condition};'


LOCAL_FIRST = rule("permit", "local-first", 'resource.locality == "local"', PREFER)

KEY = PrincipalFacts("k1", team_id="t1")
OPENAI = RouteFacts("openai/gpt-4o", "openai", "gpt-4o", "external", latency_ms=400)
OLLAMA = RouteFacts("ollama/llama3", "ollama", "llama3", "local", latency_ms=900)
VLLM = RouteFacts("vllm/qwen", "vllm", "qwen", "local", latency_ms=200)
ROUTES = (OPENAI, OLLAMA, VLLM)


def engine(*policies: str, pack: bool = False) -> PolicyEngine:
    texts = [("test.cedar", "\n".join(policies))]
    if pack:
        return PolicyEngine(PolicySet.from_texts([*_pack_texts(), *texts]))
    return PolicyEngine(PolicySet.from_texts(texts))


def _pack_texts() -> list[tuple[str, str]]:
    return [(f"pack/{p.name}", p.read_text()) for p in policy_files(PACK_DIR)]


def test_a_forbid_wins_over_a_permit() -> None:
    e = engine(
        ALLOW,
        rule("forbid", "no-ext", 'resource.locality == "external"'),
    )
    d = e.decide(KEY, ROUTES, RequestFacts())
    assert d.allowed == ("ollama/llama3", "vllm/qwen")
    assert d.forbidden == {"openai/gpt-4o": ("no-ext",)}
    assert d.verdicts[1].policies == ("allow",)


def test_without_a_permit_every_route_is_forbidden_by_no_policy() -> None:
    e = engine(rule("forbid", "slow", "resource.latency_ms > 500"))
    d = e.decide(KEY, ROUTES, RequestFacts())
    assert d.allowed == ()
    assert d.forbidden == {"openai/gpt-4o": (), "ollama/llama3": ("slow",), "vllm/qwen": ()}


def test_bypass_skips_the_named_policy_only() -> None:
    e = engine(pack=True)
    secret = RequestFacts(findings=frozenset({"secrets"}), mode="offline")
    assert e.decide(KEY, ROUTES, secret).allowed == ()
    bypassed = RequestFacts(
        findings=frozenset({"secrets"}), mode="offline", bypass=frozenset({"block-secrets", "nope"})
    )
    d = e.decide(KEY, ROUTES, bypassed)
    assert d.allowed == ("ollama/llama3", "vllm/qwen")
    assert d.forbidden == {"openai/gpt-4o": ("offline-local-only",)}


def test_prefer_puts_preferred_routes_first_in_the_given_order() -> None:
    e = engine(
        ALLOW,
        LOCAL_FIRST,
    )
    d = e.decide(KEY, ROUTES, RequestFacts())
    assert d.preferred == ("ollama/llama3", "vllm/qwen")
    assert d.ranked == ("ollama/llama3", "vllm/qwen", "openai/gpt-4o")
    assert dict(d.preferred_by) == {
        "ollama/llama3": ("local-first",),
        "vllm/qwen": ("local-first",),
    }


def test_a_prefer_permit_alone_does_not_allow_a_route() -> None:
    e = engine(
        rule("permit", "fast", "resource.latency_ms < 500"),
        LOCAL_FIRST,
    )
    d = e.decide(KEY, ROUTES, RequestFacts())
    assert d.allowed == ("openai/gpt-4o", "vllm/qwen")
    assert d.forbidden == {"ollama/llama3": ()}
    assert d.preferred == ("vllm/qwen",)


def test_a_prefer_forbid_vetoes_a_preference_but_not_the_route() -> None:
    e = engine(
        ALLOW,
        LOCAL_FIRST,
        rule("forbid", "not-ollama", 'resource.provider == "ollama"', PREFER),
    )
    d = e.decide(KEY, ROUTES, RequestFacts())
    assert d.allowed == ("openai/gpt-4o", "ollama/llama3", "vllm/qwen")
    assert d.preferred == ("vllm/qwen",)


def test_annotations_of_deciding_policies_become_redactions_and_constraints() -> None:
    e = engine(
        '@id("allow") @redact("pii, email") @constraint("no-training")'
        f" permit(principal, {ROUTE}, resource);",
        '@id("tag") @constraint("eu-only") @redact("secrets")'
        f' forbid(principal, {ROUTE}, resource) when {{ resource.provider == "nobody" }};',
        f'@id("local-first") @constraint("keep-warm") permit(principal, {PREFER}, resource)'
        ' when { resource.locality == "local" };',
    )
    d = e.decide(KEY, ROUTES, RequestFacts())
    assert d.redactions == {"pii", "email"}
    assert d.constraints == ("no-training", "keep-warm")
    assert e.decide(KEY, (OPENAI,), RequestFacts()).constraints == ("no-training",)


def test_a_forbid_that_fails_to_evaluate_forbids() -> None:
    e = engine(
        ALLOW,
        f'@id("overflow") forbid(principal, {ROUTE}, resource)'
        " when { resource.cost_micros_per_mtok * 1000000000000 > 0 };",
    )
    pricey = RouteFacts("openai/o1", "openai", "o1", "external", cost_micros_per_mtok=10**9)
    d = e.decide(KEY, (pricey, VLLM), RequestFacts())
    assert d.forbidden == {"openai/o1": ("overflow",)}
    assert d.allowed == ("vllm/qwen",)
    assert d.errors and "overflow" in d.errors[0]


def test_principal_membership_comes_from_its_team_and_user() -> None:
    e = engine(
        ALLOW,
        f'@id("team-local") forbid(principal in Aicp::Team::"t2", {ROUTE}, resource)'
        ' when { resource.locality == "external" };',
        rule("forbid", "user", 'principal in Aicp::User::"bob"'),
    )
    assert e.decide(KEY, ROUTES, RequestFacts()).forbidden == {}
    other = PrincipalFacts("k2", team_id="t2")
    assert e.decide(other, ROUTES, RequestFacts()).forbidden == {"openai/gpt-4o": ("team-local",)}
    bob = PrincipalFacts("k3", user_id="bob")
    assert set(e.decide(bob, ROUTES, RequestFacts()).forbidden) == {r.key for r in ROUTES}


def test_a_policy_using_the_whole_context_still_decides() -> None:
    e = engine(
        ALLOW,
        f'@id("legal") forbid(principal, {ROUTE}, resource)'
        ' when { [context].contains(context) && context.task_class == "legal" };',
    )
    assert e.decide(KEY, ROUTES, RequestFacts(task_class="legal")).allowed == ()
    assert len(e.decide(KEY, ROUTES, RequestFacts(task_class="code")).allowed) == 3


def test_routes_sharing_a_key_are_each_decided() -> None:
    e = engine(
        ALLOW,
        rule("forbid", "slow", "resource.latency_ms > 500"),
    )
    fast = RouteFacts("p/m", "p", "m", "external", latency_ms=100)
    slow = RouteFacts("p/m", "p", "m", "external", latency_ms=1000)
    d = e.decide(KEY, (fast, slow), RequestFacts())
    assert [v.allowed for v in d.verdicts] == [True, False]


def test_cached_decisions_equal_fresh_ones() -> None:
    cached = engine(pack=True)
    requests = [
        RequestFacts(task_class=t, latency_sla_ms=sla, budget_remaining_micros=b, hour=h)
        for t in ("code", "legal")
        for sla in (0, 500)
        for b in (-1, 10, 20)
        for h in (1, 2)
    ]
    mixes = [ROUTES, (VLLM, OPENAI), (OLLAMA,)]
    for _ in range(2):
        for request in requests:
            for routes in mixes:
                fresh = engine(pack=True).decide(KEY, routes, request)
                assert cached.decide(KEY, routes, request) == fresh


def test_replace_installs_the_new_set_and_forgets_cached_decisions() -> None:
    e = engine(ALLOW)
    assert len(e.decide(KEY, ROUTES, RequestFacts()).allowed) == 3
    e.replace(
        PolicySet.from_texts(
            [("b.cedar", ALLOW + ' @id("x") forbid(principal, action, resource);')]
        )
    )
    assert e.decide(KEY, ROUTES, RequestFacts()).allowed == ()
    assert e.policies.ids == {"allow", "x"}


def test_tools_are_forbidden_without_a_use_tool_permit() -> None:
    e = engine(ALLOW)
    assert e.authorize_tools(KEY, [("search", False)], RequestFacts()) == {"search": (False, ())}


def test_as_dict_is_plain_json() -> None:
    d = engine(pack=True).decide(KEY, ROUTES, RequestFacts(task_class="code", latency_sla_ms=500))
    data = json.loads(json.dumps(d.as_dict()))
    assert data["allowed"] == ["openai/gpt-4o", "vllm/qwen"]
    assert data["forbidden"] == {"ollama/llama3": ["latency-sla"]}
    assert data["preferred"] == ["vllm/qwen"]
    assert data["preferred_by"] == {"vllm/qwen": ["prefer-local-internal-code"]}
