"""The latest callbacks this process answered, for the operator console (in memory).

Ingest workers (gateway/workers.py) answer callbacks in processes of their own: each
writes its ring to a file of the data directory once a second when it changed
(`RecentDeliveries.publish`), and the primary's console reads them all together
(`WorkersRecent`).

Ingest adds one entry where it writes its canonical log line; the entry holds what that
line holds (kind, outcome, delivery id, entity keys, latency) and the source address,
never a body or a header. A bounded ring: adding is one `deque.append` of a tuple, so the
webhook path pays nothing worth measuring; the console builds its rows only when asked.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

KEPT: Final = 200
"""Deliveries remembered (the console shows the newest first)."""
PUBLISH_S: Final = 1.0
"""How often an ingest worker writes its ring for the primary's console, when it changed."""

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

    def _all(self) -> list[_Entry]:
        """Every entry, oldest first."""
        return list(self._entries)

    def newest(self, limit: int = KEPT) -> list[Delivery]:
        entries = self._all()[-limit:]
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
        return {entry[3]: entry[5] for entry in self._all() if entry[3]}

    async def publish(self, path: Path, every_s: float = PUBLISH_S) -> None:
        """Write the ring to `path` (replaced whole) every `every_s` while it changes,
        until cancelled: how an ingest worker shows its deliveries to its primary."""
        written: _Entry | None = None
        while True:
            newest = self._entries[-1] if self._entries else None
            if newest is not written:
                await asyncio.to_thread(_write_entries, path, list(self._entries))
                written = newest
            await asyncio.sleep(every_s)


def _write_entries(path: Path, entries: list[_Entry]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    partial.write_text(json.dumps(entries))
    os.replace(partial, path)


class WorkersRecent(RecentDeliveries):
    """The rings the ingest workers published under `directory`, newest of all first."""

    def __init__(self, directory: Path, size: int = KEPT) -> None:
        super().__init__(size)
        self._directory = directory

    def _all(self) -> list[_Entry]:
        entries: list[_Entry] = []
        for path in sorted(self._directory.glob("recent-w*.json")):
            try:
                entries += [tuple(e) for e in json.loads(path.read_text())]
            except (OSError, ValueError):
                continue  # a worker that is gone, or one still starting
        entries.sort(key=lambda entry: entry[0])
        return entries[-(self._entries.maxlen or KEPT) :]
