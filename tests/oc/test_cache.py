"""The TTL cache: entries expire on the clock, the size is bounded, ttl 0 stores nothing."""

from __future__ import annotations

from gateway.oc.cache import MISSING, TtlCache
from tests.clocks import FakeClock


def test_entries_live_for_the_ttl() -> None:
    clock = FakeClock()
    cache = TtlCache[str, int | None](5.0, clock)
    cache.put("a", 1)
    cache.put("none", None)
    clock.advance(4.9)
    assert cache.get("a") == 1
    assert cache.get("none") is None  # "not found" is cached too
    assert cache.get("b") is MISSING
    clock.advance(0.1)
    assert cache.get("a") is MISSING
    assert len(cache) == 1  # expired entries are dropped as they are met


def test_oldest_entries_go_first_past_the_bound() -> None:
    cache = TtlCache[int, int](60.0, FakeClock(), max_entries=3)
    for key in range(5):
        cache.put(key, key)
    assert [cache.get(k) for k in range(5)] == [MISSING, MISSING, 2, 3, 4]


def test_zero_ttl_disables_the_cache() -> None:
    cache = TtlCache[str, int](0.0, FakeClock())
    cache.put("a", 1)
    assert cache.get("a") is MISSING
