"""One holder among the gateway's replicas, from Kafka consumer-group membership."""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Any

from aiokafka import AIOKafkaConsumer
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.errors import KafkaError

from gateway.errors import LogUnavailable
from gateway.log.kafka.common import client_options
from gateway.settings import Settings

if TYPE_CHECKING:
    from gateway.log.kafka.log import KafkaLog


class _Holder(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, lease: KafkaLease) -> None:
        self._lease = lease

    async def on_partitions_revoked(self, revoked: Any) -> None:
        self._lease.holding = False

    async def on_partitions_assigned(self, assigned: Any) -> None:
        self._lease.holding = bool(assigned)


class KafkaLease:
    """A lease among replicas from Kafka's group membership: the member of `group` that
    is assigned the single partition of `topic` holds it. If the holder dies or stalls,
    the group rebalances and another member takes over within the session timeout."""

    def __init__(self, log: KafkaLog, settings: Settings, group: str, topic: str) -> None:
        self._log = log
        self._settings = settings
        self._group = group
        self._topic = topic
        self._consumer: Any = None
        self._task: asyncio.Task[None] | None = None
        self.holding = False

    async def start(self) -> None:
        if self._settings.kafka_create_topics:
            await self._log.create_topic(self._topic, partitions=1)
        self._consumer = AIOKafkaConsumer(
            **client_options(self._settings),
            group_id=self._group,
            enable_auto_commit=False,
            session_timeout_ms=10000,
            heartbeat_interval_ms=1000,
        )
        self._consumer.subscribe([self._topic], listener=_Holder(self))
        try:
            await self._consumer.start()
        except KafkaError as exc:
            await self._consumer.stop()
            raise LogUnavailable(f"cannot join the lease group: {exc}") from exc
        self._task = asyncio.create_task(self._keep(), name=f"lease-{self._group}")

    async def _keep(self) -> None:
        # The topic stays empty; polling it keeps this member inside max_poll_interval.
        while True:
            with contextlib.suppress(KafkaError):
                await self._consumer.getmany(timeout_ms=1000)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._consumer is not None:
            with contextlib.suppress(KafkaError):
                await self._consumer.stop()
        self.holding = False

    def held(self) -> bool:
        return self.holding
