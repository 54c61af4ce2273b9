"""Raw records and typed events as the gateway writes them, for the trace's pure tests."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from gateway.ingest.record import Kind, Received, raw_records
from gateway.log.base import Headers, LogRecord, Record
from tests.helpers import outbound_callback

RAW = "oc.callbacks.raw.v1"
ORDER = "OCO0000011225074GB"
T0 = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)


def as_read(record: Record, offset: int, partition: int = 2) -> LogRecord:
    return LogRecord(
        record.topic,
        partition,
        offset,
        record.key,
        record.value,
        record.headers,
        record.timestamp_ms or 0,
    )


def raw(
    status: str,
    *,
    offset: int,
    delivery: str | None = None,
    minute: int | None = None,
    order: str = ORDER,
    kind: Kind = "outbound",
    body: bytes | None = None,
    extra_headers: Headers = (),
) -> LogRecord:
    """One raw record of `order` as ingest writes it, received `offset` minutes after T0."""
    at = minute if minute is not None else offset
    body = body or outbound_callback(
        order, status, message_id=f"m-{status}", status_time=f"2026-11-27T16:{at:02d}:00+0800"
    )
    received = Received(
        kind=kind,
        body=body,
        delivery_id=delivery or f"d-{status}-{offset}",
        received_at=T0 + timedelta(minutes=offset),
        verified=("path_token",),
        content_type="application/json",
    )
    (record,) = raw_records(received, [order], RAW)
    record = Record(
        record.topic,
        record.value,
        record.key,
        record.headers + extra_headers,
        timestamp_ms=record.timestamp_ms,
    )
    return as_read(record, offset)


def event(
    ce_id: str,
    data: dict[str, Any],
    *,
    offset: int,
    topic: str = "oc.outbound.orders.v1",
    ce_type: str = "oc.outbound.order.status_changed.v1",
    key: str = ORDER,
) -> LogRecord:
    headers = (("ce_id", ce_id.encode()), ("ce_type", ce_type.encode()))
    stamp = int((T0 + timedelta(minutes=offset, seconds=1)).timestamp() * 1000)
    return LogRecord(topic, 1, offset, key.encode(), json.dumps(data).encode(), headers, stamp)
