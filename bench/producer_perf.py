"""The broker ceiling: Kafka's own ProducerPerformance tool (kafka-tools jar) with the
gateway's record size, acks=all and idempotence, into a topic with the raw topic's
partition count."""

from __future__ import annotations

import asyncio
import re
import subprocess
from pathlib import Path

from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from tools.kafka_broker import tool_command

_SUMMARY = re.compile(
    r"(?P<records>\d+) records sent, (?P<rate>[\d.]+) records/sec \((?P<mb>[\d.]+) MB/sec\), "
    r"(?P<avg>[\d.]+) ms avg latency, (?P<max>[\d.]+) ms max latency, (?P<p50>\d+) ms 50th, "
    r"(?P<p95>\d+) ms 95th, (?P<p99>\d+) ms 99th, (?P<p999>\d+) ms 99.9th"
)


async def create_topic(bootstrap: str, topic: str, partitions: int) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, partitions, 1)])
    finally:
        await admin.close()


def run(
    bootstrap: str, topic: str, records: int, record_size: int, log_path: Path
) -> dict[str, object]:
    """Run ProducerPerformance flat out; its summary line as numbers."""
    asyncio.run(create_topic(bootstrap, topic, 6))
    argv = [
        *tool_command("org.apache.kafka.tools.ProducerPerformance"),
        "--topic",
        topic,
        "--num-records",
        str(records),
        "--record-size",
        str(record_size),
        "--throughput",
        "-1",
        "--producer-props",
        f"bootstrap.servers={bootstrap}",
        "acks=all",
        "enable.idempotence=true",
    ]
    result = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=600)
    log_path.write_text(result.stdout + result.stderr)
    found = None
    for line in result.stdout.splitlines():
        match = _SUMMARY.search(line)
        if match:
            found = match
    if result.returncode != 0 or found is None:
        raise RuntimeError(f"ProducerPerformance failed:\n{result.stdout}\n{result.stderr}")
    return {
        "records": int(found["records"]),
        "records_per_s": float(found["rate"]),
        "mb_per_s": float(found["mb"]),
        "latency_ms": {
            "mean": float(found["avg"]),
            "p50": float(found["p50"]),
            "p95": float(found["p95"]),
            "p99": float(found["p99"]),
            "p999": float(found["p999"]),
            "max": float(found["max"]),
        },
        "record_size": record_size,
        "settings": "acks=all enable.idempotence=true, 6 partitions, other producer defaults",
    }
