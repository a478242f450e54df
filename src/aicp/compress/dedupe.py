"""The `dedupe` step: context pasted again, and a message sent twice in a row.

A block is a run of paragraphs (split at blank lines and at code fences) of at
least `min_block_chars` characters. When it appears verbatim in an earlier message and
again in a later one, the earlier copy becomes `MARKER` and the latest copy stays.

Why the latest: it sits next to the question that came with it, where models read
most reliably, and `trim` drops the oldest turns first, so keeping the first copy
would let trimming remove the only full copy while later markers point at nothing.
The cost is one provider prompt-cache miss on the turn a copy reappears: the
earlier message changes once, then stays the same on every following turn.

Every removal is checked: the exact text removed must occur in a later message
(paragraph hashes only pick the candidates). System prompts are never changed.

Messages are visited newest first, and what happens to one depends only on the
newer ones: so trimming, which keeps the newest turns, can deduplicate and count
them one at a time and stop at the first that does not fit (`trim.fit`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from aicp.compress.forms import RESULT, SYSTEM, read, replaced
from aicp.compress.markdown import Span, blocks
from aicp.compress.memo import Blocks, TextMemo, remembered
from aicp.compress.work import Work
from aicp.protocol.jsonutil import Json

MARKER = "[aicp: repeated content removed; see a later message]"
_CALL_BLOCKS = frozenset({"tool_use", "server_tool_use"})


def dedupe(work: Work, min_block_chars: int) -> dict[str, int]:
    """The step over the whole request."""
    deduper = Deduper(work, min_block_chars)
    for i in reversed(range(len(work.messages))):
        deduper.visit(i)
    work.drop(deduper.gone)
    return deduper.changes()


def _calls(message: Json) -> bool:
    if message.get("tool_calls") or message.get("function_call"):
        return True
    content = message.get("content")
    return isinstance(content, list) and any(
        isinstance(b, dict) and b.get("type") in _CALL_BLOCKS for b in content
    )


def _blocks(text: str) -> Blocks:
    spans, pieces = blocks(text)
    hashes = tuple(map(hash, pieces))
    return tuple(spans), hashes, frozenset(hashes)


class _Slot:
    """A newer text with its blocks, to cut older texts against (never changed)."""

    __slots__ = ("hashes", "known", "spans", "text")

    def __init__(self, text: str, memo: TextMemo) -> None:
        self.text = text
        self.spans, self.hashes, self.known = remembered(memo.blocks, text, _blocks)


@dataclass(slots=True)
class Deduper:
    """Dedupes one message at a time, newest first (`visit`); `gone` is what to drop."""

    work: Work
    min_chars: int
    gone: set[int] = field(default_factory=set)
    removed: int = 0
    #: Messages as they were before their blocks were cut, for the repeat check.
    uncut: dict[int, Json] = field(default_factory=dict)
    #: Paragraphs of the newer texts: a quick test, which texts are the only candidates.
    seen: set[str] = field(default_factory=set)
    #: Newer texts without blocks yet, and their paragraphs: they get blocks when an
    #: older text shares enough paragraphs with them to be worth cutting.
    bare: list[tuple[str, frozenset[str]]] = field(default_factory=list)
    #: The newer texts with blocks, and the hashes of all their paragraphs (set
    #: operations, not a dict of lists: a pasted file has many paragraphs, few copies).
    slots: list[_Slot] = field(default_factory=list)
    later: set[int] = field(default_factory=set)

    def changes(self) -> dict[str, int]:
        out: dict[str, int] = {}
        if self.gone:
            out["messages_removed"] = len(self.gone)
        if self.removed:
            out["blocks_removed"] = self.removed
        return out

    def visit(self, i: int) -> bool:
        """Dedupe message `i` against the newer ones; False when it goes (sent twice)."""
        work = self.work
        message = work.messages[i]
        if self._repeated(i, message):
            self.gone.add(i)
            return False
        if work.kinds[i] == SYSTEM:
            return True
        new = message
        content = message.get("content")
        if type(content) is str:  # most messages: one text, whose path is known
            if len(content) >= self.min_chars:
                cut = self._cut(content)
                if cut is not content:
                    new = {**message, "content": cut}
        else:
            for path in reversed(work.form.text_paths(message, results=True)):
                text = read(message, path)
                if len(text) >= self.min_chars:
                    cut = self._cut(text)
                    if cut is not text:
                        new = replaced(new, path, cut)
        if new is not message:
            self.uncut[i] = message
            work.set_message(i, new)
        return True

    def _repeated(self, i: int, message: Json) -> bool:
        """The first of two identical messages in a row (neither a tool call nor result)."""
        work = self.work
        if i + 1 >= len(work.messages) or work.kinds[i + 1] == RESULT:
            return False
        newer = self.uncut.get(i + 1, work.messages[i + 1])
        return newer == message and not _calls(newer)

    def _cut(self, text: str) -> str:
        """`text` with its blocks found in newer texts replaced by the marker."""
        keys = remembered(self.work.counting.texts.paragraphs, text, _keys)
        shared = keys & self.seen
        self.seen |= keys
        if not shared or sum(map(len, shared)) < self.min_chars // 2:
            self.bare.append((text, keys))
            return text
        self._give_slots(shared)
        slot = _Slot(text, self.work.counting.texts)
        cuts = list(_cuts(slot, self.later, self.slots, self.min_chars))
        self._add(slot)
        if not cuts:
            return text
        self.removed += len(cuts)
        return _rebuilt(text, cuts)

    def _give_slots(self, shared: frozenset[str]) -> None:
        """Blocks for the newer texts holding `shared` paragraphs, to cut against."""
        bare = []
        for text, keys in self.bare:
            if keys.isdisjoint(shared):
                bare.append((text, keys))
            else:
                self._add(_Slot(text, self.work.counting.texts))
        self.bare = bare

    def _add(self, slot: _Slot) -> None:
        self.slots.append(slot)
        self.later |= slot.known


def _keys(text: str) -> frozenset[str]:
    """The text's paragraphs, stripped, with fence lines split off (so a fenced block
    pasted right after a different line of text still matches).

    Made of `split`, `strip` and set operations, with no Python loop over paragraphs:
    it costs a fraction of finding the blocks, and most requests repeat nothing.
    """
    for mark in ("```", "~~~"):
        if mark[0] in text:  # memchr: far cheaper than the replace
            text = text.replace(mark, f"\n\n{mark}\n\n")
    return frozenset(filter(None, map(str.strip, text.split("\n\n"))))


def _cuts(slot: _Slot, later: set[int], slots: list[_Slot], min_chars: int) -> Iterator[Span]:
    """Spans of `slot.text` found verbatim in a later slot, each of `min_chars` or more."""
    flags = [h in later for h in slot.hashes]
    k, n = 0, len(flags)
    while k < n:
        if not flags[k]:
            k += 1
            continue
        end = k
        while end + 1 < n and flags[end + 1]:
            end += 1
        yield from _verified(slot, range(k, end + 1), slots, min_chars)
        k = end + 1


def _verified(slot: _Slot, run: range, slots: list[_Slot], min_chars: int) -> Iterator[Span]:
    """The whole run if a later slot holds it; otherwise its large paragraphs that are."""
    text, spans = slot.text, slot.spans
    start, end = spans[run[0]][0], spans[run[-1]][1]
    if end - start < min_chars:
        return
    if _found(text[start:end], slot.hashes[run[0]], slots):
        yield start, end
        return
    if len(run) == 1:
        return
    for k in run:
        a, b = spans[k]
        if b - a >= min_chars and _found(text[a:b], slot.hashes[k], slots):
            yield a, b


def _found(piece: str, first: int, slots: list[_Slot]) -> bool:
    """Whether a later slot holding the paragraph hashed `first` holds all of `piece`."""
    return any(first in other.known and piece in other.text for other in slots)


def _rebuilt(text: str, cuts: list[Span]) -> str:
    """`text` with each cut replaced by the marker; adjacent cuts share one marker."""
    out: list[str] = []
    at = 0
    for start, end in cuts:
        gap = text[at:start]
        if out and out[-1] == MARKER and not gap.strip():
            at = end
            continue
        out += [gap, MARKER]
        at = end
    out.append(text[at:])
    return "".join(out)
