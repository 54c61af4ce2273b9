"""Shared fixtures: the real Kafka broker (one per test session) and settings factories.

The broker is assembled from Maven Central jars and started by tools/kafka_broker.py. If
it cannot start, every test that needs it fails with the broker's log; none is skipped.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from gateway.settings import Settings
from tests.processes import kill_leftovers
from tools.kafka_broker import Broker, BrokerError, start_broker

SettingsFactory = Callable[..., Settings]


@pytest.fixture(autouse=True)
def _no_gateway_left_behind() -> Iterator[None]:
    """A test that fails before it stops its `gateway serve` does not leave it running."""
    yield
    kill_leftovers()


def _running_broker(workdir: Path, extra_properties: str = "") -> Iterator[Broker]:
    """A started broker, stopped afterwards; a broker that cannot start fails the test
    with its log (never a skip)."""
    try:
        broker = start_broker(workdir, extra_properties=extra_properties)
    except BrokerError as exc:
        pytest.fail(f"the Kafka broker did not start:\n{exc}", pytrace=False)
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture(scope="session")
def kafka_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    yield from _running_broker(tmp_path_factory.mktemp("kafka"))


@pytest.fixture
def kafka_bootstrap(kafka_broker: Broker) -> str:
    return kafka_broker.bootstrap


def unique_topics(suffix: str) -> dict[str, Any]:
    """Topic names of their own for one test, so tests never see each other's records."""
    return {
        "topic_raw": f"raw.{suffix}",
        "topic_outbound": f"outbound.{suffix}",
        "topic_returns": f"returns.{suffix}",
        "topic_inventory": f"inventory.{suffix}",
        "topic_quarantine": f"quarantine.{suffix}",
        "topic_dlq": f"dlq.{suffix}",
        "topic_state": f"state.{suffix}",
        "kafka_consumer_group": f"processor.{suffix}",
    }


@pytest.fixture
def make_settings(tmp_path: Path) -> SettingsFactory:
    """Settings for one test: its own data directory and topics; embedded log unless
    `kafka_bootstrap_servers` is given; a path token as its verification."""

    def make(**overrides: Any) -> Settings:
        suffix = uuid.uuid4().hex[:10]
        values: dict[str, Any] = {
            "data_dir": tmp_path / f"data-{suffix}",
            "path_tokens": ["test-token"],
            "metrics_port": 0,
            "kafka_partitions": 3,
            "instance_id": f"test-{suffix}",
            "enrich_timeout_s": 2.0,
            **unique_topics(suffix),
        }
        values.update(overrides)
        return Settings(**values)

    return make


@pytest.fixture
def own_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    """A broker of this test's own, for tests that kill and restart it."""
    yield from _running_broker(tmp_path_factory.mktemp("own-kafka"))
