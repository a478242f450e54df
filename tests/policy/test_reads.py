"""Which facts a policy set reads (what the caches key on and Cedar is sent)."""

from __future__ import annotations

from aicp.policy.engine import PolicyEngine
from aicp.policy.model import PrincipalFacts, RequestFacts, RouteFacts
from aicp.policy.policyset import PolicySet


def reads(text: str) -> PolicySet:
    return PolicySet.from_texts([("t.cedar", text)])


def test_the_pack_reads_only_what_its_conditions_name() -> None:
    r = PolicySet.load(None).reads
    assert r.route_attrs == ("locality", "latency_ms", "error_rate_bp")
    assert set(r.context_attrs) == {
        "task_class",
        "sensitivity",
        "mode",
        "budget_fraction_left_pct",
        "latency_sla_ms",
        "findings",
        "admin_override",
    }
    assert r.key_attrs == () and not r.principal_whole and not r.context_whole


def test_a_principal_scope_makes_the_principal_read_whole() -> None:
    r = reads('@id("a") forbid(principal in Aicp::Team::"t", action, resource);').reads
    assert r.principal_whole and r.route_attrs == ()


def test_attribute_tests_name_only_those_attributes() -> None:
    text = (
        '@id("a") forbid(principal, action == Aicp::Action::"route", resource)'
        " when { principal.is_admin && resource has region && context.hour > 3 };"
    )
    r = reads(text).reads
    assert r.key_attrs == ("is_admin",) and r.route_attrs == ("region",)
    assert r.context_attrs == ("hour",) and not r.principal_whole


def test_a_variable_used_whole_reads_everything() -> None:
    text = (
        '@id("a") forbid(principal, action == Aicp::Action::"route", resource)'
        ' when { resource == Aicp::Route::"x/y" && [context].contains(context) };'
    )
    r = reads(text).reads
    assert "provider" in r.route_attrs and "key" in r.route_attrs
    assert r.context_whole and "bypass" in r.context_attrs


def test_facts_no_policy_reads_do_not_change_decisions() -> None:
    text = (
        '@id("allow") permit(principal, action == Aicp::Action::"route", resource);\n'
        '@id("late") forbid(principal, action == Aicp::Action::"route", resource)'
        ' when { context.hour >= 22 && resource.region == "us" };'
    )
    engine = PolicyEngine(reads(text))
    us = RouteFacts("a/b", "a", "b", "external", region="us")
    for key in ("k1", "k2"):
        for budget in (1, 2):
            request = RequestFacts(hour=23, budget_remaining_micros=budget)
            decision = engine.decide(PrincipalFacts(key), (us,), request)
            assert decision.forbidden == {"a/b": ("late",)}
    assert engine.decide(PrincipalFacts("k1"), (us,), RequestFacts(hour=21)).forbidden == {}
