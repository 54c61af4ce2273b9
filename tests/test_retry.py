"""The retry policy: transient failures only, jittered backoff, Retry-After, two bounds."""

from __future__ import annotations

import asyncio
import random

import pytest

from gateway.errors import OcAuthError, OcRejected, OcTransient, OcUnavailable
from gateway.retry import RetryPolicy, with_retries
from tests.clocks import FakeClock, until


def test_backoff_grows_exponentially_with_bounded_jitter() -> None:
    policy = RetryPolicy(max_retries=10, total_s=1000, base_s=0.2, cap_s=5.0)
    rng = random.Random(7)
    for retry, ceiling in [(1, 0.2), (2, 0.4), (3, 0.8), (4, 1.6), (5, 3.2), (6, 5.0), (9, 5.0)]:
        waits = [policy.backoff(retry, rng) for _ in range(200)]
        assert min(waits) >= ceiling / 2
        assert max(waits) <= ceiling
        assert len(set(waits)) > 100  # jittered


@pytest.mark.parametrize(
    "error", [OcRejected("no"), OcAuthError("token"), OcUnavailable("open"), KeyError("bug")]
)
def test_only_transient_failures_are_retried(error: BaseException) -> None:
    policy = RetryPolicy(max_retries=3, total_s=30)
    assert policy.delay(1, error, 0.0, random.Random(1)) is None


def test_attempts_and_total_time_both_bound_retries() -> None:
    policy = RetryPolicy(max_retries=3, total_s=30)
    rng = random.Random(1)
    error = OcTransient("503")
    assert policy.delay(3, error, 0.0, rng) is not None
    assert policy.delay(4, error, 0.0, rng) is None
    assert policy.delay(1, error, 29.95, rng) is None  # the wait would overrun the budget


def test_retry_after_is_a_floor_and_is_not_waited_past_the_budget() -> None:
    policy = RetryPolicy(max_retries=3, total_s=30)
    rng = random.Random(1)
    assert policy.delay(1, OcTransient("429", retry_after_s=7.0), 0.0, rng) == 7.0
    assert policy.delay(1, OcTransient("429", retry_after_s=40.0), 0.0, rng) is None


async def test_with_retries_waits_on_the_clock_and_returns_the_first_success() -> None:
    clock = FakeClock()
    policy = RetryPolicy(max_retries=3, total_s=30)
    budgets: list[float] = []

    async def attempt(remaining_s: float) -> str:
        budgets.append(remaining_s)
        if len(budgets) < 3:
            raise OcTransient("503", retry_after_s=2.0)
        return "ok"

    task = asyncio.create_task(with_retries(attempt, policy, clock, random.Random(1)))
    for _ in range(2):
        await until(lambda: clock.sleepers == 1)
        wait = clock.next_wake()
        assert wait == 2.0
        clock.advance(wait)
    assert await task == "ok"
    assert budgets == [30.0, 28.0, 26.0]


async def test_with_retries_gives_up_with_the_last_error() -> None:
    clock = FakeClock()
    policy = RetryPolicy(max_retries=1, total_s=30)
    calls = 0

    async def attempt(_: float) -> None:
        nonlocal calls
        calls += 1
        raise OcTransient(f"timeout {calls}")

    task = asyncio.create_task(with_retries(attempt, policy, clock, random.Random(1)))
    await until(lambda: clock.sleepers == 1)
    clock.advance(clock.next_wake() or 0)
    with pytest.raises(OcTransient, match="timeout 2"):
        await task
    assert calls == 2
