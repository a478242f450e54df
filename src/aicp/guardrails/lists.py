"""Terms from configuration: a blocklist that is reported, an allowlist that excuses, size caps."""

from __future__ import annotations

import re
from collections.abc import Sequence

from aicp.guardrails.base import Finding
from aicp.protocol.tokens import estimate_tokens


def _term_pattern(term: str) -> str:
    # A word edge only where the term has a word character: "c++" and ".env" still match.
    head = r"(?<!\w)" if term[0].isalnum() or term[0] == "_" else ""
    tail = r"(?!\w)" if term[-1].isalnum() or term[-1] == "_" else ""
    return head + re.escape(term) + tail


class ListDetector:
    """Blocked terms, matched case-insensitively as whole words; allowed terms excuse findings."""

    name = "blocklist"

    def __init__(self, block: Sequence[str] = (), allow: Sequence[str] = ()) -> None:
        blocked = sorted({t.strip().lower() for t in block if t.strip()}, key=len, reverse=True)
        self._pattern = (
            re.compile("|".join(_term_pattern(t) for t in blocked), re.IGNORECASE)
            if blocked
            else None
        )
        self._allow = tuple(sorted({t.strip().lower() for t in allow if t.strip()}))

    def scan(self, text: str) -> list[Finding]:
        if self._pattern is None:
            return []
        return [
            Finding(self.name, "blocked_term", m.start(), m.end(), 1.0)
            for m in self._pattern.finditer(text)
            if not self.allowed(m.group())
        ]

    def allowed(self, text_span: str) -> bool:
        """Whether a finding's matched text equals or contains an allowlisted term."""
        if not self._allow:
            return False
        lowered = text_span.lower()
        return any(term in lowered for term in self._allow)

    def excuse(self, text: str, findings: Sequence[Finding]) -> list[Finding]:
        """The findings whose matched text is not allowlisted (whole-text findings stay)."""
        return [f for f in findings if f.start == f.end or not self.allowed(text[f.start : f.end])]


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
