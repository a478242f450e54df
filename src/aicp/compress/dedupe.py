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
"""

from __future__ import annotations

from collections.abc import Iterator

from aicp.compress.forms import RESULT, SYSTEM, Path, read, replaced
from aicp.compress.markdown import Span, blocks
from aicp.compress.work import Work
from aicp.protocol.jsonutil import Json

MARKER = "[aicp: repeated content removed; see a later message]"
_CALL_BLOCKS = frozenset({"tool_use", "server_tool_use"})


def dedupe(work: Work, min_block_chars: int) -> dict[str, int]:
    changes: dict[str, int] = {}
    repeated = _drop_repeats(work)
    if repeated:
        changes["messages_removed"] = repeated
    removed = _cut_blocks(work, min_block_chars)
    if removed:
        changes["blocks_removed"] = removed
    return changes


def _drop_repeats(work: Work) -> int:
    """Drop the first of two identical consecutive messages (neither a tool call nor result)."""
    gone: set[int] = set()
    messages, kinds = work.messages, work.kinds
    for i in range(1, len(messages)):
        if kinds[i] != RESULT and messages[i] == messages[i - 1] and not _calls(messages[i]):
            gone.add(i - 1)
    if gone:
        work.drop(gone)
    return len(gone)


def _calls(message: Json) -> bool:
    if message.get("tool_calls") or message.get("function_call"):
        return True
    content = message.get("content")
    return isinstance(content, list) and any(
        isinstance(b, dict) and b.get("type") in _CALL_BLOCKS for b in content
    )


class _Slot:
    __slots__ = ("hashes", "index", "path", "spans", "text")

    def __init__(self, index: int, path: Path, text: str) -> None:
        self.index = index
        self.path = path
        self.text = text
        self.spans = blocks(text)
        self.hashes = [hash(text[a:b]) for a, b in self.spans]


def _cut_blocks(work: Work, min_chars: int) -> int:
    found = [
        (i, path, text)
        for i, message in enumerate(work.messages)
        if work.kinds[i] != SYSTEM
        for path in work.form.text_paths(message, results=True)
        if len(text := read(message, path)) >= min_chars
    ]
    shared = _maybe_repeated([text for _, _, text in found], min_chars // 2)
    if len(shared) < 2:
        return 0
    slots = [_Slot(*found[k]) for k in shared]
    later: dict[int, list[_Slot]] = {}  # paragraph hash -> later slots holding it
    rewritten: dict[int, list[tuple[Path, str]]] = {}
    removed = 0
    for slot in reversed(slots):
        cuts = list(_cuts(slot, later, min_chars)) if later else []
        if cuts:
            removed += len(cuts)
            rewritten.setdefault(slot.index, []).append((slot.path, _rebuilt(slot.text, cuts)))
        for h in set(slot.hashes):
            later.setdefault(h, []).append(slot)
    for index, edits in rewritten.items():
        message = work.messages[index]
        for path, text in edits:
            message = replaced(message, path, text)
        work.set_message(index, message)
    return removed


def _maybe_repeated(texts: list[str], least: int) -> list[int]:
    """Indexes of the texts that share paragraphs of `least` characters or more in all
    with another text: a quick test, whose texts are the only candidates for blocks.

    Made of `split`, `strip` and set operations, with no Python loop over paragraphs,
    it costs a fraction of finding the blocks, and most requests repeat nothing. Fence
    lines are split off first, so a fenced block pasted right after a different line
    of text still matches.
    """
    keyed: list[set[str]] = []
    seen: set[str] = set()
    repeated: set[str] = set()
    for text in texts:
        for mark in ("```", "~~~"):
            if mark[0] in text:  # memchr: far cheaper than the replace
                text = text.replace(mark, f"\n\n{mark}\n\n")
        keys = set(map(str.strip, text.split("\n\n")))
        repeated |= keys & seen
        seen |= keys
        keyed.append(keys)
    if not repeated:
        return []
    return [k for k, keys in enumerate(keyed) if sum(map(len, keys & repeated)) >= least]


def _cuts(slot: _Slot, later: dict[int, list[_Slot]], min_chars: int) -> Iterator[Span]:
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
        yield from _verified(slot, range(k, end + 1), later, min_chars)
        k = end + 1


def _verified(
    slot: _Slot, run: range, later: dict[int, list[_Slot]], min_chars: int
) -> Iterator[Span]:
    """The whole run if a later slot holds it; otherwise its large paragraphs that are."""
    text, spans = slot.text, slot.spans
    start, end = spans[run[0]][0], spans[run[-1]][1]
    if end - start < min_chars:
        return
    if _found(text[start:end], later[slot.hashes[run[0]]]):
        yield start, end
        return
    if len(run) == 1:
        return
    for k in run:
        a, b = spans[k]
        if b - a >= min_chars and _found(text[a:b], later[slot.hashes[k]]):
            yield a, b


def _found(piece: str, candidates: list[_Slot]) -> bool:
    return any(piece in other.text for other in candidates)


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
