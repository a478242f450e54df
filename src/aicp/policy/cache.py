"""A small bounded LRU map (the engine's decision and verdict caches)."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class Lru(Generic[K, V]):
    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[K, V] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def get(self, key: K) -> V | None:
        found = self._items.get(key)
        if found is None:
            self.misses += 1
            return None
        self.hits += 1
        self._items.move_to_end(key)
        return found

    def put(self, key: K, value: V) -> None:
        if self.size <= 0:
            return
        items = self._items
        before = len(items)
        items[key] = value  # a new key goes last: no second look-up (keys hash slowly)
        if len(items) == before:
            items.move_to_end(key)
        elif len(items) > self.size:
            items.popitem(last=False)

    def clear(self) -> None:
        self._items.clear()

    def __len__(self) -> int:
        return len(self._items)
