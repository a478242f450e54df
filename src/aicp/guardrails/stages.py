"""Stages 4 and 10, guard input and guard output: detectors' findings turned into actions.

Input: every configured detector scans every piece of the request's prose
(protocol/text.py); per detector the action is `allow` (recorded only), `flag`
(recorded, an event, raises sensitivity), `redact` (the span becomes a
placeholder such as `<EMAIL_1>` before anything leaves) or `block` (400 in the
client's format, naming the detector and kinds, never the text). The policy
stage may require more redactions (`redact_more`) from the same findings.

Output: the reply's text gets the placeholders' originals back (`restore`) and
the output detectors' actions; streams are handled in guardrails/stream.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from aicp.config import GuardrailSettings
from aicp.errors import ConfigError, GuardrailBlocked
from aicp.guardrails.base import Detector, Finding
from aicp.guardrails.injection import InjectionDetector
from aicp.guardrails.lists import ListDetector, SizeCap
from aicp.guardrails.pii import PiiDetector
from aicp.guardrails.redact import Placeholders, redact
from aicp.guardrails.secrets import SecretsDetector
from aicp.observability.events import EventBus
from aicp.plane.announce import emit_for
from aicp.plane.exchange import Exchange
from aicp.protocol.text import Slot, joined, request_slots
from aicp.trust.stage import raise_sensitivity

#: PII kinds that make data confidential (the rest make it at least internal).
CONFIDENTIAL_KINDS = frozenset({"credit_card", "iban", "us_ssn", "national_id", "passport"})


@dataclass(slots=True)
class Hit:
    slot: int  # index into ex.slots; -1 for a finding about the whole request (size)
    finding: Finding
    action: str


#: The input guard's record of a request it found nothing in: one shared object (the
#: receipt builder knows it is plain data). Never mutate it.
CLEAN: dict[str, Any] = {"result": "clean"}


def sensitivity_of(finding: Finding) -> str | None:
    if finding.detector == "secrets":
        return "restricted"
    if finding.detector == "pii":
        return "confidential" if finding.kind in CONFIDENTIAL_KINDS else "internal"
    return None


def detector(factory: type[PiiDetector] | type[SecretsDetector], kinds: list[str], key: str) -> Any:
    """A PII or secrets detector of the configured kinds; an unknown kind is a config error
    that names the key."""
    try:
        return factory(kinds=kinds or None)
    except ValueError as exc:
        raise ConfigError(f"{key}.kinds: {exc}") from None


def input_checks(settings: GuardrailSettings) -> list[tuple[Detector, str]]:
    inp = settings.input
    checks: list[tuple[Detector, str]] = []
    if inp.pii.action != "off":
        pii = detector(PiiDetector, inp.pii.kinds, "guardrails.input.pii")
        checks.append((pii, inp.pii.action))
    if inp.secrets.action != "off":
        secrets = detector(SecretsDetector, inp.secrets.kinds, "guardrails.input.secrets")
        checks.append((secrets, inp.secrets.action))
    if inp.injection.action != "off":
        checks.append((InjectionDetector(threshold=inp.injection.threshold), inp.injection.action))
    if inp.blocklist.action != "off" and inp.blocklist.terms:
        checks.append((ListDetector(block=inp.blocklist.terms), inp.blocklist.action))
    return checks


class GuardInput:
    name = "guard_input"

    def __init__(self, settings: GuardrailSettings, events: EventBus) -> None:
        self.events = events
        self.checks = input_checks(settings) if settings.enabled else []
        inp = settings.input
        self.allow = ListDetector(allow=inp.allowlist) if inp.allowlist else None
        limited = inp.max_chars is not None or inp.max_tokens is not None
        self.size = SizeCap(max_chars=inp.max_chars, max_tokens=inp.max_tokens) if limited else None

    async def __call__(self, ex: Exchange) -> None:
        if not (self.checks or self.size):
            return
        slots = ex.slots
        if slots is None:
            slots = ex.slots = request_slots(ex.protocol, ex.operation, ex.body)
        hits = self._scan(slots)
        if self.size is not None:
            hits.extend(Hit(-1, f, "block") for f in self.size.scan(joined(slots)))
        if not hits:
            ex.trace.append(("guard_input", CLEAN))
            return
        ex.hits = hits
        for hit in hits:
            f = hit.finding
            if hit.action in ("flag", "block"):
                # What policies see, and what makes the data sensitive: findings still in
                # the request (a redacted one no longer is, an allowed one was waved by).
                ex.findings.add(f.detector)
                ex.findings.add(f.kind)
                ex.sensitivity = raise_sensitivity(ex.sensitivity, sensitivity_of(f))
            if f.detector == "injection" and hit.action != "allow":
                ex.trust = max(0, ex.trust - 1)
        blocked = [h for h in hits if h.action == "block"]
        redacted = apply_redactions(ex)
        result = "blocked" if blocked else "redacted" if redacted else "flagged"
        ex.trace.append(("guard_input", _record(hits, result)))
        announce(self.events, ex, hits, "input")
        if blocked:
            detector = blocked[0].finding.detector
            kinds = sorted({h.finding.kind for h in blocked if h.finding.detector == detector})
            raise GuardrailBlocked(
                f"the request was blocked by the {detector} guardrail ({', '.join(kinds)})",
                param=detector,
            )

    def _scan(self, slots: list[Slot]) -> list[Hit]:
        hits: list[Hit] = []
        allow = self.allow
        for i, slot in enumerate(slots):
            text = slot.text
            if not text:
                continue
            for detector, action in self.checks:
                for f in detector.scan(text):
                    if (
                        allow is not None
                        and f.end > f.start
                        and allow.allowed(text[f.start : f.end])
                    ):
                        continue
                    hits.append(Hit(i, f, action))
        return hits


def announce(events: EventBus, ex: Exchange, hits: list[Hit], where: str) -> None:
    """One `guardrail.triggered` per (detector, action) that did something."""
    if not events.wants("guardrail.triggered"):
        return
    groups: dict[tuple[str, str], set[str]] = {}
    for h in hits:
        if h.action != "allow":
            groups.setdefault((h.finding.detector, h.action), set()).add(h.finding.kind)
    for (detector, action), kinds in groups.items():
        data = {"stage": where, "detector": detector, "action": action, "kinds": sorted(kinds)}
        emit_for(events, "guardrail.triggered", ex, data)


def _record(hits: list[Hit], result: str) -> dict[str, Any]:
    return {
        "result": result,
        "findings": [{**h.finding.as_dict(), "slot": h.slot, "action": h.action} for h in hits],
    }


def apply_redactions(ex: Exchange) -> int:
    """Every hit whose action is `redact` becomes a placeholder in the request body.

    Spans refer to the text as the client sent it, so each slot is redacted again
    from its original with all of its redactions (a policy may add some after the
    input guard made its own); the same original keeps the same placeholder.
    """
    by_slot: dict[int, list[Finding]] = {}
    for h in ex.hits:
        if h.action == "redact" and h.slot >= 0 and h.finding.end > h.finding.start:
            by_slot.setdefault(h.slot, []).append(h.finding)
    if not by_slot:
        return 0
    assert ex.slots is not None
    if ex.placeholders is None:
        ex.placeholders = Placeholders()
    originals = ex.originals
    for index, findings in by_slot.items():
        slot = ex.slots[index]
        original = originals.setdefault(index, slot.text)
        slot.text = redact(original, findings, ex.placeholders)
    return sum(len(f) for f in by_slot.values())


def redact_more(ex: Exchange, names: frozenset[str]) -> int:
    """Redactions a policy requires: the findings of these detectors or kinds, redacted too."""
    changed = False
    for h in ex.hits:
        f = h.finding
        if h.action != "redact" and (f.detector in names or f.kind in names):
            h.action = "redact"
            changed = True
    return apply_redactions(ex) if changed else 0


def scrubbed_request(ex: Exchange) -> bytes:
    """The request body to keep (receipt bodies, body logs): as the client sent it, unless a
    guard found something in it, then with every finding's span replaced, whatever its
    action (a blocked secret must not be stored either)."""
    if not ex.hits or ex.slots is None:
        return ex.raw
    by_slot: dict[int, list[Finding]] = {}
    for h in ex.hits:
        if h.slot >= 0 and h.finding.end > h.finding.start:
            by_slot.setdefault(h.slot, []).append(h.finding)
    current = {i: ex.slots[i].text for i in by_slot}
    try:
        for i, findings in by_slot.items():
            slot = ex.slots[i]
            slot.text = redact(ex.originals.get(i, slot.text), findings, Placeholders())
        # The body as the client sent it, not as the compress stage made it.
        return orjson.dumps(ex.uncompressed if ex.uncompressed is not None else ex.body)
    finally:
        for i, text in current.items():
            ex.slots[i].text = text
