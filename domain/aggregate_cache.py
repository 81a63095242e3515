"""The cache of aggregates between batches, bounded by the facts they hold as well as by count.

An archive's memory grows with its history (it indexes every fact: ~270 bytes a fact,
measured on a 10,000-cadre district), so a bound by count alone is no bound on memory: 5,000
archives of 100 facts took ~135 MiB, of 1,000 facts ten times that. A bound that small by
count also made a district larger than it crawl: its facts arrive interleaved in time, each
batch names ~1,000 of its learners, and least-recently-used eviction then drops exactly the
archives the next batches need (1M facts took 12:13 instead of 3:05 with all cached).
Bounding the facts held lets the count bound be generous and the memory bound real.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from eventsourcing.application import LRUCache


class FactBoundedCache(LRUCache[UUID, Any]):
    """Least recently used first out, once more than `maxsize` aggregates or more than
    `max_facts` events between them are held (an aggregate weighs its version).

    The weights are kept outside the library's lock: the ledger puts and evicts only
    under its write lock, one batch at a time."""

    def __init__(self, maxsize: int, max_facts: int) -> None:
        super().__init__(maxsize)
        self.max_facts = max_facts
        self.facts = 0
        self._weights: dict[UUID, int] = {}

    def put(self, key: UUID, value: Any | None) -> Any | None:
        evicted = super().put(key, value)  # (key, value) pushed out by the count bound
        evicted_key: UUID | None = evicted[0] if evicted else None
        if evicted_key is not None:
            self.facts -= self._weights.pop(evicted_key, 0)
        weight = max(1, getattr(value, "version", 1))
        self.facts += weight - self._weights.get(key, 0)
        self._weights[key] = weight
        while self.facts > self.max_facts:
            oldest = self.root[self.NEXT][self.KEY]
            if oldest is None or oldest == key:
                break  # only this aggregate is left: keep it, the batch is using it
            self.get(oldest, evict=True)
        return evicted

    def get(self, key: UUID, *, evict: bool = False) -> Any:
        value = super().get(key, evict=evict)
        if evict:
            self.facts -= self._weights.pop(key, 0)
        return value
