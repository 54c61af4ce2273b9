"""Time windows for by-range queries: the 7-day cap and halving."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from gateway.oc.windows import MIN_WINDOW, halve, split_range

T0 = datetime(2026, 11, 1, tzinfo=UTC)


def test_a_range_is_cut_into_consecutive_capped_windows() -> None:
    windows = list(split_range(T0, T0 + timedelta(days=16), timedelta(days=7)))
    assert windows == [
        (T0, T0 + timedelta(days=7)),
        (T0 + timedelta(days=7), T0 + timedelta(days=14)),
        (T0 + timedelta(days=14), T0 + timedelta(days=16)),
    ]
    assert list(split_range(T0, T0, timedelta(days=7))) == []


def test_halving_stops_at_the_minimum_window() -> None:
    halves = halve((T0, T0 + timedelta(hours=2)))
    assert halves == (
        (T0, T0 + timedelta(hours=1)),
        (T0 + timedelta(hours=1), T0 + timedelta(hours=2)),
    )
    assert halve((T0, T0 + 2 * MIN_WINDOW - timedelta(microseconds=1))) is None
