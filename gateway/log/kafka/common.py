"""What the Kafka adapters share: connection options and record conversion."""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from aiokafka.helpers import create_ssl_context

from gateway.log.base import LogRecord, Record
from gateway.log.kafka.partitioner import DefaultPartitioner
from gateway.settings import Settings

_PARTITIONER = DefaultPartitioner()


def client_options(settings: Settings) -> dict[str, Any]:
    """Connection options shared by every aiokafka client the gateway builds."""
    options: dict[str, Any] = {
        "bootstrap_servers": settings.kafka_bootstrap_servers,
        "security_protocol": settings.kafka_security_protocol,
        "client_id": f"oc-gateway-{settings.instance_id or socket.gethostname()}",
    }
    if settings.kafka_security_protocol in ("SSL", "SASL_SSL"):
        context: ssl.SSLContext = create_ssl_context(
            cafile=settings.kafka_ssl_cafile,
            certfile=settings.kafka_ssl_certfile,
            keyfile=settings.kafka_ssl_keyfile,
        )
        options["ssl_context"] = context
    if settings.kafka_security_protocol.startswith("SASL"):
        options["sasl_mechanism"] = settings.kafka_sasl_mechanism
        options["sasl_plain_username"] = settings.kafka_sasl_username
        options["sasl_plain_password"] = settings.kafka_sasl_password.get_secret_value()
    return options


def to_log_record(message: Any) -> LogRecord:
    headers = message.headers or ()
    if not all(type(v) is bytes for _, v in headers):
        headers = [(k, bytes(v)) for k, v in headers]
    return LogRecord(
        topic=message.topic,
        partition=message.partition,
        offset=message.offset,
        key=message.key,
        value=message.value if message.value is not None else b"",
        headers=tuple(headers),
        timestamp_ms=message.timestamp,
    )


async def send_record(producer: Any, record: Record) -> Any:
    """Queue one record; returns the future of its delivery."""
    return await producer.send(
        record.topic,
        value=record.value,
        key=record.key,
        headers=list(record.headers) or None,
        partition=record.partition,
        timestamp_ms=record.timestamp_ms,
    )


async def send_batches(producer: Any, records: Sequence[Record]) -> list[asyncio.Future[Any]]:
    """Queue `records` as one batch per topic-partition (in order within each); returns
    the futures of their delivery. For many records at once (a transaction's outputs):
    a batch costs the producer about what one record does through `send`."""
    grouped: dict[tuple[str, int], list[Record]] = {}
    partitions: dict[str, list[int]] = {}
    for record in records:
        partition = record.partition
        if partition is None:
            known = partitions.get(record.topic)
            if known is None:
                known = partitions[record.topic] = sorted(
                    await producer.partitions_for(record.topic)
                )
            partition = _PARTITIONER(record.key, known, known)
        grouped.setdefault((record.topic, partition), []).append(record)
    futures = []
    for (topic, partition), batch in grouped.items():
        builder = producer.create_batch()
        for record in batch:
            if _append(builder, record):
                continue
            if builder.record_count():  # full: send it, and start the next one
                futures.append(await producer.send_batch(builder, topic, partition=partition))
                builder = producer.create_batch()
                if _append(builder, record):
                    continue
            # Larger than a batch may be: `send` says so (or sends it alone).
            futures.append(await send_record(producer, replace(record, partition=partition)))
        if builder.record_count():
            futures.append(await producer.send_batch(builder, topic, partition=partition))
    return futures


def _append(builder: Any, record: Record) -> bool:
    appended = builder.append(
        timestamp=record.timestamp_ms,
        key=record.key,
        value=record.value,
        headers=list(record.headers),
    )
    return appended is not None


async def start_client(client: Any) -> None:
    """`client.start()` (an aiokafka consumer or producer) that a cancellation does not
    cut short: aiokafka leaks its bootstrap connection when a start is cancelled while it
    asks for the first metadata. Cancelled (once or more), this waits for the start to
    end (the caller then stops the client as usual), then raises the cancellation."""
    starting = asyncio.ensure_future(client.start())
    cancelled = False
    while not starting.done():
        try:
            await asyncio.wait([starting])  # unlike awaiting it, never cancels the start
        except asyncio.CancelledError:
            cancelled = True
    if cancelled:
        if not starting.cancelled():
            starting.exception()  # retrieved: the cancellation is what the caller gets
        raise asyncio.CancelledError
    starting.result()
