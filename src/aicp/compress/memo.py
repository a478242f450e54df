"""What the steps work out from one text, remembered by the app's `TokenCounter`.

A chat client resends its whole history on every turn, so the same long texts come
back request after request. Token counts are remembered by `TokenCounter`; this
remembers the other pure functions of a text that the steps compute on every
visit: its whitespace-normalised form, the paragraphs `dedupe` compares, and its
blocks. Results depend on the text alone (never on the other messages), so a
remembered one is exactly what computing it again would give.

Unlike token counts, these are keyed by the text itself, not a hash: a collision
would put another text in the request. Only texts of `MIN_CHARS` or more are kept
(shorter ones cost less to work out than to look up), and each table holds at most
`max_chars` characters of keys, oldest use out first.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar, cast

from aicp.compress.markdown import Span

T = TypeVar("T")
#: A text's paragraph spans, their hashes, and the set of those hashes (`dedupe`).
Blocks = tuple[list[Span], list[int], frozenset[int]]

MIN_CHARS = 256
#: Characters of remembered texts per table: a few megabytes each.
MAX_CHARS = 4_000_000


_MISSING = object()


class _Table(Generic[T]):
    __slots__ = ("_chars", "_items", "_max")

    def __init__(self, max_chars: int) -> None:
        self._items: dict[str, T] = {}
        self._chars = 0
        self._max = max_chars

    def get(self, text: str, make: Callable[[str], T]) -> T:
        items = self._items
        found = items.pop(text, _MISSING)
        if found is _MISSING:
            found = make(text)
            self._chars += len(text)
            while self._chars > self._max and items:
                oldest = next(iter(items))
                del items[oldest]
                self._chars -= len(oldest)
        items[text] = found = cast(
            T, found
        )  # re-inserted on a hit: the dict's order is least recent first
        return found


class TextMemo:
    """Per-text results of the steps (see the module docstring), one table each."""

    __slots__ = ("blocks", "normalised", "paragraphs")

    def __init__(self, max_chars: int = MAX_CHARS) -> None:
        #: The normalised text, or None when normalising leaves it as it is.
        self.normalised: _Table[str | None] = _Table(max_chars)
        self.paragraphs: _Table[frozenset[str]] = _Table(max_chars)
        self.blocks: _Table[Blocks] = _Table(max_chars)


def remembered(table: _Table[T] | None, text: str, make: Callable[[str], T]) -> T:
    """`make(text)`, from `table` when there is one and the text is long enough."""
    if table is None or len(text) < MIN_CHARS:
        return make(text)
    return table.get(text, make)
