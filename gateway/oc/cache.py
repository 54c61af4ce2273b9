"""A short-lived, size-bounded cache of look-up results (per key, per endpoint)."""

from __future__ import annotations

import enum
from collections import OrderedDict
from typing import Final, Generic, Literal, TypeVar

from gateway.clock import Clock

K = TypeVar("K")
V = TypeVar("V")

DEFAULT_MAX_ENTRIES = 10_000


class _Missing(enum.Enum):
    MISSING = enum.auto()


MISSING: Final = _Missing.MISSING
"""What `TtlCache.get` returns for a key without a live entry."""


class TtlCache(Generic[K, V]):
    """Values live `ttl_s` seconds; past `max_entries` the oldest insertions go first.

    A ttl of 0 disables the cache (nothing is stored). `None` is a value like any other
    (a look-up that found nothing is worth remembering briefly too).
    """

    def __init__(self, ttl_s: float, clock: Clock, max_entries: int = DEFAULT_MAX_ENTRIES):
        self._ttl_s = ttl_s
        self._clock = clock
        self._max_entries = max_entries
        self._entries: OrderedDict[K, tuple[float, V]] = OrderedDict()

    def get(self, key: K) -> V | Literal[_Missing.MISSING]:
        """The live value for `key`, or `MISSING`."""
        entry = self._entries.get(key)
        if entry is None:
            return MISSING
        expires_at, value = entry
        if self._clock.monotonic() >= expires_at:
            del self._entries[key]
            return MISSING
        return value

    def put(self, key: K, value: V) -> None:
        if self._ttl_s <= 0:
            return
        self._entries.pop(key, None)
        self._entries[key] = (self._clock.monotonic() + self._ttl_s, value)
        while len(self._entries) > self._max_entries:
            self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)
