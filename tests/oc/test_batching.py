"""The batcher: one fetch per window, coalescing, max batch size, caching, failures."""

from __future__ import annotations

import asyncio

import pytest

from gateway.errors import OcTransient, OcUnavailable
from gateway.oc.batching import Batcher
from gateway.oc.cache import TtlCache
from tests.clocks import FakeClock, until


class Source:
    """What the batcher fetches from: records each batch; may be told to fail or hold."""

    def __init__(self) -> None:
        self.batches: list[list[str]] = []
        self.error: Exception | None = None
        self.gate: asyncio.Event | None = None

    async def fetch(self, keys: list[str]) -> dict[str, str]:
        self.batches.append(keys)
        if self.gate is not None:
            await self.gate.wait()
        if self.error is not None:
            raise self.error
        return {key: key.upper() for key in keys if key != "unknown"}


def make(
    clock: FakeClock, source: Source, *, max_batch: int = 200, ttl_s: float = 5.0
) -> tuple[Batcher[str, str | None], list[int]]:
    hits: list[int] = []
    batcher = Batcher[str, str | None](
        source.fetch,
        window_s=0.01,
        max_batch=max_batch,
        cache=TtlCache[str, str | None](ttl_s, clock),
        clock=clock,
        absent=None,
        on_hit=lambda: hits.append(1),
    )
    return batcher, hits


async def test_concurrent_lookups_share_one_fetch_after_the_window() -> None:
    clock, source = FakeClock(), Source()
    batcher, hits = make(clock, source)
    tasks = [asyncio.create_task(batcher.get(f"sku{i}")) for i in range(50)]
    tasks.append(asyncio.create_task(batcher.get("unknown")))
    await until(lambda: clock.sleepers == 1)
    assert source.batches == []  # nothing is sent before the window closes
    clock.advance(0.01)
    results = await asyncio.gather(*tasks)
    assert len(source.batches) == 1
    assert sorted(source.batches[0]) == sorted([f"sku{i}" for i in range(50)] + ["unknown"])
    assert results[:2] == ["SKU0", "SKU1"]
    assert results[-1] is None
    assert hits == []


async def test_identical_lookups_in_flight_are_coalesced_and_results_cached() -> None:
    clock, source = FakeClock(), Source()
    source.gate = asyncio.Event()
    batcher, hits = make(clock, source)
    first = asyncio.create_task(batcher.get_many(["a", "b"]))
    await until(lambda: clock.sleepers == 1)
    clock.advance(0.01)
    await until(lambda: len(source.batches) == 1)
    second = asyncio.create_task(batcher.get_many(["b", "a", "b"]))  # in flight: shared
    await until(lambda: len(hits) == 2)
    source.gate.set()
    assert await first == await second == {"a": "A", "b": "B"}
    assert await batcher.get("a") == "A"  # from the cache
    assert len(source.batches) == 1
    assert len(hits) == 3
    clock.advance(5.0)  # expired: fetched again
    task = asyncio.create_task(batcher.get("a"))
    await until(lambda: clock.sleepers == 1)
    clock.advance(0.01)
    assert await task == "A"
    assert len(source.batches) == 2


async def test_a_full_batch_is_sent_without_waiting_for_the_window() -> None:
    clock, source = FakeClock(), Source()
    batcher, _ = make(clock, source, max_batch=3)
    result = await batcher.get_many(["a", "b", "c", "d", "e", "f"])
    assert source.batches == [["a", "b", "c"], ["d", "e", "f"]]
    assert result["f"] == "F"
    await batcher.close()


async def test_keys_asked_at_once_are_sent_with_the_open_batch_without_the_window() -> None:
    clock, source = FakeClock(), Source()
    batcher, _ = make(clock, source)
    single = asyncio.create_task(batcher.get("a"))
    await until(lambda: clock.sleepers == 1)  # "a" waits for the window
    assert await batcher.get_many(["b", "c"], at_once=True) == {"b": "B", "c": "C"}
    assert source.batches == [["a", "b", "c"]]  # one request, the clock never moved
    assert await single == "A"
    await batcher.close()


async def test_a_failed_fetch_fails_every_waiter_and_caches_nothing() -> None:
    clock, source = FakeClock(), Source()
    source.error = OcTransient("503")
    batcher, _ = make(clock, source)
    tasks = [asyncio.create_task(batcher.get(k)) for k in ("a", "b")]
    await until(lambda: clock.sleepers == 1)
    clock.advance(0.01)
    for task in tasks:
        with pytest.raises(OcTransient):
            await task
    source.error = None
    task = asyncio.create_task(batcher.get("a"))
    await until(lambda: clock.sleepers == 1)
    clock.advance(0.01)
    assert await task == "A"


async def test_a_caller_that_stops_waiting_does_not_cancel_the_shared_fetch() -> None:
    clock, source = FakeClock(), Source()
    source.gate = asyncio.Event()
    batcher, _ = make(clock, source)
    impatient = asyncio.create_task(batcher.get("a"))
    await until(lambda: clock.sleepers == 1)
    clock.advance(0.01)
    await until(lambda: len(source.batches) == 1)
    impatient.cancel()
    with pytest.raises(asyncio.CancelledError):
        await impatient
    source.gate.set()
    await until(lambda: batcher.in_flight == 0)
    assert await batcher.get("a") == "A"  # the fetch finished and filled the cache
    assert len(source.batches) == 1


async def test_precheck_refuses_new_keys_but_cached_ones_are_answered() -> None:
    clock, source = FakeClock(), Source()
    refusing = False

    def precheck() -> None:
        if refusing:
            raise OcUnavailable("breaker open")

    batcher = Batcher[str, str | None](
        source.fetch,
        window_s=0.0,
        max_batch=10,
        cache=TtlCache[str, str | None](5.0, clock),
        clock=clock,
        absent=None,
        precheck=precheck,
    )
    assert await batcher.get("a") == "A"
    refusing = True
    assert await batcher.get("a") == "A"
    with pytest.raises(OcUnavailable):
        await batcher.get("b")
    assert source.batches == [["a"]]


async def test_close_fails_queued_lookups() -> None:
    clock, source = FakeClock(), Source()
    batcher, _ = make(clock, source)
    task = asyncio.create_task(batcher.get("a"))
    await until(lambda: clock.sleepers == 1)
    await batcher.close()
    with pytest.raises(OcUnavailable):
        await task
    with pytest.raises(OcUnavailable):
        await batcher.get("b")
