"""The adaptive admission limit: its decisions as tables, and where it settles when a
process is offered more than its CPU can do."""

from __future__ import annotations

import asyncio

import pytest

from gateway.ingest.admission import AdaptiveLimit, Admission
from gateway.ingest.service import LOAD_WINDOW_S, wait_while_overloaded
from tests.clocks import FakeClock, until

TARGET = 0.010  # event-loop lag, s


@pytest.mark.parametrize(
    ("lag_s", "peak", "expected"),
    [
        (0.020, 64, 51),  # the loop lags: shrink
        (0.011, 10, 51),  # ... whether or not the limit was reached
        (0.008, 60, 67),  # on target and the limit held callbacks back: grow a little
        (0.001, 60, 80),  # far below the target and busy: grow fast
        (0.001, 10, 64),  # quick but not busy: the limit was not what mattered
        (0.010, 64, 67),  # exactly on target is not over it
    ],
)
def test_one_window(lag_s: float, peak: int, expected: int) -> None:
    limit = AdaptiveLimit(target_lag_s=TARGET, initial=64)
    limit.window(lag_s, peak)
    assert limit.value == expected


@pytest.mark.parametrize(("lag_s", "bound"), [(1.0, 8), (0.0, 1000)])
def test_the_limit_stays_within_its_bounds(lag_s: float, bound: int) -> None:
    limit = AdaptiveLimit(target_lag_s=TARGET, min_limit=8, max_limit=1000, initial=64)
    for _ in range(200):
        limit.window(lag_s, limit.value)
    assert limit.value == bound


def test_a_small_ceiling_is_respected_from_the_start() -> None:
    assert AdaptiveLimit(target_lag_s=TARGET, min_limit=1, max_limit=1, initial=1).value == 1


@pytest.mark.parametrize("work_per_callback_s", [0.0002, 0.0005, 0.002])
def test_overloaded_it_settles_where_the_loop_keeps_up(work_per_callback_s: float) -> None:
    """A process offered far more than it can do: every place is taken, and the loop lags
    with the work in flight (each callback needs a few turns of `work_per_callback_s`)."""
    limit = AdaptiveLimit(target_lag_s=TARGET, min_limit=8, max_limit=5000, initial=64)
    seen = []
    for _ in range(600):
        in_flight = limit.value
        lag = in_flight * work_per_callback_s / 4  # a quarter of them ready at a time
        limit.window(lag, in_flight)
        seen.append(in_flight * work_per_callback_s / 4)
    settled = seen[-100:]
    assert min(settled) <= TARGET  # on or under the target ...
    assert max(settled) <= TARGET * 1.4  # ... never far over it
    assert min(settled) >= TARGET * 0.6  # and not starving the process


def test_admission_counts_places_and_the_peak_of_each_window() -> None:
    limit = AdaptiveLimit(target_lag_s=TARGET, min_limit=2, max_limit=3, initial=2)
    admission = Admission(limit)
    assert admission.enter()
    assert admission.enter()
    assert admission.full()
    assert not admission.enter()
    admission.leave()
    assert (admission.in_flight, admission.peak) == (1, 2)
    admission.window(0.001)  # busy (peak 2 of 2) and quick: the limit grows
    assert limit.value == 3
    assert admission.peak == 1  # the next window starts from what is in flight now


@pytest.mark.parametrize(
    ("refusals_by_window", "overloaded"),
    [
        ([0], False),
        ([1], True),  # one refusal in the window is overload
        ([3, 0], False),  # a window with none clears it
        ([0, 2], True),
    ],
)
def test_a_window_that_refused_callbacks_marks_the_process_overloaded(
    refusals_by_window: list[int], overloaded: bool
) -> None:
    admission = Admission(AdaptiveLimit(target_lag_s=TARGET, min_limit=1, max_limit=1, initial=1))
    assert admission.enter()  # the one place is taken: every other callback is refused
    for refusals in refusals_by_window:
        for _ in range(refusals):
            assert not admission.enter()
        admission.window(0.001)
    assert admission.overloaded is overloaded


async def test_a_processor_waits_while_ingest_refuses_but_not_longer_than_its_cap() -> None:
    admission = Admission(AdaptiveLimit(target_lag_s=TARGET, min_limit=1, max_limit=1, initial=1))
    clock = FakeClock()

    def overloaded() -> bool:
        return admission.overloaded

    await wait_while_overloaded(overloaded, clock, max_s=1.0)  # calm: at once
    assert clock.t == 1000.0
    admission.enter()
    admission.enter()  # refused
    admission.window(0.001)
    waiting = asyncio.create_task(wait_while_overloaded(overloaded, clock, max_s=1.0))
    await until(lambda: clock.sleepers == 1)
    clock.advance(LOAD_WINDOW_S)
    await until(lambda: clock.sleepers == 1)
    assert not waiting.done()  # still overloaded: it waits on
    admission.window(0.001)  # a window without refusals
    clock.advance(LOAD_WINDOW_S)
    await until(waiting.done)
    admission.enter()  # refused again (the place is still taken)
    admission.window(0.001)
    started = clock.t
    capped = asyncio.create_task(wait_while_overloaded(overloaded, clock, max_s=1.0))
    while not capped.done():  # overloaded all along: the cap ends the wait
        await until(lambda: clock.sleepers == 1 or capped.done())
        if not capped.done():
            clock.advance(LOAD_WINDOW_S)
    assert clock.t - started == pytest.approx(1.0)
