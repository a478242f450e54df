"""What every detector returns, the interface they share, and the cheap word gate.

A detector never hands back the matched text, only where it is: the text may be a
secret, and findings travel into traces, events and receipts.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Protocol

# Lower-cased ASCII letters, digits and "_" stay; every other byte becomes a separator.
_WORD_BYTES = frozenset(b"abcdefghijklmnopqrstuvwxyz0123456789_")
_SEPARATORS = bytes(b if b in _WORD_BYTES else 0x20 for b in range(256))


@dataclass(frozen=True, slots=True)
class Finding:
    """One thing a detector found: `text[start:end]`, or (0, 0) for the whole text."""

    detector: str
    kind: str
    start: int
    end: int
    confidence: float

    def as_dict(self) -> dict[str, object]:
        return {
            "detector": self.detector,
            "kind": self.kind,
            "start": self.start,
            "end": self.end,
            "confidence": self.confidence,
        }


class Detector(Protocol):
    name: str

    def scan(self, text: str) -> list[Finding]: ...


def words(lowered: str) -> frozenset[bytes]:
    """The ASCII words of already lower-cased text, as bytes.

    Detectors test these against the words their patterns need before running any
    regex: a set intersection costs far less than a regex scan over 4,000 characters,
    and most prompts contain none of the words.
    """
    return frozenset(lowered.encode("ascii", "ignore").translate(_SEPARATORS).split())


def select_kinds(
    requested: Iterable[str] | None, supported: frozenset[str], detector: str
) -> frozenset[str]:
    """The kinds a detector should report; unknown names are a configuration error."""
    if requested is None:
        return supported
    if isinstance(requested, str):
        raise TypeError(f"{detector}: kinds must be a collection of names, not a string")
    chosen = frozenset(requested)
    unknown = sorted(chosen - supported)
    if unknown:
        raise ValueError(f"{detector}: unknown kinds {unknown}; known: {sorted(supported)}")
    return chosen


def search_near(
    pattern: re.Pattern[str], text: str, needles: Iterable[str], reach: int
) -> Iterator[re.Match[str]]:
    """Matches of `pattern` within `reach` characters of any needle, each span once.

    A regex scanned over a whole prompt costs tens of microseconds even when nothing
    matches; a plain find for a rare word costs one, so patterns that must contain one
    of a few words run only in windows around them. A window ends at a space, so a
    word boundary at its end means what it would in the whole text.
    """
    n = len(text)
    seen: set[tuple[int, int]] = set()
    for needle in needles:
        covered = -1
        at = text.find(needle)
        while at != -1:
            if at + len(needle) > covered:
                lo, hi = max(0, at - reach), min(n, at + len(needle) + reach)
                space = text.find(" ", hi)
                hi = n if space == -1 else space
                for m in pattern.finditer(text, lo, hi):
                    if m.span() not in seen:
                        seen.add(m.span())
                        yield m
                covered = hi - reach
            at = text.find(needle, at + len(needle))
