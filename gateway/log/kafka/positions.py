"""Where the processor's input positions are kept on Kafka: in its state changelog.

Each commit of a raw partition p is a transaction of its own producer. Before, that
transaction also carried the new position to the consumer group (AddOffsetsToTxn, then
TxnOffsetCommit to the group coordinator): two of the four round trips of every commit,
the slowest among them (bench/README.md, eighth and ninth rounds). Now the position is
one more record of the transaction, on state partition p, under `POSITION_KEY`; the
changelog is compacted, so the newest position of each partition always survives.

Whoever takes partition p over reads the newest committed position record of state
partition p (after fencing the previous owner, so nothing of it is still open) and
starts there. The group's offsets are still committed, outside the transactions and
after them, a moment later: for lag tools, and as the starting point while a changelog
holds no position yet (the first start after an upgrade). A group offset is only ever
written after the position it names was committed in a transaction, so it is never
ahead of the changelog's except when an operator moved it forward by hand; the larger of
the two is where reading resumes.

The functions here decide; consumer.py does the I/O.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from gateway.log.base import POSITION_KEY

FIRST_WINDOW: Final = 64
"""How many records before a state partition's end are read first to find its newest
position record (a commit writes its changelog records, then its position)."""
WINDOW_GROWTH: Final = 16


def encode_position(offset: int) -> bytes:
    """The value of a position record: the next offset to read, in decimal."""
    if offset < 0:
        raise ValueError(f"a position is never negative: {offset}")
    return str(offset).encode()


def decode_position(value: bytes) -> int | None:
    """The offset of a position record's value; None if it is not one."""
    if not value or not value.isdigit():
        return None
    return int(value)


def last_position(records: Iterable[tuple[bytes | None, bytes]]) -> int | None:
    """The position in the last position record among (key, value) pairs, in log order."""
    found: int | None = None
    for key, value in records:
        if key == POSITION_KEY:
            decoded = decode_position(value)
            if decoded is not None:
                found = decoded
    return found


def start_position(changelog: int | None, group: int | None) -> int | None:
    """Where to resume reading a partition: the larger position known, None if neither
    is (then the consumer's reset policy decides)."""
    known = [p for p in (changelog, group) if p is not None]
    return max(known) if known else None


def scan_start(begin: int, end: int, window: int) -> int:
    """Where a backward search of a partition holding offsets [begin, end) reads from."""
    return max(begin, end - window)


def searched_all(begin: int, end: int, window: int) -> bool:
    """Whether a window this large has already covered the whole partition."""
    return end - window <= begin
