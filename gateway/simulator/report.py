"""The sender's report: outcomes per delivery, status codes, latency percentiles.

A delivery is accepted (final answer 2xx), rejected (4xx) or failed (5xx, any other
status, or no answer). Latencies are per HTTP attempt, in milliseconds.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from gateway.simulator.data import SimCallback

PERCENTILES: tuple[tuple[str, float], ...] = (
    ("p50", 50.0),
    ("p90", 90.0),
    ("p99", 99.0),
    ("p99.9", 99.9),
)


def percentile(sorted_values: list[float], pct: float) -> float:
    """Nearest-rank percentile of already sorted values (0.0 when there are none)."""
    if not sorted_values:
        return 0.0
    rank = max(1, math.ceil(round(pct * len(sorted_values) / 100, 9)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def latency_summary(latencies_ms: list[float]) -> dict[str, float]:
    ordered = sorted(latencies_ms)
    summary = {name: round(percentile(ordered, pct), 3) for name, pct in PERCENTILES}
    summary["max"] = round(ordered[-1], 3) if ordered else 0.0
    summary["mean"] = round(sum(ordered) / len(ordered), 3) if ordered else 0.0
    return summary


@dataclass(slots=True)
class SendReport:
    target: str
    requested: int
    signing: list[str] = field(default_factory=list)
    accepted: int = 0
    rejected: int = 0
    failed: int = 0
    dropped: int = 0
    duplicates: int = 0
    retries: int = 0
    attempts: int = 0
    elapsed_s: float = 0.0
    statuses: Counter[str] = field(default_factory=Counter)
    by_kind: Counter[str] = field(default_factory=Counter)
    latencies_ms: list[float] = field(default_factory=list)
    dropped_callbacks: list[dict[str, str]] = field(default_factory=list)

    def attempt(self, status: int | None, latency_ms: float) -> None:
        self.attempts += 1
        self.statuses[str(status) if status is not None else "no_answer"] += 1
        self.latencies_ms.append(latency_ms)

    def delivered(self, kind: str, status: int | None) -> None:
        self.by_kind[kind] += 1
        if status is not None and 200 <= status < 300:
            self.accepted += 1
        elif status is not None and 400 <= status < 500:
            self.rejected += 1
        else:
            self.failed += 1

    def drop(self, callback: SimCallback) -> None:
        self.dropped += 1
        self.dropped_callbacks.append(
            {
                "kind": callback.kind,
                "entityKey": callback.entity_key,
                "messageId": callback.message_id,
            }
        )

    @property
    def sent(self) -> int:
        return self.accepted + self.rejected + self.failed

    def to_json(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "requested": self.requested,
            "sent": self.sent,
            "accepted": self.accepted,
            "rejected": self.rejected,
            "failed": self.failed,
            "dropped": self.dropped,
            "duplicates": self.duplicates,
            "attempts": self.attempts,
            "retries": self.retries,
            "elapsedS": round(self.elapsed_s, 3),
            "achievedRate": round(self.sent / self.elapsed_s, 2) if self.elapsed_s else 0.0,
            "signing": self.signing,
            "statuses": dict(sorted(self.statuses.items())),
            "byKind": dict(sorted(self.by_kind.items())),
            "latencyMs": latency_summary(self.latencies_ms),
            "droppedCallbacks": self.dropped_callbacks,
        }

    def lines(self) -> list[str]:
        data = self.to_json()
        latency = data["latencyMs"]
        return [
            f"target    {self.target}  (signing: {', '.join(self.signing) or 'none'})",
            f"sent      {data['sent']} of {self.requested} in {data['elapsedS']} s "
            f"({data['achievedRate']}/s), {self.duplicates} duplicates, {self.retries} retries",
            f"accepted  {self.accepted}   rejected {self.rejected}   failed {self.failed}"
            f"   dropped {self.dropped}",
            f"statuses  {data['statuses']}",
            "latency   " + "  ".join(f"{k} {v} ms" for k, v in latency.items()),
        ]
