"""What the operator commands share: opening the log without serving, reading times."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

from gateway.lifespan import all_topics, compacted_topics
from gateway.log.base import Log
from gateway.log.kafka import KafkaLog
from gateway.log.sqlite import SqliteLog
from gateway.settings import Settings

_RELATIVE = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhd])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


@asynccontextmanager
async def opened_log(settings: Settings) -> AsyncIterator[Log]:
    """The configured log for a command, started, and closed when the block ends: Kafka
    directly (no spool: commands never own it) or the embedded file (safe beside a
    running gateway: SQLite locks the writes)."""
    log: Log
    if settings.uses_kafka:
        log = KafkaLog(settings, topics=all_topics(settings), compacted=compacted_topics(settings))
    else:
        log = SqliteLog(settings.data_dir / "log.sqlite3", compacted=compacted_topics(settings))
    await log.start()
    try:
        yield log
    finally:
        await log.close()


def parse_when(text: str, now: datetime | None = None) -> datetime:
    """An aware datetime from ISO-8601 (`2026-11-27T10:00:00+08:00`, a date) or a
    duration before now (`90s`, `30m`, `6h`, `7d`)."""
    now = now or datetime.now(UTC)
    found = _RELATIVE.match(text.strip())
    if found:
        return now - timedelta(**{_UNITS[found.group(2)]: float(found.group(1))})
    parsed = datetime.fromisoformat(text.strip())
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def topic_named(settings: Settings, name: str) -> str:
    """A topic by its short name (outbound, returns, inventory, raw, dlq, quarantine) or
    its full name."""
    short = {
        "raw": settings.topic_raw,
        "outbound": settings.topic_outbound,
        "returns": settings.topic_returns,
        "inventory": settings.topic_inventory,
        "quarantine": settings.topic_quarantine,
        "dlq": settings.topic_dlq,
    }
    return short.get(name, name)
