"""A labelled sample, and the split that keeps tuning away from the reported figures."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

DEV, TEST = "dev", "test"


@dataclass(frozen=True, slots=True)
class Sample:
    """One text with what a detector should say about it.

    A positive names the detector and kind that must report it (and the planted span
    the finding must overlap, when there is one); a negative names the detector it is
    a negative for, or None for every detector.
    """

    text: str
    source: str
    split: str
    positive: bool
    detector: str | None = None
    kind: str | None = None
    span: tuple[int, int] | None = None


def split_of(text: str) -> str:
    """Half of a fixed corpus by content hash: stable, and blind to what is in the text."""
    return DEV if hashlib.sha256(text.encode()).digest()[0] % 2 == 0 else TEST


def planted(template: str, value: str, **fill: str) -> tuple[str, tuple[int, int]]:
    """The template with `{v}` replaced by value, and where value ended up."""
    head, _, tail = template.partition("{v}")
    head, tail = head.format(**fill), tail.format(**fill)
    return head + value + tail, (len(head), len(head) + len(value))
