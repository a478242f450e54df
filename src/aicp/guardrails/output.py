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
from aicp.guardrails.redact import (
    JsonStreamRestorer,
    Placeholders,
    StreamRedactor,
    StreamRestorer,
    redact,
    restore,
    restore_json,
)
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
                # `arguments` (OpenAI and Responses tool calls) is JSON text: escape.
                put_back = restore_json if slot.key == "arguments" else restore
                new = put_back(new, ex.placeholders)
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
        actions = {d.name: a for d, a in self.checks}
        redacting = frozenset(n for n, a in actions.items() if a in ("redact", "block"))
        # Secrets are words: release at every word. PII may span words (a phone number
        # with spaces): hold back a window of text.
        kind = EagerRedactor if all(d.name == "secrets" for d in detectors) else StreamRedactor
        own = OutputPlaceholders()  # the output's own redactions, shared by every choice
        held = ex.placeholders if self.restore else None
        redactors: list[StreamRedactor] = []

        def make() -> TextPipe:
            redactor = None
            if detectors:
                redactor = kind(detectors, own, window=128)
                redactor.redacting = redacting
                redactors.append(redactor)
            return TextPipe(redactor, StreamRestorer(held) if held is not None else None)

        upstream = ex.upstream
        assert upstream is not None and ex.chunks is not None
        protocol = ex.protocol if upstream.passthrough else "canonical"
        first = ex.first
        make_args = None
        if held is not None:
            restorer = held

            def make_args() -> TextPipe:  # restored only: arguments are JSON
                return TextPipe(None, JsonStreamRestorer(restorer))

        rewritten = rewrite_stream(_prepend(first, ex.chunks), protocol, make, make_args)
        record: dict[str, object] = {
            "stream": True,
            "redact": bool(redacting),
            "restore": held is not None,
            "result": "clean",
        }
        ex.trace.append(("guard_output", record))
        if detectors:
            rewritten = self._watch(ex, rewritten, redactors, actions, record)
        ex.chunks, ex.first = rewritten, None

    async def _watch(
        self,
        ex: Exchange,
        items: AsyncIterator[bytes | Json],
        redactors: list[StreamRedactor],
        actions: dict[str, str],
        record: dict[str, object],
    ) -> AsyncIterator[bytes | Json]:
        """The rewritten stream, watched for what its redactors found: a `block` finding
        ends the stream before the piece that holds it (the client gets the stream's error
        event); at the end the findings go into the receipt and `guardrail.triggered`."""
        checked = 0
        try:
            async for item in items:
                total = sum(len(r.found) for r in redactors)
                if total > checked:
                    checked = total
                    blocked = [
                        f for r in redactors for f in r.found if actions.get(f.detector) == "block"
                    ]
                    if blocked:
                        raise GuardrailBlocked(
                            f"the response was cut short by the {blocked[0].detector} "
                            "output guardrail",
                            param=blocked[0].detector,
                        )
                yield item
        finally:
            hits = [
                Hit(i, f, actions.get(f.detector, "flag"))
                for i, r in enumerate(redactors)
                for f in r.found
            ]
            if hits:
                record.update(_record(hits))
                announce(self.events, ex, hits, "output")


async def _prepend(
    first: bytes | Json | None, rest: AsyncIterator[bytes | Json]
) -> AsyncIterator[bytes | Json]:
    if first is not None:
        yield first
    async for item in rest:
        yield item


def _record(hits: list[Hit]) -> dict[str, object]:
    actions = {h.action for h in hits}
    result = "blocked" if "block" in actions else "redacted" if "redact" in actions else "flagged"
    return {
        "result": result,
        "findings": [{**h.finding.as_dict(), "slot": h.slot, "action": h.action} for h in hits],
    }
