"""What the Kafka adapters share: connection options and record conversion."""

from __future__ import annotations

import socket
import ssl
from typing import Any

from aiokafka.helpers import create_ssl_context

from gateway.log.base import LogRecord, Record
from gateway.settings import Settings


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
    return LogRecord(
        topic=message.topic,
        partition=message.partition,
        offset=message.offset,
        key=message.key,
        value=message.value if message.value is not None else b"",
        headers=tuple((k, bytes(v)) for k, v in (message.headers or ())),
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
