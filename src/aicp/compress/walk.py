"""The steps in one walk, newest message first, for a request that must be trimmed.

With counting "auto" and a request whose bound is over the budget, the work's
counts are `pending` estimates. Rather than normalise and deduplicate every message
and then trim, each message is normalised, deduplicated and counted exactly in turn,
newest first, and the walk stops at the first turn that does not fit (`trim.fit`):
the turns older than that one are dropped untouched and never tokenized. The result
is the same as running the steps one after the other, because neither step makes a
message depend on an older one (see `dedupe`).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from aicp.compress import trim as trimming
from aicp.compress.dedupe import Deduper
from aicp.compress.whitespace import normalise_message, normalise_top
from aicp.compress.work import Tally, Work

#: A step's name, the totals before and after it, and what it changed.
Record = tuple[str, Tally, Tally, dict[str, int]]


@dataclass(slots=True)
class _Visitor:
    """`trim.Visit` for the chosen steps, adding up what each saved (in estimates)."""

    work: Work
    deduper: Deduper | None
    whitespace: bool
    texts_changed: int = 0
    spaces: int = 0
    repeats: int = 0

    def __call__(self, i: int) -> bool:
        tokens = self.work.tokens
        at = tokens[i]
        if self.whitespace and normalise_message(self.work, i):
            self.texts_changed += 1
            self.spaces += at - tokens[i]
        if self.deduper is None:
            return True
        at = tokens[i]
        kept = self.deduper.visit(i)
        self.repeats += at - (tokens[i] if kept else 0)
        return kept


def fitted(work: Work, budget: int, steps: Collection[str], min_block_chars: int) -> list[Record]:
    """Run the chosen steps (trim among them) over pending work; what each did."""
    start = work.tally()
    texts_changed = normalise_top(work) if "whitespace" in steps else 0
    deduper = Deduper(work, min_block_chars) if "dedupe" in steps else None
    visit = _Visitor(work, deduper, "whitespace" in steps)
    trimmed = trimming.fit(work, budget, visit)
    # Totals after each step, in the estimates the steps were counted in.
    spaced = Tally(work.fixed, start.messages - visit.spaces, estimated=True)
    deduped = Tally(work.fixed, spaced.messages - visit.repeats, estimated=True)
    texts_changed += visit.texts_changed
    records: list[Record] = []
    if texts_changed:
        records.append(("whitespace", start, spaced, {"texts_changed": texts_changed}))
    deduped_changes = deduper.changes() if deduper is not None else {}
    if deduped_changes:
        records.append(("dedupe", spaced, deduped, deduped_changes))
    if trimmed:
        records.append(("trim", deduped, work.tally(), {"messages_dropped": trimmed}))
    return records
