"""Placeholders for redacted spans, putting originals back, and both over a stream.

A request gets one `Placeholders`: the same original always becomes the same
`<KIND_N>`, so a model that is sent "<EMAIL_1> wrote to <EMAIL_2>" can still tell
the two apart, and its reply can be restored. Secrets all become `<SECRET_N>`: the
reply need not know what kind of key it was.

The stream redactor releases exactly what redacting the whole text at once would:
it holds back the last `window` characters (so a span crossing a chunk boundary is
seen whole, with enough text on both sides for the detectors' context), never cuts
inside a word or a finding, and keeps `window` released characters as left context.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass

from aicp.guardrails.base import Detector, Finding

_PLACEHOLDER = re.compile(r"<[A-Z][A-Z0-9_]*_\d+>")
_REDACTED_DETECTORS = frozenset({"pii", "secrets"})
# What a detector must see whole before it knows what it has (a PEM header, a URL from
# its scheme to the password, a phone number and the word before it) is shorter than this.
MIN_WINDOW = 64


def placeholder_kind(finding: Finding) -> str:
    """SECRET for any secret, else the finding's kind: EMAIL, PHONE, CREDIT_CARD, ..."""
    return "SECRET" if finding.detector == "secrets" else finding.kind.upper()


class Placeholders:
    """Per-request map placeholder <-> original, e.g. <EMAIL_1>, <PHONE_2>, <SECRET_1>."""

    def __init__(self) -> None:
        self._by_original: dict[tuple[str, str], str] = {}
        self._originals: dict[str, str] = {}
        self._counts: dict[str, int] = {}

    def placeholder(self, kind: str, original: str) -> str:
        label = kind.upper()
        key = (label, original)
        known = self._by_original.get(key)
        if known is not None:
            return known
        number = self._counts.get(label, 0) + 1
        self._counts[label] = number
        made = f"<{label}_{number}>"
        self._by_original[key] = made
        self._originals[made] = original
        return made

    def originals(self) -> dict[str, str]:
        return dict(self._originals)

    def __len__(self) -> int:
        return len(self._originals)


@dataclass(frozen=True, slots=True)
class _Span:
    start: int
    end: int
    kind: str


def _merge(findings: Sequence[Finding], size: int) -> list[_Span]:
    """Overlapping findings become one span over all of them, named for the longest."""
    ordered = sorted(
        (f for f in findings if f.end > f.start and f.start < size),
        key=lambda f: (f.start, -f.end),
    )
    spans: list[_Span] = []
    group: list[Finding] = []
    end = -1
    for f in [*ordered, None]:
        if f is not None and f.start < end:
            group.append(f)
            end = max(end, f.end)
            continue
        if group:
            top = max(group, key=lambda g: (g.end - g.start, g.confidence))
            spans.append(_Span(group[0].start, min(end, size), placeholder_kind(top)))
        if f is not None:
            group, end = [f], f.end
    return spans


def _apply(text: str, start: int, stop: int, spans: Sequence[_Span], ph: Placeholders) -> str:
    """text[start:stop] with each span inside it replaced by its placeholder."""
    out: list[str] = []
    at = start
    for span in spans:
        lo, hi = max(span.start, start), min(span.end, stop)
        if hi <= lo or lo < at:
            continue
        out.append(text[at:lo])
        out.append(ph.placeholder(span.kind, text[lo:hi]))
        at = hi
    out.append(text[at:stop])
    return "".join(out)


def redact(text: str, findings: Sequence[Finding], placeholders: Placeholders) -> str:
    """Each finding's span replaced by its placeholder; whole-text findings are ignored."""
    spans = _merge(findings, len(text))
    return _apply(text, 0, len(text), spans, placeholders) if spans else text


def restore(text: str, placeholders: Placeholders) -> str:
    """Originals put back for every placeholder of this request; others are left alone."""
    table = placeholders._originals
    if not table or "<" not in text:
        return text
    return _PLACEHOLDER.sub(lambda m: table.get(m.group(), m.group()), text)


class StreamRedactor:
    """Feed text pieces of a streamed response; get back text that is safe to emit now.

    Holds back at most `window` characters, more only while a word or a finding runs
    on to the end of what has arrived (an unfinished key is not released half-redacted).
    Only the findings of PII and secrets detectors are redacted; others are not run.
    """

    def __init__(
        self, detectors: Sequence[Detector], placeholders: Placeholders, window: int = 128
    ) -> None:
        if window < MIN_WINDOW:
            raise ValueError(f"stream redactor window must be at least {MIN_WINDOW}, got {window}")
        self.detectors = tuple(d for d in detectors if d.name in _REDACTED_DETECTORS)
        self.placeholders = placeholders
        self.window = window
        #: The detectors whose findings are replaced; the others' are only recorded (a
        #: `flag` action). None: all of them.
        self.redacting: frozenset[str] | None = None
        #: Every finding released so far, its span in the stream's text as it arrived.
        self.found: list[Finding] = []
        self._context = ""  # released text the detectors still see, for context
        self._base = 0  # where `_context` starts in the stream's text
        self._pending = ""

    def feed(self, piece: str) -> str:
        self._pending += piece
        if len(self._pending) <= self.window:
            return ""
        return self._release(final=False)

    def flush(self) -> str:
        return self._release(final=True) if self._pending else ""

    def _release(self, final: bool) -> str:
        text = self._context + self._pending
        done = len(self._context)
        found = [f for d in self.detectors for f in d.scan(text)]
        only = self.redacting
        applied = found if only is None else [f for f in found if f.detector in only]
        spans = [s for s in _merge(applied, len(text)) if s.end > done]
        cut = len(text) if final else self._cut(text, done, spans)
        if cut <= done:
            return ""
        base = self._base
        for f in found:  # a finding is released once: with the piece its end is in
            if done < f.end <= cut:
                self.found.append(
                    Finding(f.detector, f.kind, base + f.start, base + f.end, f.confidence)
                )
        released = _apply(text, done, cut, spans, self.placeholders)
        start = max(0, cut - self.window)
        self._context = text[start:cut]
        self._base = base + start
        self._pending = text[cut:]
        return released

    def _cut(self, text: str, done: int, spans: Sequence[_Span]) -> int:
        cut = len(text) - self.window
        # Never inside a word: a token still arriving may turn out to be a key. A run
        # with no space in eight windows is released anyway, or nothing ever would be.
        space = cut
        while space > done and not text[space - 1].isspace():
            space -= 1
        if space > done or cut - done < 8 * self.window:
            cut = space
        for span in reversed(spans):
            if span.start < cut < span.end:
                cut = span.start
        return cut


def restore_json(text: str, placeholders: Placeholders) -> str:
    """`restore` inside a JSON string (tool-call arguments): originals are escaped."""
    table = placeholders._originals
    if not table or "<" not in text:
        return text

    def escaped(m: re.Match[str]) -> str:
        original = table.get(m.group())
        return m.group() if original is None else json.dumps(original)[1:-1]

    return _PLACEHOLDER.sub(escaped, text)


class StreamRestorer:
    """Restores placeholders in a streamed response, even one split over two pieces.

    Holds back only a tail that could still become one of this request's placeholders.
    """

    def __init__(self, placeholders: Placeholders) -> None:
        self.placeholders = placeholders
        self._held = ""

    #: How a released piece is restored (`restore_json` inside tool-call arguments).
    restoring = staticmethod(restore)

    def feed(self, piece: str) -> str:
        text = self._held + piece
        hold = self._partial(text)
        self._held = text[hold:]
        return self.restoring(text[:hold], self.placeholders)

    def flush(self) -> str:
        text, self._held = self._held, ""
        return self.restoring(text, self.placeholders)

    def _partial(self, text: str) -> int:
        at = text.rfind("<")
        if at == -1 or ">" in text[at:]:
            return len(text)
        tail = text[at:]
        if any(p.startswith(tail) for p in self.placeholders._originals):
            return at
        return len(text)


class JsonStreamRestorer(StreamRestorer):
    """A `StreamRestorer` for streamed tool-call arguments (JSON text)."""

    restoring = staticmethod(restore_json)
