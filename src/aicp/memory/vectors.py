"""In-process nearest neighbours over unit vectors, one partition per model.

A partition holds its entries in preallocated numpy columns that double when
full: the vector, its owner (key, user and team ids), the context fingerprint
it was asked in, a sensitivity level and an expiry time. Removal leaves a
tombstone (a row no bound lets through); the partition compacts when
tombstones outnumber live rows, so both stay amortised O(1).

A search is exact. Each vector is stored split: the first `head_dims`
coordinates in one matrix, the rest in another with its norm. One
matrix-vector product over the heads gives `head·q`, and Cauchy-Schwarz bounds
the full score by `head·q + |q_tail|·|tail|`; only rows whose bound reaches the
threshold can match. Filters (owner, context, sensitivity, expiry, removal)
then apply to those candidates as one mask, and the survivors are scored in
full. So the best valid entry is found even when better ones are filtered out,
and a query reads a quarter of the memory a full product would. Over 100,000
vectors of 256 dims on this project's 2 shared cores (bench/cache_cpu.py, one
BLAS thread): the full product, which is memory-bound, about 4 ms; the split
search about 1.1 ms. When the bound lets most rows through (a partition of
near-duplicates of the query) the tails are multiplied in one product instead
of gathered, and the search costs about what the full product does.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Generic, TypeVar, cast

from aicp.config import SENSITIVITIES
from aicp.errors import ConfigError

try:
    import numpy as np
    import numpy.typing as npt
except ImportError as exc:  # the message names the extra to install
    raise ConfigError("the vector index needs numpy: pip install 'aicp[semantic]'") from exc

P = TypeVar("P")
Floats = npt.NDArray[np.float32]

RANK = {name: i for i, name in enumerate(SENSITIVITIES)}
#: float32 rounding in the bound: a candidate is never lost to it.
SLACK = 1e-4
NOBODY = -1
#: The code of a string never indexed: it matches no row.
UNKNOWN = -2


@dataclass(frozen=True, slots=True)
class Scope:
    """Whose entries a search may return: None leaves that side open."""

    key: str | None = None
    user: str | None = None
    team: str | None = None

    @property
    def owner(self) -> tuple[str | None, str | None, str | None]:
        """In the order of the index's owner columns."""
        return self.key, self.user, self.team


ANYONE = Scope()


@dataclass(frozen=True, slots=True)
class Match(Generic[P]):
    id: str
    score: float
    payload: P


class _Partition(Generic[P]):
    """The entries of one model, as columns of `capacity` rows (`count` used)."""

    def __init__(self, dims: int, head: int, capacity: int) -> None:
        self.dims, self.head_dims, self.count, self.live = dims, head, 0, 0
        self.ids: list[str | None] = []
        self.payloads: list[P | None] = []
        self._allocate(capacity)

    def _allocate(self, capacity: int) -> None:
        self.head = np.zeros((capacity, self.head_dims), dtype=np.float32)
        self.tail = np.zeros((capacity, self.dims - self.head_dims), dtype=np.float32)
        self.tail_norm = np.zeros(capacity, dtype=np.float32)
        self.expires = np.full(capacity, -math.inf)
        self.level = np.zeros(capacity, dtype=np.int8)
        self.owner = np.full((capacity, len(ANYONE.owner)), NOBODY, dtype=np.int32)
        self.context = np.full(capacity, NOBODY, dtype=np.int32)
        self.alive = np.zeros(capacity, dtype=np.bool_)

    @property
    def capacity(self) -> int:
        return int(self.head.shape[0])

    def _columns(self) -> tuple[str, ...]:
        return ("head", "tail", "tail_norm", "expires", "level", "owner", "context", "alive")

    def _resize(self, rows: npt.NDArray[np.intp], capacity: int) -> None:
        """Keep `rows` (in order) at the top of columns of `capacity` rows."""
        old = {name: getattr(self, name) for name in self._columns()}
        self._allocate(capacity)
        for name, column in old.items():
            getattr(self, name)[: rows.size] = column[rows]
        self.ids = [self.ids[i] for i in rows]
        self.payloads = [self.payloads[i] for i in rows]
        self.count = int(rows.size)

    def append(
        self, vector: Floats, payload: P, entry_id: str, meta: tuple[list[int], int, int]
    ) -> int:
        if self.count == self.capacity:
            if self.count - self.live >= self.capacity // 4:
                self.compact()
            else:
                self._resize(np.arange(self.count), 2 * self.capacity)
        row = self.count
        self.head[row] = vector[: self.head_dims]
        self.tail[row] = vector[self.head_dims :]
        self.tail_norm[row] = np.linalg.norm(vector[self.head_dims :])
        self.owner[row], self.context[row], self.level[row] = meta
        self.alive[row] = True
        self.ids.append(entry_id)
        self.payloads.append(payload)
        self.count += 1
        self.live += 1
        return row

    def set_expiry(self, row: int, expires_at: float) -> None:
        self.expires[row] = expires_at

    def kill(self, row: int) -> None:
        self.alive[row] = False
        self.head[row] = 0.0
        self.tail_norm[row] = 0.0
        self.ids[row] = None
        self.payloads[row] = None
        self.live -= 1

    def compact(self) -> None:
        self._resize(np.flatnonzero(self.alive[: self.count]), self.capacity)

    def wants_compaction(self) -> bool:
        dead = self.count - self.live
        return dead > self.live and dead >= 64


class VectorIndex(Generic[P]):
    """Unit vectors of `dims` floats with a payload each, searched per model."""

    def __init__(self, dims: int, *, head_dims: int = 64, initial_capacity: int = 256) -> None:
        if dims <= 0 or initial_capacity <= 0:
            raise ValueError("dims and initial_capacity must be positive")
        self.dims = dims
        # A narrow index gains nothing from the split: all of it is head.
        self._head = dims if dims < 2 * head_dims else head_dims
        self._initial = initial_capacity
        self._parts: dict[str, _Partition[P]] = {}
        self._where: dict[str, tuple[str, int]] = {}
        self._codes: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self._where)

    def __contains__(self, entry_id: object) -> bool:
        return entry_id in self._where

    def add(
        self,
        entry_id: str,
        model: str,
        vector: npt.ArrayLike,
        payload: P,
        *,
        scope: Scope = ANYONE,
        context: str = "",
        sensitivity: str = "internal",
        expires_at: float = math.inf,
    ) -> None:
        """Add (or replace) one entry; `scope` names its owner (key, user, team)."""
        unit = self._unit(vector)
        if unit is None:
            raise ValueError("cannot index a zero vector")
        level = _rank(sensitivity)
        self.remove(entry_id)
        part = self._parts.get(model)
        if part is None:
            part = self._parts[model] = _Partition(self.dims, self._head, self._initial)
        meta = ([self._code(v) for v in scope.owner], self._code(context), level)
        before = part.count
        row = part.append(unit, payload, entry_id, meta)
        part.set_expiry(row, expires_at)
        if part.count <= before:  # appending compacted: every row may have moved
            self._renumber(model, part)
        self._where[entry_id] = (model, row)

    def remove(self, entry_id: str) -> bool:
        found = self._where.pop(entry_id, None)
        if found is None:
            return False
        model, row = found
        part = self._parts[model]
        part.kill(row)
        if part.live == 0:
            del self._parts[model]
        elif part.wants_compaction():
            part.compact()
            self._renumber(model, part)
        return True

    def remove_where(
        self,
        *,
        model: str | None = None,
        user: str | None = None,
        key: str | None = None,
        team: str | None = None,
    ) -> int:
        """Remove every entry of a model, user, key and/or team; returns how many."""
        owner = Scope(key=key, user=user, team=team).owner
        if model is None and owner == ANYONE.owner:
            raise ValueError("remove_where needs a model, a user, a key or a team")
        doomed: list[str] = []
        for name, part in self._parts.items():
            if model is not None and name != model:
                continue
            mask = part.alive[: part.count].copy()
            for j, value in enumerate(owner):
                if value is not None:
                    mask &= part.owner[: part.count, j] == self._codes.get(value, UNKNOWN)
            doomed += [part.ids[i] or "" for i in np.flatnonzero(mask)]
        for entry_id in doomed:
            self.remove(entry_id)
        return len(doomed)

    def purge_expired(self, now: float) -> int:
        """Remove the entries whose expiry has passed; returns how many."""
        doomed: list[str] = []
        for part in self._parts.values():
            n = part.count
            rows = np.flatnonzero(part.alive[:n] & (part.expires[:n] <= now))
            doomed += [part.ids[i] or "" for i in rows]
        for entry_id in doomed:
            self.remove(entry_id)
        return len(doomed)

    def search(
        self,
        model: str,
        vector: npt.ArrayLike,
        threshold: float,
        *,
        now: float,
        sensitivity: str,
        scope: Scope = ANYONE,
        context: str = "",
    ) -> Match[P] | None:
        """The best entry scoring at least `threshold` that the filters allow."""
        found = self.matches(
            model,
            vector,
            threshold,
            now=now,
            sensitivity=sensitivity,
            scope=scope,
            context=context,
            limit=1,
        )
        return found[0] if found else None

    def matches(
        self,
        model: str,
        vector: npt.ArrayLike,
        threshold: float,
        *,
        now: float,
        sensitivity: str,
        scope: Scope = ANYONE,
        context: str = "",
        limit: int = 4,
    ) -> list[Match[P]]:
        """Up to `limit` allowed entries scoring at least `threshold`, best first.

        Allowed: unexpired at `now`, asked in `context`, owned as `scope` asks,
        and labelled with the request's sensitivity: an answer never crosses a level,
        up or down.
        """
        part = self._parts.get(model)
        query = self._unit(vector)
        wanted = [None if v is None else self._codes.get(v, UNKNOWN) for v in scope.owner]
        ctx = self._codes.get(context, UNKNOWN)
        if part is None or query is None or UNKNOWN in (ctx, *wanted) or limit <= 0:
            return []
        n, h = part.count, self._head
        q_head, q_tail = query[:h], query[h:]
        scores = part.head[:n] @ q_head
        bound = scores + float(np.linalg.norm(q_tail)) * part.tail_norm[:n] + SLACK
        rows = np.flatnonzero(bound >= threshold)
        full = rows.size > 256 and rows.size > n // 8
        if full:  # the bound let most rows through: one product beats a big gather
            scores = scores + part.tail[:n] @ q_tail
            rows = rows[scores[rows] >= threshold]
        mask = part.alive[rows] & (part.expires[rows] > now)
        mask &= (part.level[rows] == _rank(sensitivity)) & (part.context[rows] == ctx)
        for j, code in enumerate(wanted):
            if code is not None:
                mask &= part.owner[rows, j] == code
        rows = rows[mask]
        exact = scores[rows]
        if not full and h < self.dims:
            exact = exact + part.tail[rows] @ q_tail
        return self._best(part, rows, exact, threshold, limit)

    @staticmethod
    def _best(
        part: _Partition[P], rows: npt.NDArray[np.intp], exact: Floats, threshold: float, limit: int
    ) -> list[Match[P]]:
        keep = exact >= threshold
        rows, exact = rows[keep], exact[keep]
        if rows.size > limit:
            top = np.argpartition(-exact, limit - 1)[:limit]
            rows, exact = rows[top], exact[top]
        order = np.argsort(-exact, kind="stable")
        found: list[Match[P]] = []
        for i in order:
            entry_id = part.ids[rows[i]]
            if entry_id is not None:  # always, for a live row
                found.append(Match(entry_id, float(exact[i]), cast(P, part.payloads[rows[i]])))
        return found

    def _unit(self, vector: npt.ArrayLike) -> Floats | None:
        unit = np.asarray(vector, dtype=np.float32).reshape(-1)
        if unit.size != self.dims:
            raise ValueError(f"expected a vector of {self.dims} dims, got {unit.size}")
        norm = float(np.linalg.norm(unit))
        if not math.isfinite(norm) or norm == 0.0:
            return None
        return unit / norm

    def _code(self, value: str | None) -> int:
        if value is None:
            return NOBODY
        return self._codes.setdefault(value, len(self._codes))

    def _renumber(self, model: str, part: _Partition[P]) -> None:
        for row, entry_id in enumerate(part.ids):
            if entry_id is not None:
                self._where[entry_id] = (model, row)


def _rank(sensitivity: str) -> int:
    try:
        return RANK[sensitivity]
    except KeyError:
        raise ValueError(f"unknown sensitivity {sensitivity!r}") from None
