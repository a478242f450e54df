"""What the steps work out from one text, remembered by the app's `TokenCounter`.

A chat client resends its whole history on every turn, so the same long texts come
back request after request. Token counts are remembered by `TokenCounter`; this
remembers the other pure functions of a text that the steps compute on every
visit: its whitespace-normalised form, the paragraphs `dedupe` compares, and its
blocks. Results depend on the text alone (never on the other messages), so a
remembered one is exactly what computing it again would give.

Unlike token counts, these are keyed by the text itself, not a hash: a collision
would put another text in the request. Only texts of `MIN_CHARS` or more are kept
(shorter ones cost less to work out than to look up). Each table holds entries
worth at most `max_bytes`, oldest use out first, an entry weighed as its text's
characters plus what its value holds per paragraph (measured with tracemalloc:
about 250 bytes a paragraph for the paragraph set, 600 for the blocks), so text
of many short paragraphs weighs what it costs. One entry may take at most an
eighth of a table; a larger one is worked out and not kept.

Not thread-safe: the gateway compresses on its event loop's thread only.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar, cast

from aicp.compress.markdown import Span

T = TypeVar("T")
#: A text's paragraph spans, their hashes, and the set of those hashes (`dedupe`):
#: shared by every request that sends the text, so never changed.
Blocks = tuple[tuple[Span, ...], tuple[int, ...], frozenset[int]]

MIN_CHARS = 256
#: Bytes (as weighed above) of each table: the three together stay under ~25 MB.
MAX_BYTES = 8_000_000
PARAGRAPH_BYTES = 250
BLOCK_BYTES = 600

_MISSING = object()


class _Table(Generic[T]):
    __slots__ = ("_bytes", "_items", "_max", "_weigh")

    def __init__(self, max_bytes: int, weigh: Callable[[str, T], int]) -> None:
        self._items: dict[str, tuple[T, int]] = {}
        self._bytes = 0
        self._max = max_bytes
        self._weigh = weigh

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, text: object) -> bool:
        return text in self._items

    @property
    def weight(self) -> int:
        return self._bytes

    def get(self, text: str, make: Callable[[str], T]) -> T:
        items = self._items
        found = items.pop(text, _MISSING)
        if found is not _MISSING:
            items[text] = pair = cast(tuple[T, int], found)  # the dict's order: least recent first
            return pair[0]
        value = make(text)
        weight = self._weigh(text, value)
        if weight > self._max // 8:
            return value
        self._bytes += weight
        while self._bytes > self._max and items:
            oldest = next(iter(items))
            self._bytes -= items.pop(oldest)[1]
        items[text] = (value, weight)
        return value


def _normalised_weight(text: str, value: str | None) -> int:
    return len(text) + (len(value) if value is not None else 0)


def _paragraphs_weight(text: str, value: frozenset[str]) -> int:
    return len(text) + PARAGRAPH_BYTES * len(value)


def _blocks_weight(text: str, value: Blocks) -> int:
    return len(text) + BLOCK_BYTES * len(value[0])


class TextMemo:
    """Per-text results of the steps (see the module docstring), one table each."""

    __slots__ = ("blocks", "normalised", "paragraphs")

    def __init__(self, max_bytes: int = MAX_BYTES) -> None:
        #: The normalised text, or None when normalising leaves it as it is.
        self.normalised: _Table[str | None] = _Table(max_bytes, _normalised_weight)
        self.paragraphs: _Table[frozenset[str]] = _Table(max_bytes, _paragraphs_weight)
        self.blocks: _Table[Blocks] = _Table(max_bytes, _blocks_weight)


def remembered(table: _Table[T], text: str, make: Callable[[str], T]) -> T:
    """`make(text)`, from `table` when the text is long enough to be kept."""
    if len(text) < MIN_CHARS:
        return make(text)
    return table.get(text, make)
