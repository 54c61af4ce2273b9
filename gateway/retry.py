"""The one retry layer: which failures to try again, how long to wait, and when to stop.

Every place that tries again after a failure uses a `RetryPolicy`: the OC client's
requests, the processor's records and its consumer, follow-up enrichments and the spool
drainer. Whether a failure is worth another try is the error's own
`GatewayError.retryable` (errors.py); an exception of any other type is a surprise (a
bug), retried only by policies that say so (`retry_unexpected`), such as the processor's
per-record one, which then dead-letters what still fails. Waits grow exponentially with
jitter (half fixed, half random, so concurrent callers spread out but never retry at
once), are at least the error's `retry_after_s` (OC's `Retry-After`), and stop when the
attempts or the total time budget run out; a wait that would overrun the budget is not
taken. Loops that never give up (a consumer that must come back, a drainer) keep a
`Backoff`: the same waits, reset by a success.
"""

from __future__ import annotations

import math
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from gateway.clock import Clock
from gateway.errors import GatewayError

T = TypeVar("T")

BACKOFF_BASE_S = 0.2
BACKOFF_CAP_S = 5.0


def retryable(error: BaseException, *, unexpected: bool = False) -> bool:
    """Whether trying again may help: the error's own flag, or `unexpected` for an
    exception that is not one of the gateway's."""
    if isinstance(error, GatewayError):
        return error.retryable
    return unexpected and isinstance(error, Exception)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how long to retry. `max_retries` counts retries after the first
    attempt; `total_s` bounds the time from the first attempt to the last."""

    max_retries: int
    total_s: float = math.inf
    base_s: float = BACKOFF_BASE_S
    cap_s: float = BACKOFF_CAP_S
    retry_unexpected: bool = False

    def backoff(self, retry: int, rng: random.Random) -> float:
        """The jittered wait before retry number `retry` (1-based), ignoring Retry-After:
        uniform in [d/2, d] with d = min(cap, base * 2**(retry-1))."""
        ceiling = min(self.cap_s, self.base_s * 2.0 ** (max(1, retry) - 1))
        return ceiling / 2 + rng.uniform(0, ceiling / 2)

    def delay(
        self, retry: int, error: BaseException, elapsed_s: float, rng: random.Random
    ) -> float | None:
        """Seconds to wait before retry number `retry`, or None to give up."""
        if retry > self.max_retries or not retryable(error, unexpected=self.retry_unexpected):
            return None
        wait = self.backoff(retry, rng)
        after = getattr(error, "retry_after_s", None)
        if isinstance(after, int | float):
            wait = max(wait, float(after))
        if elapsed_s + wait >= self.total_s:
            return None
        return wait


async def with_retries(
    attempt: Callable[[float], Awaitable[T]],
    policy: RetryPolicy,
    clock: Clock,
    rng: random.Random,
    on_retry: Callable[[BaseException], None] | None = None,
) -> T:
    """Run `attempt(remaining_s)` until it succeeds or `policy` gives up (the last error
    is raised). `remaining_s` is what is left of the total budget for that attempt;
    `on_retry` hears of every failure that is retried (for metrics and logs)."""
    started = clock.monotonic()
    retry = 0
    while True:
        elapsed = clock.monotonic() - started
        try:
            return await attempt(policy.total_s - elapsed)
        except Exception as exc:
            retry += 1
            wait = policy.delay(retry, exc, clock.monotonic() - started, rng)
            if wait is None:
                raise
            if on_retry is not None:
                on_retry(exc)
            await clock.sleep(wait)


class Backoff:
    """Consecutive failures of a loop that never gives up: each failure makes the next
    wait longer (the policy's jittered backoff), a success starts over."""

    def __init__(
        self,
        policy: RetryPolicy,
        rng: random.Random | None = None,
        on_retry: Callable[[], None] | None = None,
    ) -> None:
        self._policy = policy
        self._rng = rng or random.Random()
        self._on_retry = on_retry
        self.failures = 0

    def failed(self) -> float:
        """Note a failure; the seconds to wait before trying again."""
        self.failures += 1
        if self._on_retry is not None:
            self._on_retry()
        return self._policy.backoff(self.failures, self._rng)

    def succeeded(self) -> None:
        self.failures = 0
