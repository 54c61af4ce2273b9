"""Per-account limits on calls to OC: concurrent requests and request rate, by priority.

Two priorities share one account. Enrichment (`Priority.ENRICH`) is what events wait on;
reconciliation (`Priority.RECONCILE`) is background polling, and it yields whenever OC or
the budget is tight:

- concurrency: at most `max_concurrency` requests in flight; reconciliation holds at most
  a quarter of them (at least one) and gets a freed slot only when no enrichment request
  is waiting for one;
- rate: one token bucket of `rate_per_s` tokens/s holding one second's worth; enrichment
  takes any token, reconciliation only from the upper half of the bucket, so under
  sustained enrichment demand (bucket near empty) reconciliation waits;
- strain: a 429 stops every request for its Retry-After (1 s when absent) and
  reconciliation for twice that; any other transient failure pauses reconciliation for
  `STRAIN_PAUSE_S`.

`ready()` lets a caller with work to batch wait for the budget instead of queueing in
it: it returns once a request of its priority could start now (none of them waits for
the rate and a token is there). The processor begins its next batch then, so the
records that arrive while the budget is spent join that batch's look-ups instead of
waiting behind look-ups of their own.
"""

from __future__ import annotations

import asyncio
import enum
import math
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from gateway.clock import Clock

LOW_PRIORITY_SHARE = 0.25
STRAIN_PAUSE_S = 5.0
DEFAULT_THROTTLE_PAUSE_S = 1.0


class Priority(enum.IntEnum):
    ENRICH = 0
    RECONCILE = 1


class TokenBucket:
    """`rate` tokens per second up to `burst`; pure arithmetic over the `now` it is given."""

    def __init__(self, rate: float, burst: float, now: float) -> None:
        self.rate = rate
        self.burst = burst
        self.tokens = burst
        self._updated = now

    def _refill(self, now: float) -> None:
        if now > self._updated:
            self.tokens = min(self.burst, self.tokens + (now - self._updated) * self.rate)
            self._updated = now

    def take(self, now: float, reserve: float = 0.0) -> float:
        """Take one token when at least `1 + reserve` are there and return 0; otherwise
        take nothing and return the seconds until that many will be there."""
        wait = self.wait(now, reserve)
        if wait == 0.0:
            self.tokens -= 1.0
        return wait

    def wait(self, now: float, reserve: float = 0.0) -> float:
        """The seconds until `1 + reserve` tokens are there (0: now), taking nothing."""
        self._refill(now)
        needed = 1.0 + reserve
        if self.tokens >= needed:
            return 0.0
        return (needed - self.tokens) / self.rate


class PriorityGate:
    """A semaphore of `limit` slots where low priority holds at most `low_limit` and is
    served only when no high-priority caller is waiting. FIFO within a priority."""

    def __init__(self, limit: int, low_limit: int) -> None:
        self._limit = limit
        self._low_limit = low_limit
        self._held = dict.fromkeys(Priority, 0)
        self._waiting: dict[Priority, deque[asyncio.Future[None]]] = {p: deque() for p in Priority}

    def held(self, priority: Priority) -> int:
        return self._held[priority]

    def waiting(self, priority: Priority) -> int:
        return len(self._waiting[priority])

    def _can_grant(self, priority: Priority) -> bool:
        if sum(self._held.values()) >= self._limit:
            return False
        if priority is Priority.ENRICH:
            return True
        return self._held[priority] < self._low_limit and not self._waiting[Priority.ENRICH]

    async def acquire(self, priority: Priority) -> None:
        if not self._waiting[priority] and self._can_grant(priority):
            self._held[priority] += 1
            return
        waiter = asyncio.get_running_loop().create_future()
        self._waiting[priority].append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.release(priority)  # granted just before the cancellation arrived
            else:
                self._waiting[priority].remove(waiter)
                self._wake()
            raise

    def release(self, priority: Priority) -> None:
        self._held[priority] -= 1
        self._wake()

    def _wake(self) -> None:
        for priority in Priority:
            queue = self._waiting[priority]
            while queue and self._can_grant(priority):
                waiter = queue.popleft()
                self._held[priority] += 1
                waiter.set_result(None)


class AccountLimiter:
    """Concurrency, rate and back-off for one OC account (see the module docstring)."""

    def __init__(self, *, max_concurrency: int, rate_per_s: float, clock: Clock) -> None:
        self._clock = clock
        low_limit = max(1, math.floor(max_concurrency * LOW_PRIORITY_SHARE))
        self.gate = PriorityGate(max_concurrency, low_limit)
        burst = max(1.0, rate_per_s)
        self.bucket = TokenBucket(rate_per_s, burst, clock.monotonic())
        self._reserve = {Priority.ENRICH: 0.0, Priority.RECONCILE: (burst - 1.0) / 2}
        self._paused_until = dict.fromkeys(Priority, -math.inf)
        self._pacing = dict.fromkeys(Priority, 0)  # requests waiting for the rate
        self._paced: dict[Priority, asyncio.Event] = {p: asyncio.Event() for p in Priority}
        for event in self._paced.values():
            event.set()

    @asynccontextmanager
    async def slot(self, priority: Priority) -> AsyncIterator[None]:
        """Hold one request slot of `priority`; entered once the rate allows a request."""
        await self.gate.acquire(priority)
        try:
            await self._pace(priority)
            yield
        finally:
            self.gate.release(priority)

    async def _pace(self, priority: Priority) -> None:
        self._pacing[priority] += 1
        self._paced[priority].clear()
        try:
            while True:
                now = self._clock.monotonic()
                wait = self._paused_until[priority] - now
                if wait <= 0:
                    wait = self.bucket.take(now, self._reserve[priority])
                    if wait <= 0:
                        return
                await self._clock.sleep(wait)
        finally:
            self._pacing[priority] -= 1
            if not self._pacing[priority]:
                self._paced[priority].set()

    async def ready(self, priority: Priority = Priority.ENRICH, requests: int = 1) -> None:
        """Return once `requests` requests of `priority` could start now: none of its
        priority is waiting for the rate, no pause holds it, and the tokens are there.
        Takes nothing."""
        while True:
            if self._pacing[priority]:
                await self._paced[priority].wait()
                continue
            now = self._clock.monotonic()
            wait = max(
                self._paused_until[priority] - now,
                self.bucket.wait(
                    now, self._reserve[priority] + min(requests, self.bucket.burst) - 1
                ),
            )
            if wait <= 0:
                return
            await self._clock.sleep(wait)

    def throttled(self, retry_after_s: float | None) -> None:
        """OC answered 429: everyone waits Retry-After, reconciliation twice as long."""
        pause = retry_after_s if retry_after_s is not None else DEFAULT_THROTTLE_PAUSE_S
        self._pause(Priority.ENRICH, pause)
        self._pause(Priority.RECONCILE, 2 * pause)

    def strained(self) -> None:
        """OC failed transiently (5xx, timeout): reconciliation steps back for a while."""
        self._pause(Priority.RECONCILE, STRAIN_PAUSE_S)

    def paused_for(self, priority: Priority) -> float:
        return max(0.0, self._paused_until[priority] - self._clock.monotonic())

    def _pause(self, priority: Priority, seconds: float) -> None:
        until = self._clock.monotonic() + seconds
        self._paused_until[priority] = max(self._paused_until[priority], until)
