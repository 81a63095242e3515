"""The aggregate cache: least recently used out first, bounded by count and by facts held."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID, uuid4

import pytest

from domain.aggregate_cache import FactBoundedCache


@dataclass
class Archive:
    version: int


def ids(n: int) -> list[UUID]:
    return [uuid4() for _ in range(n)]


def test_past_its_facts_the_least_recently_used_archives_leave_first():
    cache = FactBoundedCache(maxsize=100, max_facts=250)
    a, b, c, d = ids(4)
    cache.put(a, Archive(100))
    cache.put(b, Archive(100))
    cache.get(a)  # a is now more recent than b
    cache.put(c, Archive(100))
    assert set(cache.cache) == {a, c}
    assert cache.facts == 200
    cache.put(d, Archive(200))
    assert set(cache.cache) == {d}
    assert cache.facts == 200


def test_an_archive_that_grew_weighs_its_new_version_when_put_again():
    cache = FactBoundedCache(maxsize=100, max_facts=300)
    a, b = ids(2)
    archive = Archive(100)
    cache.put(a, archive)
    cache.put(b, Archive(100))
    archive.version = 250  # facts appended, then saved: the writer puts it back
    cache.put(a, archive)
    assert set(cache.cache) == {a}
    assert cache.facts == 250


def test_the_count_bound_still_holds_and_evicted_archives_stop_counting():
    cache = FactBoundedCache(maxsize=2, max_facts=10_000)
    a, b, c = ids(3)
    for key in (a, b, c):
        cache.put(key, Archive(10))
    assert set(cache.cache) == {b, c}
    assert cache.facts == 20
    cache.get(b, evict=True)
    assert cache.facts == 10
    with pytest.raises(KeyError):
        cache.get(a)


def test_one_archive_over_the_bound_alone_is_kept_for_the_batch_using_it():
    cache = FactBoundedCache(maxsize=10, max_facts=50)
    a, b = ids(2)
    cache.put(a, Archive(10))
    cache.put(b, Archive(80))
    assert set(cache.cache) == {b}
    assert cache.get(b).version == 80


def test_the_ledger_bounds_its_cache_by_the_settings(tmp_path):
    from infra.bootstrap import build_ledger
    from infra.settings import Settings

    ledger = build_ledger(Settings(database_url=f"sqlite:///{tmp_path / 'l.db'}",
                                   aggregate_cache_size=7, aggregate_cache_facts=70))
    try:
        cache = ledger.repository.cache
        assert isinstance(cache, FactBoundedCache)
        assert (cache.maxsize, cache.max_facts) == (7, 70)
    finally:
        ledger.close()
