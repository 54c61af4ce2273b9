"""What the reader's `Fetched` says about its records."""

from __future__ import annotations

import pytest

from gateway.log.base import LogRecord
from gateway.process.reading import Fetched


def at(*stamps_ms: int) -> list[LogRecord]:
    return [LogRecord("raw", 0, i, None, b"", timestamp_ms=ms) for i, ms in enumerate(stamps_ms)]


@pytest.mark.parametrize(
    ("records", "oldest_s"),
    [
        (at(), None),
        (at(0, 0), None),  # a log that keeps no timestamps
        (at(2_500, 1_000, 3_000), 1.0),
        (at(0, 4_000), 4.0),  # records without one do not count
    ],
)
def test_a_batch_is_as_old_as_its_oldest_timestamped_record(
    records: list[LogRecord], oldest_s: float | None
) -> None:
    assert Fetched(0, records, fetched_at=5.0).oldest_s == oldest_s
