"""Dead letters: a record that could not be processed, kept whole with why it failed.

The DLQ record is the original record (same key, value and headers) plus `gw-reason`,
`gw-attempts` and where it came from, so `gateway dlq redrive` can put it back on the
raw topic unchanged once the cause is fixed.
"""

from __future__ import annotations

from datetime import UTC, datetime

from gateway.log.base import LogRecord, Record

H_REASON = "gw-reason"
H_ATTEMPTS = "gw-attempts"
H_ORIGINAL_TOPIC = "gw-original-topic"
H_ORIGINAL_PARTITION = "gw-original-partition"
H_ORIGINAL_OFFSET = "gw-original-offset"
H_FAILED_AT = "gw-failed-at"
_DLQ_HEADERS = {
    H_REASON,
    H_ATTEMPTS,
    H_ORIGINAL_TOPIC,
    H_ORIGINAL_PARTITION,
    H_ORIGINAL_OFFSET,
    H_FAILED_AT,
}
_MAX_REASON = 1000


def dead_letter(record: LogRecord, topic: str, reason: str, attempts: int) -> Record:
    extra = (
        (H_REASON, reason[:_MAX_REASON]),
        (H_ATTEMPTS, str(attempts)),
        (H_ORIGINAL_TOPIC, record.topic),
        (H_ORIGINAL_PARTITION, str(record.partition)),
        (H_ORIGINAL_OFFSET, str(record.offset)),
        (H_FAILED_AT, datetime.now(UTC).isoformat()),
    )
    return Record(
        topic=topic,
        value=record.value,
        key=record.key,
        headers=original_headers(record) + tuple((k, v.encode()) for k, v in extra),
    )


def original_headers(record: LogRecord) -> tuple[tuple[str, bytes], ...]:
    """The record's headers without the ones a dead-lettering added."""
    return tuple((k, v) for k, v in record.headers if k not in _DLQ_HEADERS)


def redrive_record(dead: LogRecord) -> Record:
    """The raw record to append again for a dead letter."""
    topic = dead.header(H_ORIGINAL_TOPIC)
    if topic is None:
        raise ValueError(f"DLQ record at offset {dead.offset} has no {H_ORIGINAL_TOPIC} header")
    return Record(
        topic=topic.decode(), value=dead.value, key=dead.key, headers=original_headers(dead)
    )
