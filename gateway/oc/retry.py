"""The one retry layer of the OC client: which failures to retry, and how long to wait.

Only `OcTransient` is retried (timeouts, connection errors, 5xx, 429). An auth failure has
already had its one refresh-and-retry in `auth.py`; a refusal will not change; an open
breaker or a spent budget means "not now". Waits grow exponentially with jitter
(half fixed, half random, so concurrent callers spread out but never retry instantly),
are at least OC's `Retry-After`, and stop when either the attempts or the total time
budget (`oc_total_timeout_s`) run out; a wait that would overrun the budget is not taken.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from gateway.errors import OcTransient
from gateway.oc.clock import Clock

T = TypeVar("T")

BACKOFF_BASE_S = 0.2
BACKOFF_CAP_S = 5.0


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_retries: int
    total_s: float
    base_s: float = BACKOFF_BASE_S
    cap_s: float = BACKOFF_CAP_S

    def backoff(self, retry: int, rng: random.Random) -> float:
        """The jittered wait before retry number `retry` (1-based), ignoring Retry-After:
        uniform in [d/2, d] with d = min(cap, base * 2**(retry-1))."""
        ceiling = min(self.cap_s, self.base_s * 2.0 ** (retry - 1))
        return ceiling / 2 + rng.uniform(0, ceiling / 2)

    def delay(
        self, retry: int, error: BaseException, elapsed_s: float, rng: random.Random
    ) -> float | None:
        """Seconds to wait before retry number `retry`, or None to give up."""
        if not isinstance(error, OcTransient) or retry > self.max_retries:
            return None
        wait = self.backoff(retry, rng)
        if error.retry_after_s is not None:
            wait = max(wait, error.retry_after_s)
        if elapsed_s + wait >= self.total_s:
            return None
        return wait


async def with_retries(
    attempt: Callable[[float], Awaitable[T]],
    policy: RetryPolicy,
    clock: Clock,
    rng: random.Random,
) -> T:
    """Run `attempt(remaining_s)` until it succeeds or `policy` gives up (the last error
    is raised). `remaining_s` is what is left of the total budget for that attempt."""
    started = clock.monotonic()
    retry = 0
    while True:
        elapsed = clock.monotonic() - started
        try:
            return await attempt(policy.total_s - elapsed)
        except OcTransient as exc:
            retry += 1
            wait = policy.delay(retry, exc, clock.monotonic() - started, rng)
            if wait is None:
                raise
            await clock.sleep(wait)
