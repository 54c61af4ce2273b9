"""Time windows for OC's "by time range" queries (pure functions, no I/O).

OC caps a query's window (7 days) and its results (Outbound Order Query v2: 1,000). A
range is cut into windows of at most the cap, and a window whose answer was full is cut
in two and asked again, down to `MIN_WINDOW`.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Final

MIN_WINDOW: Final = timedelta(seconds=1)
"""A window this short that still fills the result limit is not split further."""

Window = tuple[datetime, datetime]


def split_range(start: datetime, end: datetime, max_window: timedelta) -> Iterator[Window]:
    """Consecutive windows covering [start, end], each at most `max_window` long."""
    cursor = start
    while cursor < end:
        stop = min(cursor + max_window, end)
        yield cursor, stop
        cursor = stop


def halve(window: Window) -> tuple[Window, Window] | None:
    """The two halves of `window`, or None when it is too short to split."""
    start, end = window
    if end - start < 2 * MIN_WINDOW:
        return None
    middle = start + (end - start) / 2
    return (start, middle), (middle, end)
