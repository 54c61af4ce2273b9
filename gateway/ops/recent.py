"""The latest callbacks this process answered, for the operator console (in memory).

Ingest adds one entry where it writes its canonical log line; the entry holds what that
line holds (kind, outcome, delivery id, entity keys, latency) and the source address,
never a body or a header. A bounded ring: adding is one `deque.append` of a tuple, so the
webhook path pays nothing worth measuring; the console builds its rows only when asked.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

KEPT: Final = 200
"""Deliveries remembered (the console shows the newest first)."""

_Entry = tuple[float, str, str, str, str, str, float]


@dataclass(frozen=True, slots=True)
class Delivery:
    at: float
    """Unix time of the answer."""
    kind: str
    outcome: str
    """accepted, quarantined, or the reason it was refused (verification_failed, ...)."""
    delivery_id: str
    entity_keys: tuple[str, ...]
    source: str
    latency_ms: float


class RecentDeliveries:
    def __init__(self, size: int = KEPT, clock: Callable[[], float] = time.time) -> None:
        self._entries: deque[_Entry] = deque(maxlen=size)
        self._clock = clock

    def add(
        self,
        kind: str,
        outcome: str,
        delivery_id: str,
        entity_keys: str,
        source: str,
        latency_s: float,
    ) -> None:
        """One answered callback; `entity_keys` comma-separated, as the log line has it."""
        self._entries.append(
            (self._clock(), kind, outcome, delivery_id, entity_keys, source, latency_s)
        )

    def newest(self, limit: int = KEPT) -> list[Delivery]:
        entries = list(self._entries)[-limit:]
        return [
            Delivery(
                at,
                kind,
                outcome,
                delivery,
                tuple(k for k in keys.split(",") if k),
                source,
                round(latency * 1000, 3),
            )
            for at, kind, outcome, delivery, keys, source, latency in reversed(entries)
        ]

    def sources(self) -> dict[str, str]:
        """Source address by delivery id, for the deliveries still remembered."""
        return {entry[3]: entry[5] for entry in self._entries if entry[3]}
