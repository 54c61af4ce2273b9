"""How many callbacks ingest takes at once: a limit that adapts to what the process can do.

A process offered more callbacks than its CPU can answer only makes every one of them
slower: they share the CPU, so latency grows with the number in flight while throughput
does not. The sign of it is the event loop's lag: how late a timer fires behind its
time, which is how long every ready piece of work waits for its turn. As CoDel does with
a queue's sojourn time, the signal is the *least* lag of a window, not its worst: a
standing backlog keeps every timer late, while a burst, a garbage collection or one long
piece of work (a processor turn) makes only some late and must not shed load.
`AdaptiveLimit` is an AIMD loop on it: when a window's least lag is over the target,
the limit shrinks by a factor; when it was low and the limit was what held callbacks
back, the limit grows (fast while the lag is far below the target, by small steps near
it). Callbacks beyond the limit are refused at once (503 with Retry-After): the sender
retries later instead of waiting in a queue.

The lag, not the callbacks' own latency, is the signal on purpose: a slow broker makes
callbacks wait without using CPU, and refusing them then would only lose throughput (the
spool takes over if Kafka stays slow; see log/spool.py).

Pure: the time and the lag are passed in; `Admission` adds the in-flight count, and
whether the last window refused callbacks (`overloaded`): a processor in the same process
then gives way to ingest (`IngestService.give_way`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Final

DECREASE: Final = 0.8
FAST_INCREASE: Final = 1.25
SLOW_INCREASE: Final = 1.05
BUSY_SHARE: Final = 0.8
"""The limit grows only when a window's peak in flight came this close to it."""
QUICK_SHARE: Final = 0.25
"""A lag below this share of the target is far below it: grow fast."""


@dataclass
class AdaptiveLimit:
    """The limit on callbacks in flight, between `min_limit` and `max_limit`."""

    target_lag_s: float
    min_limit: int = 8
    max_limit: int = 1000
    initial: int = 64
    limit: float = field(init=False)

    def __post_init__(self) -> None:
        self.limit = float(min(self.max_limit, max(self.min_limit, self.initial)))

    @property
    def value(self) -> int:
        return max(self.min_limit, math.floor(self.limit))

    def window(self, lag_s: float, peak_in_flight: int) -> None:
        """One window ended: the event loop lagged at least `lag_s` all through it, and
        at most `peak_in_flight` callbacks were in flight."""
        if lag_s > self.target_lag_s:
            self.limit = max(float(self.min_limit), self.limit * DECREASE)
        elif peak_in_flight >= BUSY_SHARE * self.value:
            factor = FAST_INCREASE if lag_s < QUICK_SHARE * self.target_lag_s else SLOW_INCREASE
            self.limit = min(float(self.max_limit), max(self.limit * factor, self.limit + 1))


@dataclass
class Admission:
    """Callbacks in flight against the adaptive limit."""

    limit: AdaptiveLimit
    in_flight: int = 0
    peak: int = 0
    """The most in flight since the last window."""
    refused: int = 0
    """Callbacks refused since the last window."""
    overloaded: bool = False
    """The last window refused callbacks."""

    def full(self) -> bool:
        return self.in_flight >= self.limit.value

    def enter(self) -> bool:
        """Take a place, or False when the limit is reached (refuse the callback)."""
        if self.in_flight >= self.limit.value:
            self.refused += 1
            return False
        self.in_flight += 1
        if self.in_flight > self.peak:
            self.peak = self.in_flight
        return True

    def leave(self) -> None:
        """Give the place back."""
        self.in_flight -= 1

    def window(self, lag_s: float) -> None:
        """A window ended with the loop lagging at least `lag_s`: adapt the limit."""
        self.limit.window(lag_s, self.peak)
        self.peak = self.in_flight
        self.overloaded = self.refused > 0
        self.refused = 0
