"""Ingest workers: several processes on one port, one /metrics, one readiness, restarted
when they die, refused on the embedded log; spools of workers that are gone are sent on."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.errors import ConfigurationError
from gateway.log.base import Record
from gateway.log.sqlite import SqliteLog
from gateway.ops.recent import WorkersRecent
from gateway.workers import check_workers, heard, leftover_spools, worker_settings
from tests.conftest import SettingsFactory, unique_topics
from tests.helpers import KafkaTopicReader, outbound_callback
from tests.processes import GATEWAY, GatewayProcess
from tests.waiting import wait_for
from tools.kafka_broker import Broker

JSON = {"content-type": "application/json"}


@pytest.mark.parametrize(
    ("files", "live", "left"),
    [
        (["spool-w0.sqlite3", "spool-w1.sqlite3"], 2, []),
        (["spool-w0.sqlite3", "spool-w1.sqlite3", "spool-w2.sqlite3"], 2, ["spool-w2.sqlite3"]),
        (["spool-w0.sqlite3", "spool-w1.sqlite3"], 1, ["spool-w1.sqlite3"]),
        (["spool-w0.sqlite3", "spool-w1.sqlite3"], 0, ["spool-w0.sqlite3", "spool-w1.sqlite3"]),
        (["spool.sqlite3", "spool-w0.sqlite3-wal", "other.sqlite3"], 0, []),
    ],
)
def test_spools_of_workers_that_no_longer_run(
    tmp_path: Path, files: list[str], live: int, left: list[str]
) -> None:
    for name in files:
        (tmp_path / name).touch()
    assert [p.name for p in leftover_spools(tmp_path, live)] == left


@pytest.mark.parametrize(
    ("data", "before", "after"),
    [
        (b"1", (False, False), (True, False)),
        (b"O", (True, False), (True, True)),
        (b"o", (True, True), (True, False)),
        (b"OoO", (True, False), (True, True)),
        (b"1Oo", (False, False), (True, False)),
        (b"?", (True, True), (True, True)),
    ],
)
def test_what_a_worker_tells_its_primary(
    data: bytes, before: tuple[bool, bool], after: tuple[bool, bool]
) -> None:
    assert heard(data, *before) == after


@pytest.mark.parametrize(
    ("kafka", "settings", "workers"),
    [
        (True, {}, False),  # the default: one process
        (True, {"ingest_own_process": True}, True),  # ingest in a worker, the processor apart
        (True, {"ingest_own_process": True, "processor_enabled": False}, False),  # alone
        (True, {"ingest_own_process": True, "ingest_enabled": False}, False),
        (True, {"ingest_workers": 3}, True),
        (False, {"ingest_own_process": True}, False),  # the embedded log: one process
        (False, {"ingest_workers": 2}, True),  # refused at start by check_workers
    ],
)
def test_when_serve_answers_callbacks_in_worker_processes(
    make_settings: SettingsFactory, kafka: bool, settings: dict[str, Any], workers: bool
) -> None:
    bootstrap = {"kafka_bootstrap_servers": "k:9092"} if kafka else {}
    assert make_settings(**bootstrap, **settings).serves_from_workers is workers


def test_a_worker_runs_ingest_only_with_its_share(make_settings: SettingsFactory) -> None:
    settings = make_settings(
        kafka_bootstrap_servers="k:9092", ingest_workers=4, rate_limit_per_source=200.0
    )
    mine = worker_settings(settings, 3)
    assert (mine.processor_enabled, mine.reconcile_enabled) == (False, False)
    assert mine.spool_file == "spool-w3.sqlite3"
    assert mine.rate_limit_per_source == 50.0
    assert mine.instance_id.endswith("-w3")


def test_workers_need_kafka(make_settings: SettingsFactory) -> None:
    with pytest.raises(ConfigurationError, match="needs Kafka"):
        check_workers(make_settings(ingest_workers=2))
    check_workers(make_settings(ingest_workers=1))


def test_the_embedded_log_refuses_workers_at_start(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "GATEWAY_DATA_DIR": str(tmp_path),
        "GATEWAY_PATH_TOKENS": "t",
        "GATEWAY_INGEST_WORKERS": "2",
    }
    done = subprocess.run(
        [GATEWAY, "serve"], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 2
    assert "GATEWAY_INGEST_WORKERS=2 needs Kafka" in done.stdout


def workers_env(data_dir: Path, bootstrap: str, workers: int) -> dict[str, str]:
    topics = unique_topics(uuid.uuid4().hex[:8])
    return {
        **{f"GATEWAY_{name.upper()}": value for name, value in topics.items()},
        "GATEWAY_DATA_DIR": str(data_dir),
        "GATEWAY_PATH_TOKENS": "test-token",
        "GATEWAY_KAFKA_PARTITIONS": "3",
        "GATEWAY_KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "GATEWAY_INGEST_WORKERS": str(workers),
    }


def worker_pids(primary: int) -> list[int]:
    children = Path(f"/proc/{primary}/task/{primary}/children").read_text().split()
    return [int(pid) for pid in children]


def running(pids: list[int]) -> list[int]:
    return [pid for pid in pids if Path(f"/proc/{pid}").exists()]


def metric(text: str, line_start: str) -> float:
    return sum(
        float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(line_start)
    )


@pytest.mark.kafka
@pytest.mark.slow
async def test_two_workers_one_port_one_metrics_and_a_dead_worker_comes_back(
    tmp_path: Path, kafka_broker: Broker
) -> None:
    env = workers_env(tmp_path / "data", kafka_broker.bootstrap, 2)
    gateway = GatewayProcess(env, tmp_path / "gateway.log")
    gateway.start()
    try:
        assert gateway.process is not None
        primary = gateway.process.pid
        first = worker_pids(primary)
        assert len(first) == 2
        bodies = [
            outbound_callback(f"OCO{n:013d}GB", "SHIPPED", message_id=f"m{n}") for n in range(40)
        ]
        # A new connection per callback: the kernel spreads them over both workers.
        for body in bodies[:20]:
            async with httpx.AsyncClient(base_url=gateway.url) as client:
                response = await client.post(
                    "/webhooks/oc/test-token/outbound", content=body, headers=JSON
                )
                assert response.status_code == 200

        ops = httpx.AsyncClient(base_url=gateway.metrics_url, timeout=5)

        async def counted(n: int) -> bool:
            text = (await ops.get("/metrics")).text
            return metric(text, "gateway_callbacks_accepted_total{") == n

        async def ready(status: int) -> bool:
            return (await ops.get("/readyz")).status_code == status

        await wait_for(lambda: counted(20), timeout_s=30)
        os.kill(first[0], signal.SIGKILL)  # a worker dies: the primary is not ready ...
        await wait_for(lambda: ready(503))
        await wait_for(lambda: ready(200), timeout_s=60)  # ... until another took its place
        second = worker_pids(primary)
        assert len(second) == 2
        assert first[0] not in second
        for body in bodies[20:]:
            async with httpx.AsyncClient(base_url=gateway.url) as client:
                response = await client.post(
                    "/webhooks/oc/test-token/outbound", content=body, headers=JSON
                )
                assert response.status_code == 200
        async with KafkaTopicReader(kafka_broker.bootstrap, env["GATEWAY_TOPIC_OUTBOUND"]) as out:
            events = await out.read_until(40)
        assert len({dict(e.headers)["ce_subject"] for e in events}) == 40
        await ops.aclose()
        assert gateway.terminate() == 0
        assert not running(second)
    finally:
        gateway.kill()
    assert "Unclosed" not in gateway.log_tail(2000)


@pytest.mark.kafka
async def test_a_leftover_spool_is_sent_on_and_deleted(
    tmp_path: Path, kafka_broker: Broker
) -> None:
    env = workers_env(tmp_path / "data", kafka_broker.bootstrap, 1)
    raw_topic = env["GATEWAY_TOPIC_RAW"]
    leftover = tmp_path / "data" / "spool-w3.sqlite3"
    spool = SqliteLog(leftover)
    await spool.start()
    body = outbound_callback("OCO0000000000042GB", "SHIPPED", message_id="left")
    await spool.append([Record(raw_topic, body, b"OCO0000000000042GB", ())])
    await spool.close()
    gateway = GatewayProcess(env, tmp_path / "gateway.log")
    gateway.start()
    try:
        async with KafkaTopicReader(kafka_broker.bootstrap, raw_topic) as raw:
            [record] = await raw.read_until(1)
        assert record.value == body
        await wait_for(lambda: not leftover.exists(), timeout_s=30)
    finally:
        gateway.kill()


@pytest.mark.kafka
async def test_ingest_in_its_own_process_answers_and_dies_with_its_primary(
    tmp_path: Path, kafka_broker: Broker
) -> None:
    env = workers_env(tmp_path / "data", kafka_broker.bootstrap, 1)
    env["GATEWAY_INGEST_OWN_PROCESS"] = "true"  # one worker, the processor apart
    gateway = GatewayProcess(env, tmp_path / "gateway.log")
    gateway.start()
    try:
        assert gateway.process is not None
        [worker] = worker_pids(gateway.process.pid)
        body = outbound_callback("OCO0000000000007GB", "SHIPPED", message_id="m-default")
        async with httpx.AsyncClient(base_url=gateway.url) as client:
            response = await client.post(
                "/webhooks/oc/test-token/outbound", content=body, headers=JSON
            )
        assert response.status_code == 200
        async with KafkaTopicReader(kafka_broker.bootstrap, env["GATEWAY_TOPIC_OUTBOUND"]) as out:
            [event] = await out.read_until(1)
        assert dict(event.headers)["ce_subject"] == b"OCO0000000000007GB"
        # The console, served by the primary, sees the worker's latest deliveries.
        shown = WorkersRecent(tmp_path / "data" / "metrics")
        delivery = "sha256:" + hashlib.sha256(body).hexdigest()
        await wait_for(lambda: [d.delivery_id for d in shown.newest()] == [delivery])
        gateway.process.kill()  # SIGKILL: no chance to stop its worker itself
        await wait_for(lambda: not running([worker]), timeout_s=10)
    finally:
        gateway.kill()
