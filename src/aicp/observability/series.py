"""Counters and histograms for one event loop: plain floats, no locks.

prometheus_client takes a lock for every increment (its metrics may be shared
by threads); the request counters here are only touched on the event loop,
and scrapes are served on it too, so an increment can be one addition. The
families are exposed through a collector in the app's registry and render
exactly as prometheus_client's own (`_total`, `_bucket{le=...}`, `_sum`,
`_count`). Multiprocess mode uses prometheus_client's metrics instead, whose
values live in files the other workers can read.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Iterator, Sequence
from typing import Protocol

from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric


class Counting(Protocol):
    def inc(self, amount: float = ...) -> None: ...


class Observing(Protocol):
    def observe(self, amount: float) -> None: ...


class CounterFamilyLike(Protocol):
    def labels(self, *values: str) -> Counting: ...


class HistogramFamilyLike(Protocol):
    def labels(self, *values: str) -> Observing: ...


class _Count:
    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0.0

    def inc(self, amount: float = 1) -> None:
        self.value += amount


class _Histogram:
    __slots__ = ("bounds", "counts", "sum")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # the last is +Inf
        self.sum = 0.0

    def observe(self, amount: float) -> None:
        self.sum += amount
        # The first bound >= amount: the bucket `le` that bound (Prometheus's rule).
        self.counts[bisect_left(self.bounds, amount)] += 1


class Family:
    def __init__(self, name: str, doc: str, labelnames: Sequence[str]) -> None:
        self.name = name
        self.doc = doc
        self.labelnames = tuple(labelnames)


class CounterFamily(Family):
    def __init__(self, name: str, doc: str, labelnames: Sequence[str]) -> None:
        super().__init__(name, doc, labelnames)
        self.children: dict[tuple[str, ...], _Count] = {}

    def labels(self, *values: str) -> _Count:
        child = self.children.get(values)
        if child is None:
            if len(values) != len(self.labelnames):
                raise ValueError(f"{self.name}: expected labels {self.labelnames}, got {values}")
            child = self.children[values] = _Count()
        return child

    def collect(self) -> Metric:
        family = CounterMetricFamily(self.name, self.doc, labels=self.labelnames)
        for values, child in self.children.items():
            family.add_metric(values, child.value)
        return family


class HistogramFamily(Family):
    def __init__(
        self, name: str, doc: str, labelnames: Sequence[str], buckets: Iterable[float]
    ) -> None:
        super().__init__(name, doc, labelnames)
        self.bounds = tuple(sorted(float(b) for b in buckets))
        self.children: dict[tuple[str, ...], _Histogram] = {}

    def labels(self, *values: str) -> _Histogram:
        child = self.children.get(values)
        if child is None:
            if len(values) != len(self.labelnames):
                raise ValueError(f"{self.name}: expected labels {self.labelnames}, got {values}")
            child = self.children[values] = _Histogram(self.bounds)
        return child

    def collect(self) -> Metric:
        family = HistogramMetricFamily(self.name, self.doc, labels=self.labelnames)
        edges = [repr(b) for b in self.bounds] + ["+Inf"]  # as prometheus_client: "1.0"
        for values, child in self.children.items():
            running = 0
            buckets = []
            for edge, count in zip(edges, child.counts, strict=True):
                running += count
                buckets.append((edge, float(running)))
            family.add_metric(values, buckets, child.sum)
        return family


class Collector:
    """Registers the families with a `CollectorRegistry`."""

    def __init__(self, families: Iterable[CounterFamily | HistogramFamily]) -> None:
        self.families = list(families)

    def collect(self) -> Iterator[Metric]:
        for family in self.families:
            yield family.collect()

    def describe(self) -> Iterator[Metric]:
        return self.collect()
