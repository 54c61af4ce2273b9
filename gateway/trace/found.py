"""Records a trace found, read into what it shows (pure): typed events, dead letters and
quarantined deliveries. Only headers and the fields a trace shows are decoded; a value
that is not what it should be is shown as it is, never raised."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from gateway.ingest.record import H_DELIVERY_ID, H_KIND, H_REASON, H_RECEIVED_AT
from gateway.log.base import LogRecord
from gateway.process.dlq import (
    DEAD_FOLLOW_UP,
    H_ATTEMPTS,
    H_DEAD_LETTER,
    H_FAILED_AT,
    H_ORIGINAL_OFFSET,
    H_ORIGINAL_PARTITION,
    H_ORIGINAL_TOPIC,
)


def text(record: LogRecord, name: str) -> str | None:
    value = record.header(name)
    return None if value is None else value.decode("utf-8", "replace")


def at_ms(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


@dataclass(frozen=True, slots=True)
class Where:
    """A record's place in the log."""

    topic: str
    partition: int
    offset: int
    timestamp_ms: int

    @classmethod
    def of(cls, record: LogRecord) -> Where:
        return cls(record.topic, record.partition, record.offset, record.timestamp_ms)

    def to_json(self) -> dict[str, Any]:
        return {
            "topic": self.topic,
            "partition": self.partition,
            "offset": self.offset,
            "timestamp": at_ms(self.timestamp_ms).isoformat(),
        }


@dataclass(frozen=True, slots=True)
class Event:
    """A typed event found on a topic: its CloudEvents id and type, and what it says."""

    where: Where
    ce_id: str
    ce_type: str
    data: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, record: LogRecord) -> Event:
        try:
            data = json.loads(record.value)
        except ValueError:
            data = {}
        return cls(
            Where.of(record),
            text(record, "ce_id") or "",
            text(record, "ce_type") or "",
            data if isinstance(data, dict) else {},
        )

    @property
    def enrichment(self) -> dict[str, Any]:
        value = self.data.get("enrichment")
        return value if isinstance(value, dict) else {}

    @property
    def follow_up(self) -> bool:
        """An `*.enriched` event is to follow this one."""
        return bool(self.enrichment.get("followUp"))

    @property
    def enriches(self) -> str | None:
        value = self.data.get("enrichesEventId")
        return value if isinstance(value, str) else None

    def stock_keys(self) -> list[str]:
        """The `mfSkuId:location` keys of the stock levels the event carries."""
        levels = self.data.get("stockLevels") or self.data.get("returnStock") or []
        if isinstance(self.data.get("level"), dict):
            levels = [self.data["level"]]
        return [
            f"{level.get('mfSkuId')}:{level.get('location')}"
            for level in levels
            if isinstance(level, dict)
        ]

    def summary(self) -> dict[str, Any]:
        """The fields a person reads first."""
        data = self.data
        return {
            "type": self.ce_type,
            "ce_id": self.ce_id,
            "status": data.get("status"),
            "oc_status": data.get("ocStatus"),
            "previous_status": data.get("previousStatus"),
            "regressed": data.get("statusRegressed"),
            "reconciled": data.get("reconciled"),
            "delivery_id": data.get("deliveryId"),
            "occurred_at": data.get("occurredAt") or data.get("observedAt"),
            "enrichment": self.enrichment or None,
            "enriches_event_id": self.enriches,
        }


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A DLQ record: a raw record that failed processing, or a follow-up given up."""

    where: Where
    follow_up: bool
    reason: str
    attempts: str | None
    failed_at: str | None
    delivery_id: str | None
    original: tuple[str | None, str | None, str | None]
    """Topic, partition and offset of the record that failed."""
    event_id: str | None = None
    """For a given-up follow-up: the event whose enrichment was owed."""
    missing: tuple[str, ...] = ()

    @classmethod
    def of(cls, record: LogRecord) -> DeadLetter:
        follow_up = text(record, H_DEAD_LETTER) == DEAD_FOLLOW_UP
        event_id, missing = None, ()
        if follow_up:
            try:
                owed = json.loads(record.value)
                event_id = owed.get("event_id")
                missing = tuple(owed.get("missing") or ())
            except (ValueError, AttributeError):
                pass
        return cls(
            Where.of(record),
            follow_up,
            text(record, H_REASON) or "",
            text(record, H_ATTEMPTS),
            text(record, H_FAILED_AT),
            text(record, H_DELIVERY_ID),
            (
                text(record, H_ORIGINAL_TOPIC),
                text(record, H_ORIGINAL_PARTITION),
                text(record, H_ORIGINAL_OFFSET),
            ),
            event_id,
            missing,
        )

    def of_raw(self, raw: LogRecord) -> bool:
        """Whether this is the dead letter of raw record `raw`."""
        topic, partition, offset = self.original
        return (topic, partition, offset) == (raw.topic, str(raw.partition), str(raw.offset))

    def to_json(self) -> dict[str, Any]:
        return {
            "dead_letter": "follow_up" if self.follow_up else "record",
            "reason": self.reason,
            "attempts": self.attempts,
            "failed_at": self.failed_at,
            "delivery_id": self.delivery_id,
            "event_id": self.event_id,
            "missing": list(self.missing),
            "at": self.where.to_json(),
        }


@dataclass(frozen=True, slots=True)
class Quarantined:
    """A genuine delivery of unknown shape: it never became raw records, so no events."""

    where: Where
    delivery_id: str | None
    kind: str | None
    received_at: str | None
    reason: str
    body: Any

    def to_json(self) -> dict[str, Any]:
        return {
            "received_at": self.received_at,
            "delivery_id": self.delivery_id,
            "kind": self.kind,
            "reason": self.reason,
            "body": self.body,
            "at": self.where.to_json(),
        }


def quarantined(record: LogRecord, body: Any) -> Quarantined:
    return Quarantined(
        Where.of(record),
        text(record, H_DELIVERY_ID),
        text(record, H_KIND),
        text(record, H_RECEIVED_AT),
        text(record, H_REASON) or "",
        body,
    )
