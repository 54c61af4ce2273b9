"""Request counters per endpoint and outcome, read at `GET /_sim/stats`.

Tests and benchmarks use them to measure how many OC calls the gateway made and how they
ended. `ids` counts the ids a request asked about (SKUs, order or return numbers); `skus`
counts only SKUs.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any


@dataclass(slots=True)
class _Endpoint:
    requests: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    ids: int = 0
    skus: int = 0


class Stats:
    def __init__(self) -> None:
        self._endpoints: dict[str, _Endpoint] = {}
        self.callbacks_generated = 0
        self.since = datetime.now(UTC)

    def record(self, endpoint: str, outcome: str, *, ids: int = 0, skus: int = 0) -> None:
        entry = self._endpoints.setdefault(endpoint, _Endpoint())
        entry.requests += 1
        entry.outcomes[outcome] += 1
        entry.ids += ids
        entry.skus += skus

    def count(self, endpoint: str, outcome: str | None = None) -> int:
        entry = self._endpoints.get(endpoint)
        if entry is None:
            return 0
        return entry.requests if outcome is None else entry.outcomes[outcome]

    def reset(self) -> None:
        self._endpoints.clear()
        self.callbacks_generated = 0
        self.since = datetime.now(UTC)

    def snapshot(self) -> dict[str, Any]:
        endpoints = {
            name: {
                "requests": e.requests,
                "outcomes": dict(sorted(e.outcomes.items())),
                "ids": e.ids,
                "skus": e.skus,
            }
            for name, e in sorted(self._endpoints.items())
        }
        outcomes: Counter[str] = Counter()
        for e in self._endpoints.values():
            outcomes.update(e.outcomes)
        return {
            "since": self.since.isoformat(),
            "total": sum(e.requests for e in self._endpoints.values()),
            "outcomes": dict(sorted(outcomes.items())),
            "endpoints": endpoints,
            "callbacksGenerated": self.callbacks_generated,
        }
