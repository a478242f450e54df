"""Stage 3, classify: the task class, the data's sensitivity and the request's trust.

- Task class: a client hint (`x-aicp-task-class`, or `metadata.aicp_task_class` in
  the body) when it names a configured class, else the keyword classifier.
- Sensitivity: the highest of the configured default, the project's floor, the
  key's metadata (`sensitivity`) and a client hint; the input guard raises it
  further from what its detectors find. A hint can only raise it.
- Trust: the principal's level (key, service account, team); a client hint
  (`x-aicp-trust`) may lower it, never raise it.
"""

from __future__ import annotations

from typing import Any

from aicp.config import SENSITIVITIES, TrustSettings
from aicp.plane.exchange import Exchange
from aicp.protocol.text import joined, request_slots
from aicp.trust.classify import TaskClassifier

RANK = {name: i for i, name in enumerate(SENSITIVITIES)}
#: The largest integer hint taken (a latency SLA of a day, in ms); larger is ignored.
MAX_HINT = 86_400_000


def raise_sensitivity(current: str, floor: str | None) -> str:
    """The more sensitive of the two (an unknown level counts for nothing)."""
    if floor is None or RANK.get(floor, -1) <= RANK.get(current, -1):
        return current
    return floor


def hint(ex: Exchange, name: str) -> str | None:
    """A client hint: header `x-aicp-<name>` or body `metadata.aicp_<name>`."""
    value = ex.headers.get("x-aicp-" + name.replace("_", "-"))
    if value:
        return value.strip().lower()
    metadata = ex.body.get("metadata")
    if isinstance(metadata, dict):
        found: Any = metadata.get("aicp_" + name)
        if isinstance(found, str) and found:
            return found.strip().lower()
    return None


def _int_hint(ex: Exchange, name: str) -> int | None:
    value = hint(ex, name)
    if value is None:
        return None
    try:
        number = int(value)
    except ValueError:
        return None
    # Policies compare these with 64-bit Longs: anything beyond a day is no hint.
    return number if 0 <= number <= MAX_HINT else None


class ClassifyStage:
    name = "classify"

    def __init__(self, settings: TrustSettings) -> None:
        self.settings = settings
        self.classes = frozenset(settings.task_classes)
        self.classifier = TaskClassifier(settings.task_classes, settings.keywords)

    async def __call__(self, ex: Exchange) -> None:
        slots = ex.slots = request_slots(ex.protocol, ex.operation, ex.body)
        p = ex.principal
        detected, scores = self.classifier.classify(joined(slots))
        asked = hint(ex, "task_class")
        task = detected
        # A hint names the class of a request the classifier has no opinion on; it
        # never replaces a class the text shows (that would let a client talk its
        # legal text out of the legal policies), except from an admin key.
        if asked is not None and asked in self.classes and (detected == "general" or p.is_admin):
            task = asked
        level: str = self.settings.default_sensitivity
        if p.project_id is not None:
            level = raise_sensitivity(level, self.settings.projects.get(p.project_id))
        declared = p.metadata.get("sensitivity") if p.metadata else None
        level = raise_sensitivity(level, declared if isinstance(declared, str) else None)
        level = raise_sensitivity(level, hint(ex, "sensitivity"))
        trust = p.trust_level
        lowered = _int_hint(ex, "trust")
        if lowered is not None:
            trust = min(trust, lowered)
        ex.task_class, ex.sensitivity, ex.trust = task, level, trust
        sla = _int_hint(ex, "latency_sla_ms")
        if sla is not None:
            ex.latency_sla_ms = sla
        decided: dict[str, Any] = {
            "task_class": task,
            "sensitivity": level,
            "trust": trust,
            "hinted": asked is not None and asked == task != detected,
        }
        if task != detected:
            decided["detected"] = detected
        decided["scores"] = {k: v for k, v in scores.items() if v}
        ex.trace.append(("classify", decided))
        _strip_hints(ex.body)


def _strip_hints(body: dict[str, Any]) -> None:
    """aicp's hints are for aicp: providers validate `metadata` (Anthropic's takes only
    `user_id`), so they are taken out before the body goes anywhere."""
    metadata = body.get("metadata")
    if isinstance(metadata, dict) and any(str(k).startswith("aicp_") for k in metadata):
        kept = {k: v for k, v in metadata.items() if not str(k).startswith("aicp_")}
        if kept:
            body["metadata"] = kept
        else:
            del body["metadata"]
