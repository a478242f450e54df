"""The classify stage: task class, sensitivity and trust, and which hints may move them."""

from __future__ import annotations

import pytest

from aicp.config import TASK_CLASSES, TrustSettings
from aicp.plane.exchange import Exchange, Principal
from aicp.trust.classify import TaskClassifier
from aicp.trust.stage import ClassifyStage

CASES = [
    ("code", "Why does this Python function raise a TypeError?\n```py\ndef f(x): return x+1\n```"),
    ("code", "Refactor this JavaScript class so the async method stops leaking"),
    ("infra", "My kubernetes ingress returns 502 after the helm upgrade of the cluster"),
    ("infra", "Write a terraform module for a VPC with two subnets and an nginx load balancer"),
    ("legal", "Review this contract clause on indemnification and the liability cap"),
    ("legal", "Does the GDPR apply to our NDA with a supplier under German jurisdiction?"),
    ("security", "Is this endpoint vulnerable to SQL injection or XSS? Write a threat model"),
    ("document", "Summarize the attached report in three paragraphs for the board memo"),
    ("automation", "Build an n8n workflow that triggers on a webhook and runs on a cron schedule"),
    ("general", "What is a good name for a grey cat?"),
    ("general", "hello"),
]


@pytest.mark.parametrize(("expected", "text"), CASES)
def test_the_classifier_finds_the_task_class(expected: str, text: str) -> None:
    assert TaskClassifier(TASK_CLASSES).classify(text)[0] == expected


def test_configured_keywords_add_to_a_class_and_unknown_classes_have_none() -> None:
    classifier = TaskClassifier(("general", "finance"), {"finance": ["invoice*", "ledger"]})
    assert classifier.classify("Reconcile the ledger with these invoices")[0] == "finance"
    assert classifier.classify("Refactor this Python function")[0] == "general"


def test_a_tie_is_general_unless_a_protected_class_is_in_it() -> None:
    classifier = TaskClassifier(TASK_CLASSES)
    # one infra word, one document word: nothing to choose between them
    assert classifier.classify("the report on the cluster")[0] == "general"
    # one legal word and one code word: legal wins (its policies must not be escaped)
    assert classifier.classify("Draft a contract for our Python consultancy")[0] == "legal"


def _ex(text: str, headers: dict[str, str] | None = None, **principal: object) -> Exchange:
    body = {"model": "m", "messages": [{"role": "user", "content": text}]}
    ex = Exchange("r", "openai", "chat", body, headers or {})
    ex.principal = Principal(**principal)  # type: ignore[arg-type]
    return ex


async def test_hints_choose_the_class_and_only_raise_sensitivity() -> None:
    stage = ClassifyStage(TrustSettings(default_sensitivity="internal"))
    ex = _ex("hello", {"x-aicp-task-class": "legal", "x-aicp-sensitivity": "restricted"})
    await stage(ex)
    assert (ex.task_class, ex.sensitivity) == ("legal", "restricted")
    lowered = _ex("hello", {"x-aicp-sensitivity": "public"})
    await stage(lowered)
    assert lowered.sensitivity == "internal"  # a hint never lowers it
    unknown = _ex("Review this contract clause", {"x-aicp-task-class": "astrology"})
    await stage(unknown)
    assert unknown.task_class == "legal"  # an unknown class hint is ignored


async def test_the_body_metadata_hint_counts_like_the_header() -> None:
    ex = _ex("hello")
    ex.body["metadata"] = {"aicp_task_class": "security", "aicp_latency_sla_ms": "800"}
    await ClassifyStage(TrustSettings())(ex)
    assert ex.task_class == "security" and ex.latency_sla_ms == 800


async def test_projects_and_key_metadata_set_sensitivity_floors() -> None:
    stage = ClassifyStage(TrustSettings(projects={"p-legal": "confidential"}))
    ex = _ex("hello", project_id="p-legal")
    await stage(ex)
    assert ex.sensitivity == "confidential"
    ex = _ex("hello", metadata={"sensitivity": "restricted"})
    await stage(ex)
    assert ex.sensitivity == "restricted"


async def test_a_trust_hint_may_lower_trust_and_never_raise_it() -> None:
    stage = ClassifyStage(TrustSettings())
    ex = _ex("hello", {"x-aicp-trust": "0"}, trust_level=2)
    await stage(ex)
    assert ex.trust == 0
    ex = _ex("hello", {"x-aicp-trust": "9"}, trust_level=2)
    await stage(ex)
    assert ex.trust == 2
    decided = dict(ex.trace)["classify"]
    assert decided["trust"] == 2 and decided["task_class"] == "general"
