"""Stage 10, guard output: the reply's text redacted by the output detectors, and the
input's placeholders put back for the caller who sent the originals.

It runs right after execute, before the first byte goes to the client: a whole
reply is changed in place (its pass-through bytes dropped, so the gateway
encodes the changed data); a stream is wrapped (guardrails/stream.py), chunk by
chunk, holding back only what a span crossing a chunk boundary needs.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from aicp.config import GuardrailSettings
from aicp.errors import GuardrailBlocked
from aicp.guardrails.base import Detector
from aicp.guardrails.pii import PiiDetector
from aicp.guardrails.redact import Placeholders, StreamRedactor, StreamRestorer, redact, restore
from aicp.guardrails.secrets import SecretsDetector
from aicp.guardrails.stages import Hit, announce, detector
from aicp.guardrails.stream import EagerRedactor, TextPipe, rewrite_stream
from aicp.observability.events import EventBus
from aicp.plane.exchange import Exchange
from aicp.protocol.jsonutil import Json
from aicp.protocol.text import reply_slots


class OutputPlaceholders(Placeholders):
    """Placeholders of what the output guard redacted: `<REDACTED_EMAIL_1>`, a shape the
    input's placeholders never have, so restoring the input's originals cannot touch them
    (the model's own e-mail address must not come back as the caller's)."""

    def placeholder(self, kind: str, original: str) -> str:
        return super().placeholder("REDACTED_" + kind, original)


def output_checks(settings: GuardrailSettings) -> list[tuple[Detector, str]]:
    out = settings.output
    checks: list[tuple[Detector, str]] = []
    if out.pii.action not in ("off", "allow"):
        pii = detector(PiiDetector, out.pii.kinds, "guardrails.output.pii")
        checks.append((pii, out.pii.action))
    if out.secrets.action not in ("off", "allow"):
        secrets = detector(SecretsDetector, out.secrets.kinds, "guardrails.output.secrets")
        checks.append((secrets, out.secrets.action))
    return checks


class GuardOutput:
    name = "guard_output"

    def __init__(self, settings: GuardrailSettings, events: EventBus) -> None:
        self.events = events
        self.checks = output_checks(settings) if settings.enabled else []
        self.restore = settings.restore and settings.enabled

    def _active(self, ex: Exchange) -> bool:
        return bool(self.checks) or (self.restore and ex.placeholders is not None)

    async def __call__(self, ex: Exchange) -> None:
        if ex.operation != "chat" or not self._active(ex):
            return
        if ex.upstream is not None:
            self._wrap(ex)
            return
        reply = ex.reply
        if reply is None:
            return
        hits: list[Hit] = []
        changed = False
        own = OutputPlaceholders()  # the output's own redactions: never restored
        for i, slot in enumerate(reply_slots(reply.protocol, reply.data)):
            text = new = slot.text
            found = [(f, a) for d, a in self.checks for f in d.scan(text)]
            hits.extend(Hit(i, f, a) for f, a in found)
            spans = [f for f, a in found if a in ("redact", "block")]
            if spans:
                new = redact(new, spans, own)
            if self.restore and ex.placeholders is not None:
                new = restore(new, ex.placeholders)
            if new != text:
                slot.text = new
                changed = True
        if changed:
            reply.raw = None  # the gateway encodes the changed data
        if hits:
            ex.trace.append(("guard_output", _record(hits)))
            announce(self.events, ex, hits, "output")
            blocked = [h for h in hits if h.action == "block"]
            if blocked:
                # The answer was produced (and is billed) but does not go out.
                ex.usage = reply.usage
                detector = blocked[0].finding.detector
                raise GuardrailBlocked(
                    f"the response was withheld by the {detector} output guardrail",
                    param=detector,
                )

    def _wrap(self, ex: Exchange) -> None:
        detectors = [d for d, _ in self.checks]
        # Secrets are words: release at every word. PII may span words (a phone number
        # with spaces): hold back a window of text.
        kind = EagerRedactor if all(d.name == "secrets" for d in detectors) else StreamRedactor
        own = OutputPlaceholders()  # the output's own redactions, shared by every choice
        held = ex.placeholders if self.restore else None

        def make() -> TextPipe:
            redactor = kind(detectors, own, window=128) if detectors else None
            return TextPipe(redactor, StreamRestorer(held) if held is not None else None)

        upstream = ex.upstream
        assert upstream is not None and ex.chunks is not None
        protocol = ex.protocol if upstream.passthrough else "canonical"
        first = ex.first
        ex.chunks, ex.first = rewrite_stream(_prepend(first, ex.chunks), protocol, make), None
        record = {"stream": True, "redact": bool(detectors), "restore": held is not None}
        ex.trace.append(("guard_output", record))


async def _prepend(
    first: bytes | Json | None, rest: AsyncIterator[bytes | Json]
) -> AsyncIterator[bytes | Json]:
    if first is not None:
        yield first
    async for item in rest:
        yield item


def _record(hits: list[Hit]) -> dict[str, object]:
    return {
        "result": "blocked" if any(h.action == "block" for h in hits) else "redacted",
        "findings": [{**h.finding.as_dict(), "slot": h.slot, "action": h.action} for h in hits],
    }
