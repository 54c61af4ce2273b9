"""The circuit breaker: opens on consecutive outages, one half-open trial, exports a gauge."""

from __future__ import annotations

import pytest

from gateway.errors import OcRejected, OcTransient
from gateway.oc.breaker import BreakerOpen, BreakerState, CircuitBreaker
from gateway.oc.caller import is_outage
from gateway.oc.responses import OcThrottled
from tests.clocks import FakeClock


def make(clock: FakeClock, changes: list[BreakerState] | None = None) -> CircuitBreaker:
    return CircuitBreaker(
        "stock_snapshot",
        failures=3,
        reset_s=10.0,
        clock=clock,
        on_change=(lambda _, state: changes.append(state)) if changes is not None else None,
    )


def fail(breaker: CircuitBreaker, error: Exception | None = None) -> None:
    with pytest.raises(type(error) if error else OcTransient), breaker.attempt(is_outage):
        raise error or OcTransient("down")


def state(breaker: CircuitBreaker) -> BreakerState:
    """The state now (a call, so mypy does not narrow it across steps of a test)."""
    return breaker.state


def succeed(breaker: CircuitBreaker) -> None:
    with breaker.attempt(is_outage):
        pass


def test_opens_after_consecutive_outages_only() -> None:
    breaker = make(FakeClock())
    fail(breaker)
    fail(breaker)
    succeed(breaker)  # resets the count
    fail(breaker)
    fail(breaker)
    assert state(breaker) is BreakerState.CLOSED
    fail(breaker)
    assert state(breaker) is BreakerState.OPEN
    assert breaker.rejects()
    with pytest.raises(BreakerOpen) as refused, breaker.attempt(is_outage):
        pass
    assert refused.value.retry_after_s == pytest.approx(10.0)


def test_refusals_and_throttling_do_not_count_as_outages() -> None:
    breaker = make(FakeClock())
    for _ in range(5):
        fail(breaker, OcRejected("no such order"))
        fail(breaker, OcThrottled("429"))
    assert state(breaker) is BreakerState.CLOSED


def test_half_open_lets_exactly_one_trial_through_and_closes_on_success() -> None:
    clock = FakeClock()
    changes: list[BreakerState] = []
    breaker = make(clock, changes)
    for _ in range(3):
        fail(breaker)
    clock.advance(9.9)
    assert breaker.rejects()
    clock.advance(0.1)
    assert state(breaker) is BreakerState.HALF_OPEN
    assert not breaker.rejects()
    with breaker.attempt(is_outage):
        assert breaker.rejects()  # the trial is running: everyone else is refused
        with pytest.raises(BreakerOpen), breaker.attempt(is_outage):
            pass
    assert state(breaker) is BreakerState.CLOSED
    assert changes == [
        BreakerState.CLOSED,
        BreakerState.OPEN,
        BreakerState.HALF_OPEN,
        BreakerState.CLOSED,
    ]


def test_failed_trial_reopens_for_another_reset_period() -> None:
    clock = FakeClock()
    breaker = make(clock)
    for _ in range(3):
        fail(breaker)
    clock.advance(10)
    fail(breaker)
    assert state(breaker) is BreakerState.OPEN
    clock.advance(9)
    assert breaker.rejects()
    clock.advance(1)
    assert state(breaker) is BreakerState.HALF_OPEN


def test_abandoned_trial_frees_the_half_open_slot() -> None:
    clock = FakeClock()
    breaker = make(clock)
    for _ in range(3):
        fail(breaker)
    clock.advance(10)
    with pytest.raises(KeyError), breaker.attempt(is_outage):
        raise KeyError("a bug, not an outage")
    assert state(breaker) is BreakerState.HALF_OPEN
    assert not breaker.rejects()
