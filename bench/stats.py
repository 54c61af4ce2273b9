"""Percentiles (nearest rank) and per-second series."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass


@dataclass(frozen=True, slots=True)
class Percentiles:
    count: int
    mean: float
    p50: float
    p90: float
    p99: float
    p999: float
    max: float

    def as_ms(self) -> dict[str, float]:
        values = asdict(self)
        return {k: (v if k == "count" else round(v * 1000, 3)) for k, v in values.items()}


def _rank(ordered: Sequence[float], q: float) -> float:
    index = max(0, math.ceil(q * len(ordered)) - 1)
    return ordered[min(index, len(ordered) - 1)]


def percentiles(values: Iterable[float]) -> Percentiles:
    ordered = sorted(values)
    if not ordered:
        nan = float("nan")
        return Percentiles(0, nan, nan, nan, nan, nan, nan)
    return Percentiles(
        count=len(ordered),
        mean=sum(ordered) / len(ordered),
        p50=_rank(ordered, 0.50),
        p90=_rank(ordered, 0.90),
        p99=_rank(ordered, 0.99),
        p999=_rank(ordered, 0.999),
        max=ordered[-1],
    )


def per_second(times: Iterable[float], origin: float) -> list[int]:
    """How many of `times` fall in each whole second after `origin`."""
    counted = Counter(int(t - origin) for t in times if t >= origin)
    if not counted:
        return []
    return [counted.get(second, 0) for second in range(max(counted) + 1)]


def slope(points: Sequence[tuple[float, float]]) -> float | None:
    """Least-squares slope of `(x, y)` points (None for fewer than two distinct x)."""
    if len(points) < 2:
        return None
    mean_x = sum(x for x, _ in points) / len(points)
    mean_y = sum(y for _, y in points) / len(points)
    spread = sum((x - mean_x) ** 2 for x, _ in points)
    if spread == 0:
        return None
    return sum((x - mean_x) * (y - mean_y) for x, y in points) / spread
