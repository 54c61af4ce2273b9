"""Dead letters: a record that could not be processed, kept whole with why it failed.

The DLQ record is the original record (same key, value and headers) plus `gw-reason`,
`gw-attempts` and where it came from, so `gateway dlq redrive` can put it back on the
raw topic unchanged once the cause is fixed.

A follow-up enrichment that was given up is dead-lettered too, as a record of what was
owed (`gw-dead-letter: follow_up`, the follow-up as JSON, keyed by its entity): there is
no raw record to re-drive, so `redrive` leaves it; `gateway replay --key K --enrich`
rebuilds that entity's events with OC's current state.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

from gateway.ingest.record import H_DELIVERY_ID, H_KIND
from gateway.log.base import LogRecord, Record
from gateway.process.state import FollowUp, StateKey

H_REASON = "gw-reason"
H_ATTEMPTS = "gw-attempts"
H_ORIGINAL_TOPIC = "gw-original-topic"
H_ORIGINAL_PARTITION = "gw-original-partition"
H_ORIGINAL_OFFSET = "gw-original-offset"
H_FAILED_AT = "gw-failed-at"
H_DEAD_LETTER = "gw-dead-letter"  # "follow_up" for a given-up follow-up; absent for records
DEAD_FOLLOW_UP = "follow_up"
_DLQ_HEADERS = {
    H_REASON,
    H_ATTEMPTS,
    H_ORIGINAL_TOPIC,
    H_ORIGINAL_PARTITION,
    H_ORIGINAL_OFFSET,
    H_FAILED_AT,
    H_DEAD_LETTER,
}
_MAX_REASON = 1000


def dead_letter(
    record: LogRecord, topic: str, reason: str, attempts: int, failed_at: datetime
) -> Record:
    extra = (
        (H_REASON, reason[:_MAX_REASON]),
        (H_ATTEMPTS, str(attempts)),
        (H_ORIGINAL_TOPIC, record.topic),
        (H_ORIGINAL_PARTITION, str(record.partition)),
        (H_ORIGINAL_OFFSET, str(record.offset)),
        (H_FAILED_AT, failed_at.astimezone(UTC).isoformat()),
    )
    return Record(
        topic=topic,
        value=record.value,
        key=record.key,
        headers=original_headers(record) + tuple((k, v.encode()) for k, v in extra),
    )


def given_up(
    follow_up: FollowUp, key: StateKey, topic: str, reason: str, failed_at: datetime
) -> Record:
    """The dead letter of a follow-up enrichment that was given up."""
    headers = (
        (H_DEAD_LETTER, DEAD_FOLLOW_UP),
        (H_REASON, reason[:_MAX_REASON]),
        (H_ATTEMPTS, str(follow_up.attempts + 1)),
        (H_KIND, key.kind),
        (H_DELIVERY_ID, follow_up.delivery_id),
        (H_FAILED_AT, failed_at.astimezone(UTC).isoformat()),
    )
    body = json.dumps({"entity": str(key), **follow_up.encode()}, separators=(",", ":"))
    return Record(
        topic=topic,
        value=body.encode(),
        key=key.entity.encode(),
        headers=tuple((k, v.encode()) for k, v in headers),
    )


def original_headers(record: LogRecord) -> tuple[tuple[str, bytes], ...]:
    """The record's headers without the ones a dead-lettering added."""
    return tuple((k, v) for k, v in record.headers if k not in _DLQ_HEADERS)


def redrivable(dead: LogRecord) -> bool:
    """Whether a dead letter is a record that can go back where it came from."""
    return dead.header(H_DEAD_LETTER) is None and dead.header(H_ORIGINAL_TOPIC) is not None


def redrive_record(dead: LogRecord) -> Record:
    """The raw record to append again for a dead letter."""
    topic = dead.header(H_ORIGINAL_TOPIC)
    if topic is None:
        raise ValueError(f"DLQ record at offset {dead.offset} has no {H_ORIGINAL_TOPIC} header")
    return Record(
        topic=topic.decode(), value=dead.value, key=dead.key, headers=original_headers(dead)
    )
