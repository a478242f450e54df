"""Terms from configuration: a blocklist that is reported, an allowlist that excuses, size caps."""

from __future__ import annotations

from collections.abc import Sequence

from aicp.guardrails.base import Finding
from aicp.protocol.tokens import estimate_tokens


def _edge(ch: str) -> bool:
    return ch.isalnum() or ch == "_"


class ListDetector:
    """Blocked terms, matched case-insensitively as whole words; allowed terms excuse findings.

    A term has a word edge only where it has a word character, so "c++" and ".env"
    still match. Matching is a plain find per term on the lower-cased text, far cheaper
    than a case-insensitive alternation over the same text.
    """

    name = "blocklist"

    def __init__(self, block: Sequence[str] = (), allow: Sequence[str] = ()) -> None:
        self._block = tuple(sorted({t.strip().lower() for t in block if t.strip()}, key=len))
        self._allow = tuple(sorted({t.strip().lower() for t in allow if t.strip()}))

    def scan(self, text: str) -> list[Finding]:
        if not self._block:
            return []
        lowered = text.lower()
        if len(lowered) != len(text):  # a few characters change length when lower-cased
            lowered = "".join(c if len(c.lower()) != 1 else c.lower() for c in text)
        spans: dict[int, int] = {}
        for term in self._block:
            at = lowered.find(term)
            while at != -1:
                end = at + len(term)
                if self._whole(lowered, at, end, term) and spans.get(at, -1) < end:
                    spans[at] = end  # longest term wins at a start
                at = lowered.find(term, at + 1)
        return [
            Finding(self.name, "blocked_term", start, end, 1.0)
            for start, end in sorted(spans.items())
            if not self.allowed(text[start:end])
        ]

    @staticmethod
    def _whole(lowered: str, start: int, end: int, term: str) -> bool:
        if _edge(term[0]) and start and _edge(lowered[start - 1]):
            return False
        return not (_edge(term[-1]) and end < len(lowered) and _edge(lowered[end]))

    def allowed(self, text_span: str) -> bool:
        """Whether a finding's matched text equals or contains an allowlisted term."""
        if not self._allow:
            return False
        lowered = text_span.lower()
        # A short term only by equality: "test" must not excuse every key containing it.
        return any(
            term == lowered or (len(term) >= ALLOW_CONTAINS_MIN and term in lowered)
            for term in self._allow
        )

    def excuse(self, text: str, findings: Sequence[Finding]) -> list[Finding]:
        """The findings whose matched text is not allowlisted (whole-text findings stay)."""
        return [f for f in findings if f.start == f.end or not self.allowed(text[f.start : f.end])]


#: Allowlist terms at least this long also excuse findings that contain them.
ALLOW_CONTAINS_MIN = 8


class SizeCap:
    """A whole-text `too_long` finding when the text exceeds a cap in characters or tokens."""

    name = "size"

    def __init__(self, max_chars: int | None = None, max_tokens: int | None = None) -> None:
        for label, value in (("max_chars", max_chars), ("max_tokens", max_tokens)):
            if value is not None and value < 1:
                raise ValueError(f"size cap {label} must be at least 1, got {value}")
        self.max_chars = max_chars
        self.max_tokens = max_tokens

    def scan(self, text: str) -> list[Finding]:
        if self.max_chars is not None and len(text) > self.max_chars:
            return [Finding(self.name, "too_long", 0, 0, 1.0)]
        if self.max_tokens is not None and estimate_tokens(text) > self.max_tokens:
            return [Finding(self.name, "too_long", 0, 0, 1.0)]
        return []
