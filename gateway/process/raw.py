"""Reading what ingest wrote on a raw record: its kind, delivery id and receive time."""

from __future__ import annotations

from datetime import UTC, datetime

from gateway.errors import ProcessingError
from gateway.ingest.record import (
    H_DELIVERY_ID,
    H_KIND,
    H_RECEIVED_AT,
    H_SOURCE,
    SOURCE_RECONCILE,
    Kind,
)
from gateway.log.base import LogRecord


def _header(record: LogRecord, name: str) -> str:
    value = record.header(name)
    if value is None:
        raise ProcessingError(f"raw record lacks the {name} header")
    return value.decode()


def record_context(record: LogRecord) -> tuple[Kind, str, datetime, bool]:
    """(kind, delivery id, received at, written by reconciliation) from a raw record."""
    kind: Kind
    match _header(record, H_KIND):
        case "outbound":
            kind = "outbound"
        case "return":
            kind = "return"
        case "inventory":
            kind = "inventory"
        case other:
            raise ProcessingError(f"unknown callback kind {other!r}")
    try:
        received_at = datetime.fromisoformat(_header(record, H_RECEIVED_AT))
    except ValueError as exc:
        raise ProcessingError(f"bad {H_RECEIVED_AT} header: {exc}") from exc
    reconciled = record.header(H_SOURCE) == SOURCE_RECONCILE.encode()
    return kind, _header(record, H_DELIVERY_ID), received_at.astimezone(UTC), reconciled
