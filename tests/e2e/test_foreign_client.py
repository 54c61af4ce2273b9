"""A Kafka client that is not ours reads the typed events.

Kafka's own console consumer (the JVM client from the kafka-tools jar the broker is built
from), read_committed, reads the events a running gateway published: keys, CloudEvents
headers and payloads that validate against schemas/events.py. Nothing about the topics
depends on aiokafka.
"""

from __future__ import annotations

import asyncio
import subprocess

import pytest

from schemas.events import OUTBOUND_STATUS_CHANGED, OutboundOrderStatusChanged
from tests.conftest import SettingsFactory
from tests.e2e.test_walking_skeleton import ORDERS, callbacks, sent_to_kafka_gateway
from tools.kafka_broker import tool_command

pytestmark = pytest.mark.kafka

_CONSOLE_CONSUMER = "org.apache.kafka.tools.consumer.ConsoleConsumer"
_TIMEOUT_S = 90


def console_consume(bootstrap: str, topic: str, count: int) -> list[str]:
    """`count` records of `topic` as Kafka's console consumer prints them, one line
    each: headers, key and value separated by tabs."""
    argv = [
        *tool_command(_CONSOLE_CONSUMER, heap="256m"),
        "--bootstrap-server",
        bootstrap,
        "--topic",
        topic,
        "--from-beginning",
        "--isolation-level",
        "read_committed",
        "--max-messages",
        str(count),
        "--timeout-ms",
        str(_TIMEOUT_S * 1000),
        "--formatter-property",
        "print.key=true",
        "--formatter-property",
        "print.headers=true",
    ]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=_TIMEOUT_S + 30)
    assert done.returncode == 0, done.stderr[-2000:]
    return [line for line in done.stdout.splitlines() if line.strip()]


def _headers(printed: str) -> dict[str, str]:
    fields = (item.partition(":") for item in printed.split(","))
    return {name: value for name, _, value in fields}


async def test_kafkas_console_consumer_reads_the_typed_events(
    make_settings: SettingsFactory, kafka_bootstrap: str
) -> None:
    sent = callbacks()
    async with sent_to_kafka_gateway(make_settings, kafka_bootstrap, sent) as settings:
        lines = await asyncio.to_thread(
            console_consume, kafka_bootstrap, settings.topic_outbound, len(sent)
        )
    assert len(lines) == len(sent)
    keys = []
    for line in lines:
        printed_headers, key, value = line.split("\t", 2)
        headers = _headers(printed_headers)
        event = OutboundOrderStatusChanged.model_validate_json(value)
        assert headers["ce_type"] == OUTBOUND_STATUS_CHANGED
        assert headers["ce_specversion"] == "1.0"
        assert headers["ce_id"] == event.event_id
        assert headers["ce_subject"] == key == event.order_number
        keys.append(key)
    assert sorted(keys) == sorted(s.order for s in sent)
    for order in ORDERS:  # one partition per key: the JVM client sees each order in order
        statuses = [
            OutboundOrderStatusChanged.model_validate_json(line.split("\t", 2)[2]).oc_status
            for line in lines
            if line.split("\t", 2)[1] == order
        ]
        assert statuses == [s.status for s in sent if s.order == order]
