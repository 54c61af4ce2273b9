"""Per-account limits: token bucket, priority gate, pacing and back-off on the fake clock."""

from __future__ import annotations

import asyncio

import pytest

from gateway.oc.ratelimit import AccountLimiter, Priority, PriorityGate, TokenBucket
from tests.clocks import FakeClock, until


def test_bucket_allows_a_burst_then_paces_at_the_rate() -> None:
    bucket = TokenBucket(rate=4.0, burst=4.0, now=0.0)
    assert [bucket.take(0.0) for _ in range(4)] == [0.0] * 4
    assert bucket.take(0.0) == pytest.approx(0.25)
    assert bucket.take(0.25) == 0.0
    assert bucket.take(10.0) == 0.0
    assert bucket.tokens == pytest.approx(3.0)  # refilled to the burst, not beyond


def test_reserve_keeps_the_lower_part_of_the_bucket_for_high_priority() -> None:
    bucket = TokenBucket(rate=10.0, burst=10.0, now=0.0)
    for _ in range(5):
        assert bucket.take(0.0, reserve=4.5) == 0.0
    assert bucket.take(0.0, reserve=4.5) == pytest.approx(0.05)  # needs 5.5, has 5
    assert bucket.take(0.0) == 0.0  # high priority still gets one


async def test_gate_caps_low_priority_and_serves_high_priority_first() -> None:
    gate = PriorityGate(limit=4, low_limit=1)
    await gate.acquire(Priority.RECONCILE)
    low = asyncio.create_task(gate.acquire(Priority.RECONCILE))
    await until(lambda: gate.waiting(Priority.RECONCILE) == 1)  # over its share
    for _ in range(3):
        await gate.acquire(Priority.ENRICH)
    high = asyncio.create_task(gate.acquire(Priority.ENRICH))
    await until(lambda: gate.waiting(Priority.ENRICH) == 1)
    gate.release(Priority.RECONCILE)  # the freed slot goes to the waiting enrichment
    await high
    assert not low.done()
    gate.release(Priority.ENRICH)
    await low
    assert (gate.held(Priority.ENRICH), gate.held(Priority.RECONCILE)) == (3, 1)


async def test_gate_hands_back_a_slot_of_a_cancelled_waiter() -> None:
    gate = PriorityGate(limit=1, low_limit=1)
    await gate.acquire(Priority.ENRICH)
    waiter = asyncio.create_task(gate.acquire(Priority.ENRICH))
    await until(lambda: gate.waiting(Priority.ENRICH) == 1)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    gate.release(Priority.ENRICH)
    assert gate.held(Priority.ENRICH) == 0
    await gate.acquire(Priority.ENRICH)


async def request(limiter: AccountLimiter, clock: FakeClock, entered: list[float]) -> None:
    """One enrichment request: notes when the limiter let it in."""
    async with limiter.slot(Priority.ENRICH):
        entered.append(clock.monotonic())


async def test_limiter_paces_requests_on_the_clock() -> None:
    clock = FakeClock()
    limiter = AccountLimiter(max_concurrency=10, rate_per_s=2.0, clock=clock)
    entered: list[float] = []
    tasks = [asyncio.create_task(request(limiter, clock, entered)) for _ in range(4)]
    await until(lambda: len(entered) == 2 and clock.sleepers == 2)
    clock.advance(0.5)
    await until(lambda: len(entered) == 3)
    clock.advance(0.5)
    await asyncio.gather(*tasks)
    assert [t - 1000.0 for t in entered] == [0.0, 0.0, 0.5, 1.0]


async def test_throttling_pauses_everyone_and_reconciliation_twice_as_long() -> None:
    clock = FakeClock()
    limiter = AccountLimiter(max_concurrency=4, rate_per_s=100.0, clock=clock)
    limiter.throttled(3.0)
    assert limiter.paused_for(Priority.ENRICH) == 3.0
    assert limiter.paused_for(Priority.RECONCILE) == 6.0
    limiter.throttled(None)  # no Retry-After: 1 s, never shortening a longer pause
    assert limiter.paused_for(Priority.ENRICH) == 3.0
    limiter.strained()
    assert limiter.paused_for(Priority.ENRICH) == 3.0
    assert limiter.paused_for(Priority.RECONCILE) == 6.0

    entered: list[Priority] = []

    async def request(priority: Priority) -> None:
        async with limiter.slot(priority):
            entered.append(priority)

    tasks = [asyncio.create_task(request(p)) for p in (Priority.RECONCILE, Priority.ENRICH)]
    await until(lambda: clock.sleepers == 2)
    clock.advance(3.0)
    await until(lambda: entered == [Priority.ENRICH])
    clock.advance(3.0)
    await asyncio.gather(*tasks)
    assert entered == [Priority.ENRICH, Priority.RECONCILE]


async def test_ready_waits_for_the_requests_pacing_and_for_a_token_but_takes_none() -> None:
    clock = FakeClock()
    limiter = AccountLimiter(max_concurrency=10, rate_per_s=2.0, clock=clock)
    entered: list[float] = []
    await limiter.ready()  # a full bucket: at once
    # The burst, then one waits:
    tasks = [asyncio.create_task(request(limiter, clock, entered)) for _ in range(3)]
    await until(lambda: len(entered) == 2 and clock.sleepers == 1)
    ready = asyncio.create_task(limiter.ready())
    await until(lambda: clock.sleepers == 1)
    assert not ready.done()  # a request waits for the rate: not ready
    clock.advance(0.5)  # its token: it enters, the bucket is empty again
    await until(lambda: len(entered) == 3 and clock.sleepers == 1)
    assert not ready.done()  # now waiting for the next token
    clock.advance(0.5)
    await ready
    assert limiter.bucket.tokens == 1.0  # ready took nothing
    await asyncio.gather(*tasks)


async def test_ready_waits_out_a_pause() -> None:
    clock = FakeClock()
    limiter = AccountLimiter(max_concurrency=4, rate_per_s=100.0, clock=clock)
    limiter.throttled(2.0)
    ready = asyncio.create_task(limiter.ready())
    await until(lambda: clock.sleepers == 1)
    clock.advance(2.0)
    await ready
