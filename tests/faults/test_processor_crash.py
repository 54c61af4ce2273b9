"""The processor is SIGKILLed mid-batch and restarted: a read_committed consumer of the
typed topic sees every event exactly once.

Ingest runs in this process with its processor off; the processor runs alone in a real
`gateway serve` process (GATEWAY_INGEST_ENABLED=false) against a slow OC, so batches take
long enough for the kill to land inside one. The restarted processor takes the same
partitions, fences the dead one's transactions (aborting the open one) and carries on.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from gateway.simulator.data import WorldSize
from gateway.simulator.state import SimulatorConfig
from schemas.events import OUTBOUND_STATUS_CHANGED
from tests.conftest import SettingsFactory, unique_topics
from tests.helpers import TOKEN_PATH, KafkaTopicReader, running_app
from tests.processes import GatewayProcess
from tests.simulation import running_simulator

pytestmark = [pytest.mark.kafka, pytest.mark.slow]
CLIENT_KEY = "crash-client-key"
SECRET_KEY = "crash-secret-key"
COUNT = 120


async def test_processor_killed_mid_batch_publishes_each_event_once(
    make_settings: SettingsFactory, kafka_bootstrap: str, tmp_path: Path
) -> None:
    topics = unique_topics(uuid.uuid4().hex[:8])
    config = SimulatorConfig(
        seed=5, client_key=CLIENT_KEY, secret_key=SECRET_KEY, world_size=WorldSize(orders=80)
    )
    async with running_simulator(config) as sim:
        bodies = await sim.callbacks(COUNT, "outbound")
        ingest = make_settings(
            kafka_bootstrap_servers=kafka_bootstrap, processor_enabled=False, **topics
        )
        async with running_app(ingest) as (client, _):
            for body in bodies:
                response = await client.post(
                    f"{TOKEN_PATH}/outbound",
                    content=body,
                    headers={"content-type": "application/json"},
                )
                assert response.status_code == 200
        keys = {json.loads(b)["data"][0]["orderNumber"] for b in bodies}

        await sim.faults(latency_ms=150)  # slow OC: long batches
        env = {f"GATEWAY_{k.upper()}": str(v) for k, v in topics.items()}
        env |= {
            "GATEWAY_KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
            "GATEWAY_INGEST_ENABLED": "false",
            "GATEWAY_DATA_DIR": str(tmp_path / "processor"),
            "GATEWAY_PROCESSOR_BATCH_SIZE": "15",
            "GATEWAY_OC_BASE_URL": sim.url,
            "GATEWAY_OC_CLIENT_KEY": CLIENT_KEY,
            "GATEWAY_OC_SECRET_KEY": SECRET_KEY,
            "GATEWAY_OC_REFRESH_TOKEN": "sim-refresh-token",
            "GATEWAY_RECONCILE_ENABLED": "false",
        }
        processor = GatewayProcess(env, tmp_path / "processor.log")
        await asyncio.to_thread(processor.start)

        async with KafkaTopicReader(kafka_bootstrap, topics["topic_outbound"]) as early:
            await early.read_until(COUNT // 3, timeout_s=90)
        processor.kill()  # mid-stream: a batch is in flight
        await asyncio.to_thread(processor.start)

        async with KafkaTopicReader(kafka_bootstrap, topics["topic_outbound"]) as reader:
            await reader.read_until_true(
                lambda records: _status_events(records) >= COUNT, timeout_s=120
            )
            records = await reader.drain(quiet_s=2.0)
        assert await asyncio.to_thread(processor.terminate) == 0

    status = [r for r in records if dict(r.headers)["ce_type"] == OUTBOUND_STATUS_CHANGED.encode()]
    ids = Counter(dict(r.headers)["ce_id"] for r in status)
    assert len(ids) == COUNT  # none missing
    assert max(ids.values()) == 1  # none duplicated
    assert {r.key.decode() for r in status} == keys


def _status_events(records: list[Any]) -> int:
    return sum(1 for r in records if dict(r.headers)["ce_type"] == OUTBOUND_STATUS_CHANGED.encode())
