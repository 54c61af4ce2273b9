"""Filling a broker's topics for `python -m bench trace` (see trace.py): a week of raw
records and their typed events, and two orders of our own woven in.

The noise is the simulator world's callbacks under many keys, with the headers ingest
writes and one typed event each, as the processor's handler makes them (re-keyed); the
two orders are built by ingest's record builder and the processor's handler. Records go
straight to the broker in per-partition batches, partitioned as the gateway's producers
partition them.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from bench.services import REPO
from gateway.ingest.record import Kind, Received, raw_records
from gateway.lifespan import all_topics, compacted_topics
from gateway.log.base import LogRecord, Record
from gateway.log.kafka.partitioner import partition_for
from gateway.log.sqlite import SqliteLog
from gateway.ops.metrics import Metrics
from gateway.process.cloudevents import event_id
from gateway.process.handler import Done, RecordHandler
from gateway.process.state import StateStore, StateView
from gateway.settings import Settings
from gateway.simulator.data import World
from gateway.simulator.lifecycle import step

FOUND = "OCO0000099000001GB"
LOST = "OCO0000099000002GB"
# (OC status, where in the week, as a fraction of the fill): a life of eight days' worth
# of changes over the second half of the week, with one delivery OC sent twice.
FOUND_LIFE = (
    ("Submitted", 0.40),
    ("Accepted", 0.45),
    ("Picked", 0.55),
    ("Packed", 0.60),
    ("Outbound", 0.75),
    ("Outbound", 0.76),  # the same delivery again
    ("Delivered", 0.90),
)
LOST_LIFE = (("Submitted", 0.50), ("Packed", 0.70), ("Outbound", 0.92))
BATCH_BYTES = 1 << 20


@dataclass(frozen=True)
class Plan:
    records: int = 1_000_000
    partitions: int = 6
    distinct: int = 20_000
    """Distinct simulator callbacks, cycled under new keys to reach `records`."""
    window_days: float = 7.0
    repeats: int = 5
    seed: int = 15
    topic_suffix: str = ""
    """Appended to every topic name (the smoke test shares its broker)."""
    settle_timeout_s: float = 180.0


@dataclass
class Filled:
    raw: int = 0
    typed: int = 0
    per_partition: dict[str, dict[int, int]] = field(default_factory=dict)
    seconds: float = 0.0


_TOPICS = ("raw", "outbound", "returns", "inventory", "quarantine", "dlq", "state", "lease")


def topics_for(suffix: str) -> dict[str, Any]:
    if not suffix:
        return {}
    defaults = Settings.model_fields
    return {f"topic_{t}": f"{defaults[f'topic_{t}'].default}.{suffix}" for t in _TOPICS}


def bench_settings(bootstrap: str, plan: Plan) -> Settings:
    return Settings(
        kafka_bootstrap_servers=bootstrap,
        kafka_partitions=plan.partitions,
        kafka_create_topics=False,
        data_dir=REPO / ".run" / "bench-trace",
        **topics_for(plan.topic_suffix),
    )


async def _create_topics(settings: Settings) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
    await admin.start()
    try:
        compacted = compacted_topics(settings)
        await admin.create_topics(
            [
                NewTopic(
                    name,
                    settings.kafka_partitions,
                    1,
                    topic_configs={"cleanup.policy": "compact"} if name in compacted else {},
                )
                for name in all_topics(settings)
            ]
        )
    finally:
        await admin.close()


def _read(record: Record, offset: int) -> LogRecord:
    return LogRecord(
        record.topic,
        0,
        offset,
        record.key,
        record.value,
        record.headers,
        record.timestamp_ms or 0,
    )


def _raw(topic: str, kind: Kind, key: str, body: bytes, at: datetime) -> Record:
    received = Received(
        kind=kind,
        body=body,
        delivery_id="sha256:" + hashlib.sha256(body).hexdigest(),
        received_at=at,
        verified=("oc_signature",),
        content_type="application/json",
    )
    (record,) = raw_records(received, [key], topic)
    return record


class Writer:
    """Records into per-partition batches, sent as each fills (the fast way to fill)."""

    def __init__(self, producer: Any, partitions: int, filled: Filled) -> None:
        self._producer = producer
        self._partitions = partitions
        self._batches: dict[tuple[str, int], Any] = {}
        self._sent: list[asyncio.Future[Any]] = []
        self.filled = filled

    async def add(self, record: Record) -> None:
        partition = record.partition
        if partition is None:
            partition = partition_for(record.key or b"", self._partitions)
        tp = (record.topic, partition)
        counts = self.filled.per_partition.setdefault(record.topic, {})
        counts[partition] = counts.get(partition, 0) + 1
        batch = self._batches.get(tp)
        if batch is None:
            batch = self._batches[tp] = self._producer.create_batch()
        headers = list(record.headers)
        if (
            batch.append(
                key=record.key, value=record.value, timestamp=record.timestamp_ms, headers=headers
            )
            is None
        ):
            await self._send(tp, batch)
            batch = self._batches[tp] = self._producer.create_batch()
            batch.append(
                key=record.key, value=record.value, timestamp=record.timestamp_ms, headers=headers
            )

    async def _send(self, tp: tuple[str, int], batch: Any) -> None:
        batch.close()
        self._sent.append(await self._producer.send_batch(batch, tp[0], partition=tp[1]))
        if len(self._sent) >= 64:
            await asyncio.gather(*self._sent)
            self._sent = []

    async def flush(self) -> None:
        for tp, batch in list(self._batches.items()):
            await self._send(tp, batch)
        self._batches = {}
        await asyncio.gather(*self._sent)
        self._sent = []


def _order_body(order: str, status: str, at: datetime) -> bytes:
    """An outbound callback in OC's inferred shape (as the simulator sends them)."""
    item = {
        "orderNumber": order,
        "referenceNumber": f"REF-{order}",
        "serviceRegion": "UK",
        "orderCreationTime": "2026-11-20T16:00:16+0800",
        "status": status,
        "statusTime": at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S+0000"),
        "trackingNumberList": [
            {
                "orderNumber": order,
                "trackingNumber": f"TRK{order[-8:]}",
                "LMCarrierCode": "XDP",
                "SKUList": [{"MFSKUID": "OC0000000675549", "SKUQuantity": 2, "SN": "A01,A02"}],
            }
        ],
        "consigneeName": "Jane Doe",
        "consigneeEmail": "jane.doe@example.com",
        "consigneeCountryCode": "GB",
    }
    message = {"messageId": f"bench-{order}-{status}", "timestamp": 1795830000000, "data": [item]}
    return json.dumps(message).encode()


def _variant(key: str, round_: int) -> str:
    return key if round_ == 0 else f"R{round_:03d}-{key}"


class Templates:
    """The simulator's callbacks and the events the processor makes of each."""

    def __init__(self, settings: Settings, plan: Plan, scratch: Path) -> None:
        world = World(seed=plan.seed)
        self.callbacks = [step(world) for _ in range(plan.distinct)]
        self.events: list[list[Record]] = []
        handler = RecordHandler(settings, Metrics())
        view = StateView(StateStore(SqliteLog(scratch / "unused.sqlite3"), settings.topic_state))
        at = datetime.now(UTC)
        raws = [
            _read(_raw(settings.topic_raw, c.kind, c.entity_key, c.body, at), n)
            for n, c in enumerate(self.callbacks)
        ]
        self._handler, self._view, self._raws = handler, view, raws

    async def build(self) -> None:
        handled = await self._handler.handle(self._raws, self._view)
        for result in handled:
            outputs = result.outputs if isinstance(result, Done) else []
            self.events.append([r for r in outputs if r.header("ce_id") is not None])


def _copy_events(
    events: list[Record], key: str, copy: str, delivery: str, at_ms: int
) -> Iterator[Record]:
    old, new = key.encode(), copy.encode()
    for event in events:
        ce_type = (event.header("ce_type") or b"").decode()
        ce_id = event_id(ce_type, f"{delivery}#{copy}#0")
        headers = tuple(
            (name, ce_id.encode() if name == "ce_id" else value.replace(old, new))
            for name, value in event.headers
        )
        yield Record(
            event.topic,
            event.value.replace(old, new),
            (event.key or b"").replace(old, new),
            headers,
            timestamp_ms=at_ms,
        )


class Ours:
    """The two orders of our own: raw records from ingest's code, events from the
    processor's handler, in the order and at the times the plan gives."""

    def __init__(self, settings: Settings, scratch: Path) -> None:
        self._settings = settings
        self._handler = RecordHandler(settings, Metrics())
        self._view = StateView(
            StateStore(SqliteLog(scratch / "unused-ours.sqlite3"), settings.topic_state)
        )
        self._bodies: dict[str, bytes] = {}
        self._offset = 0

    def plan(self) -> list[tuple[float, str, str, bool]]:
        """(fraction, order, status, publish its events) sorted by fraction."""
        found = [(at, FOUND, status, True) for status, at in FOUND_LIFE]
        lost = [
            (at, LOST, status, n < len(LOST_LIFE) - 1) for n, (status, at) in enumerate(LOST_LIFE)
        ]
        return sorted(found + lost)

    async def records(self, order: str, status: str, at: datetime, publish: bool) -> list[Record]:
        body = self._bodies.get(f"{order}{status}") or _order_body(order, status, at)
        self._bodies[f"{order}{status}"] = body  # a re-sent delivery is the same bytes
        raw = _raw(self._settings.topic_raw, "outbound", order, body, at)
        out = [raw]
        (handled,) = await self._handler.handle([_read(raw, self._offset)], self._view)
        self._offset += 1
        self._view.apply()
        if publish and isinstance(handled, Done):
            stamp = (raw.timestamp_ms or 0) + 150
            out += [
                Record(r.topic, r.value, r.key, r.headers, timestamp_ms=stamp)
                for r in handled.outputs
                if r.header("ce_id") is not None
            ]
        return out


async def fill(bootstrap: str, plan: Plan, scratch: Path) -> Filled:
    settings = bench_settings(bootstrap, plan)
    await _create_topics(settings)
    templates = Templates(settings, plan, scratch)
    await templates.build()
    ours = Ours(settings, scratch)
    pending = ours.plan()
    filled = Filled()
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks=1, max_batch_size=BATCH_BYTES, linger_ms=50
    )
    await producer.start()
    started = time.perf_counter()
    writer = Writer(producer, plan.partitions, filled)
    begin = datetime.now(UTC) - timedelta(days=plan.window_days)
    span_ms = plan.window_days * 86_400_000
    try:
        for n in range(plan.records):
            at = begin + timedelta(milliseconds=span_ms * n / plan.records)
            while pending and pending[0][0] * plan.records <= n:
                _, order, status, publish = pending.pop(0)
                for record in await ours.records(order, status, at, publish):
                    await writer.add(record)
                    filled.raw += record.topic == settings.topic_raw
                    filled.typed += record.topic != settings.topic_raw
            index = n % plan.distinct
            callback = templates.callbacks[index]
            copy = _variant(callback.entity_key, n // plan.distinct)
            body = callback.body.replace(callback.entity_key.encode(), copy.encode())
            raw = _raw(settings.topic_raw, callback.kind, copy, body, at)
            await writer.add(raw)
            filled.raw += 1
            delivery = (raw.header("gw-delivery-id") or b"").decode()
            stamp = (raw.timestamp_ms or 0) + 150
            for event in _copy_events(
                templates.events[index], callback.entity_key, copy, delivery, stamp
            ):
                await writer.add(event)
                filled.typed += 1
        await writer.flush()
    finally:
        await producer.stop()
    filled.seconds = round(time.perf_counter() - started, 1)
    return filled
