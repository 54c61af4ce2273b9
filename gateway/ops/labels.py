"""Label values taken from what OC sends, held to a bounded set (pure).

Prometheus keeps one series per label value, so a label fed from request data must not
grow without bound: `BoundedLabels` lets the first `limit` distinct values through as
themselves and reports every later new value as `other`.
"""

from __future__ import annotations

from typing import Final

OTHER: Final = "other"
"""The label of every value that came after the set was full."""
NONE: Final = "(none)"
"""The label of a missing or blank value."""


class BoundedLabels:
    """Maps values to label values: the first `limit` distinct ones as themselves
    (stripped, cut to `max_length` characters), later new ones to `other`; a value already
    admitted keeps its own label for good."""

    def __init__(self, limit: int, max_length: int = 64) -> None:
        if limit < 0 or max_length < 1:
            raise ValueError("limit must be >= 0 and max_length >= 1")
        self.limit = limit
        self.max_length = max_length
        self._admitted: set[str] = set()

    def __call__(self, value: str | None) -> str:
        label = (value or "").strip()[: self.max_length] or NONE
        if label in self._admitted:
            return label
        if len(self._admitted) >= self.limit:
            return OTHER
        self._admitted.add(label)
        return label
