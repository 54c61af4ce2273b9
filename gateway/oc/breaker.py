"""A circuit breaker per OC endpoint: closed -> open -> half-open (one trial) -> closed.

Closed: calls pass; `failures` consecutive transient failures open it. Open: calls fail at
once with `OcUnavailable` for `reset_s`. Half-open: exactly one trial call passes; its
success closes the breaker, its failure opens it for another `reset_s`; other calls fail
at once meanwhile. Only failures that say OC is down count (timeouts, connection errors,
5xx); an answer from OC, even a refusal, counts as a success. The state is exported as
`gateway_oc_breaker_state{endpoint}` (0 closed, 1 half-open, 2 open); the open ->
half-open step happens when the next call asks, so the gauge shows it from then on.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from gateway.clock import Clock
from gateway.errors import OcUnavailable


class BreakerOpen(OcUnavailable):
    """A call refused by an open (or busy half-open) breaker, without reaching OC."""


class BreakerState(enum.IntEnum):
    CLOSED = 0
    HALF_OPEN = 1
    OPEN = 2


class CircuitBreaker:
    def __init__(
        self,
        endpoint: str,
        *,
        failures: int,
        reset_s: float,
        clock: Clock,
        on_change: Callable[[str, BreakerState], None] | None = None,
    ) -> None:
        self.endpoint = endpoint
        self._threshold = failures
        self._reset_s = reset_s
        self._clock = clock
        self._on_change = on_change
        self._state = BreakerState.CLOSED
        self._failures = 0
        self._opened_at = 0.0
        self._trial_running = False
        self._publish()

    @property
    def state(self) -> BreakerState:
        """The state a call arriving now would meet (open turns half-open after reset_s)."""
        if self._state is BreakerState.OPEN and self._reset_elapsed():
            return BreakerState.HALF_OPEN
        return self._state

    def rejects(self) -> bool:
        """True when a call arriving now would be refused (open, or a trial is running).

        Does not take the half-open trial: cheap to ask before queueing work."""
        state = self.state
        return state is BreakerState.OPEN or (
            state is BreakerState.HALF_OPEN and self._trial_running
        )

    def refuse_if_open(self) -> None:
        """Raise `BreakerOpen` when `rejects()`."""
        if self.rejects():
            raise self._refusal()

    @contextmanager
    def attempt(self, is_failure: Callable[[BaseException], bool]) -> Iterator[None]:
        """Guard one call: raise `OcUnavailable` when refused; record how the call ended.

        `is_failure(exc)` says whether an exception means OC is down. Other exceptions
        (and cancellation) leave the breaker as it was, freeing a half-open trial."""
        trial = self._admit()
        try:
            yield
        except BaseException as exc:
            if isinstance(exc, Exception) and is_failure(exc):
                self._failed()
            elif trial:
                self._trial_running = False
            raise
        else:
            self._succeeded()

    def _admit(self) -> bool:
        state = self.state
        if state is BreakerState.CLOSED:
            return False
        if state is BreakerState.HALF_OPEN and not self._trial_running:
            self._set(BreakerState.HALF_OPEN)
            self._trial_running = True
            return True
        raise self._refusal()

    def _refusal(self) -> BreakerOpen:
        return BreakerOpen(
            f"OC endpoint {self.endpoint} is unavailable (circuit breaker open)",
            endpoint=self.endpoint,
            retry_after_s=self._retry_after(),
        )

    def _succeeded(self) -> None:
        self._failures = 0
        self._trial_running = False
        self._set(BreakerState.CLOSED)

    def _failed(self) -> None:
        self._trial_running = False
        self._failures += 1
        if self._state is BreakerState.HALF_OPEN or self._failures >= self._threshold:
            self._opened_at = self._clock.monotonic()
            self._set(BreakerState.OPEN)

    def _reset_elapsed(self) -> bool:
        return self._clock.monotonic() - self._opened_at >= self._reset_s

    def _retry_after(self) -> float:
        return max(0.0, self._opened_at + self._reset_s - self._clock.monotonic())

    def _set(self, state: BreakerState) -> None:
        if state is not self._state:
            self._state = state
            self._publish()

    def _publish(self) -> None:
        if self._on_change is not None:
            self._on_change(self.endpoint, self._state)
