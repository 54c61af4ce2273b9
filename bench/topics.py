"""An independent reader of the gateway's topics: what a `read_committed` consumer sees.

It shares no code with the gateway's log: on Kafka it is a plain aiokafka consumer with
`isolation_level="read_committed"` (no group, from the beginning); on the embedded log it
reads the SQLite file read-only (SQLite readers only ever see committed transactions). It
notes when each record became visible, which gives end-to-end latency, and keeps every
record's identity for the audit.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC
from pathlib import Path
from typing import Any, Protocol

from aiokafka import AIOKafkaConsumer

from schemas.tolerant import parse_oc_datetime

_POLL_S = 0.005
_DELIVERY_HEADER = "gw-delivery-id"


@dataclass(frozen=True, slots=True)
class Seen:
    """One record as the independent reader saw it."""

    at: float  # epoch seconds when it became visible to the reader
    topic: str
    ce_id: str | None
    ce_type: str | None
    delivery_id: str | None  # raw records: gw-delivery-id; status events: deliveryId
    enrichment: str | None = None  # status events: enrichment.status
    enriches: str | None = None  # *.enriched events: the eventId they complete
    event_id: str | None = None
    change: str | None = None  # reconciled status events: see `change_key`
    where: str | None = None  # "partition@offset" in its topic, to find a duplicate's copies


def change_key(entity: str, oc_status: str | None, occurred_at: str | None) -> str | None:
    """Entity, OC status and OC event time: what makes two reports the same change (the
    gateway publishes one event per change, whether a callback or reconciliation saw it)."""
    if occurred_at is None:
        return None
    try:
        instant = parse_oc_datetime(occurred_at).astimezone(UTC).isoformat()
    except ValueError:
        return None
    return f"{entity}|{(oc_status or '').upper()}|{instant}"


def callback_change(body: bytes) -> str | None:
    """The change an outbound callback reports (its first order), as `change_key`."""
    try:
        orders = json.loads(body)["data"]
        order = orders[0]
        return change_key(order["orderNumber"], order.get("status"), order.get("statusTime"))
    except (ValueError, KeyError, IndexError, TypeError):
        return None


def _seen(
    at: float, topic: str, headers: dict[str, bytes], value: bytes, parse: bool, where: str
) -> Seen:
    ce_id = headers.get("ce_id")
    ce_type = headers.get("ce_type")
    if ce_id is None:  # a raw (or quarantine) record
        delivery = headers.get(_DELIVERY_HEADER)
        return Seen(at, topic, None, None, delivery.decode() if delivery else None, where=where)
    document: dict[str, Any] = json.loads(value) if parse else {}
    enrichment = document.get("enrichment")
    subject = headers.get("ce_subject")
    change = None
    if document.get("reconciled") and subject is not None:
        change = change_key(subject.decode(), document.get("ocStatus"), document.get("occurredAt"))
    return Seen(
        at,
        topic,
        ce_id.decode(),
        ce_type.decode() if ce_type else None,
        document.get("deliveryId"),
        enrichment.get("status") if isinstance(enrichment, dict) else None,
        document.get("enrichesEventId"),
        document.get("eventId"),
        change,
        where,
    )


class Reader(Protocol):
    records: list[Seen]

    async def run(self, stop: asyncio.Event) -> None: ...


@dataclass
class KafkaReader:
    bootstrap: str
    topics: Sequence[str]
    parse: frozenset[str]  # topics whose values are decoded (the others: headers only)
    records: list[Seen] = field(default_factory=list)

    async def run(self, stop: asyncio.Event) -> None:
        consumer = AIOKafkaConsumer(
            *self.topics,
            bootstrap_servers=self.bootstrap,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            isolation_level="read_committed",
            metadata_max_age_ms=1000,
            fetch_max_wait_ms=50,
        )
        await consumer.start()
        try:
            while not stop.is_set():
                batch = await consumer.getmany(timeout_ms=50, max_records=5000)
                now = time.time()
                for messages in batch.values():
                    for m in messages:
                        headers = {k: bytes(v) for k, v in (m.headers or ())}
                        value, where = m.value or b"", f"{m.partition}@{m.offset}"
                        self.records.append(
                            _seen(now, m.topic, headers, value, m.topic in self.parse, where)
                        )
        finally:
            await consumer.stop()


@dataclass
class SqliteReader:
    path: Path
    topics: Sequence[str]
    parse: frozenset[str]
    records: list[Seen] = field(default_factory=list)
    _next: dict[str, int] = field(default_factory=dict)

    def _poll(self, conn: sqlite3.Connection) -> int:
        found = 0
        for topic in self.topics:
            rows = conn.execute(
                "SELECT offset, headers, value FROM records "
                "WHERE topic = ? AND offset >= ? ORDER BY offset LIMIT 5000",
                (topic, self._next.get(topic, 0)),
            ).fetchall()
            now = time.time()
            for offset, headers_text, value in rows:
                headers = {k: v.encode("latin-1") for k, v in json.loads(headers_text)}
                parse = topic in self.parse
                self.records.append(_seen(now, topic, headers, value, parse, f"0@{offset}"))
                self._next[topic] = offset + 1
            found += len(rows)
        return found

    async def run(self, stop: asyncio.Event) -> None:
        # The gateway is ready before a reader starts, so its file exists.
        conn = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, check_same_thread=False)
        try:
            while not stop.is_set():
                try:
                    found = await asyncio.to_thread(self._poll, conn)
                except sqlite3.OperationalError:
                    found = 0  # the file is being created or locked; try again
                if not found:
                    await asyncio.sleep(_POLL_S)
        finally:
            conn.close()


class SeenDeliveries:
    """The delivery ids (and reconciled changes) a reader has seen so far, updated
    incrementally. A callback counts as out when its own event is, or when reconciliation
    published the same change first (the gateway then rightly drops the callback's)."""

    def __init__(self, records: list[Seen], bodies: Mapping[str, bytes]) -> None:
        self._records = records
        self._bodies = bodies
        self._cursor = 0
        self.ids: set[str] = set()
        self.changes: set[str] = set()

    def covers(self, wanted: Iterable[str]) -> bool:
        for record in self._records[self._cursor :]:
            if record.delivery_id is not None and record.ce_id is not None:
                self.ids.add(record.delivery_id)
            if record.change is not None:
                self.changes.add(record.change)
        self._cursor = len(self._records)
        return all(d in self.ids or self._reconciled(d) for d in wanted)

    def _reconciled(self, delivery_id: str) -> bool:
        body = self._bodies.get(delivery_id)
        return body is not None and callback_change(body) in self.changes


class Watching:
    """Run a reader in the background: `async with Watching(reader):`."""

    def __init__(self, reader: Reader) -> None:
        self.reader = reader
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Watching:
        self._task = asyncio.create_task(self.reader.run(self._stop))
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._stop.set()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def check(self) -> None:
        """Raise the reader's error, if it died."""
        if self._task is not None and self._task.done():
            self._task.result()

    async def wait_for(self, done: Any, timeout_s: float) -> bool:
        """Poll `done()` (a plain predicate) until true or `timeout_s` passed."""
        deadline = time.monotonic() + timeout_s
        while not done():
            self.check()
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.1)
        return True


class Quiet:
    """True once `records` stopped growing for `seconds` (late duplicates would show)."""

    def __init__(self, records: list[Seen], seconds: float) -> None:
        self._records = records
        self._seconds = seconds
        self._count = len(records)
        self._since = time.monotonic()

    def __call__(self) -> bool:
        if len(self._records) != self._count:
            self._count, self._since = len(self._records), time.monotonic()
        return time.monotonic() - self._since >= self._seconds
