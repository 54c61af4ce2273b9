"""The Kafka log (aiokafka). The only module that imports the untyped aiokafka.

Appends go through one idempotent producer (`acks=all`) and return once the broker has
replicated them. A consumer commits through its own transactional producer: outputs
and the group's offsets land in one Kafka transaction, so `read_committed` readers see
each output exactly once even if the process dies mid-batch. aiokafka errors are
translated into `LogUnavailable` here and nowhere else.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError
from aiokafka.helpers import create_ssl_context

from gateway.errors import ConfigurationError, LogUnavailable
from gateway.log.base import AssignmentListener, LogRecord, Position, Record
from gateway.log.base import TopicPartition as TP
from gateway.settings import Settings

logger = logging.getLogger(__name__)


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


def _to_record(message: Any) -> LogRecord:
    return LogRecord(
        topic=message.topic,
        partition=message.partition,
        offset=message.offset,
        key=message.key,
        value=message.value if message.value is not None else b"",
        headers=tuple((k, bytes(v)) for k, v in (message.headers or ())),
        timestamp_ms=message.timestamp,
    )


async def _send(producer: Any, record: Record) -> Any:
    """Queue one record; returns the future of its delivery."""
    return await producer.send(
        record.topic,
        value=record.value,
        key=record.key,
        headers=list(record.headers) or None,
        partition=record.partition,
        timestamp_ms=record.timestamp_ms,
    )


class KafkaLog:
    """A `Log` on Apache Kafka."""

    name = "kafka"

    def __init__(
        self,
        settings: Settings,
        *,
        topics: Iterable[str] = (),
        compacted: Iterable[str] = (),
    ) -> None:
        self._settings = settings
        self._options = client_options(settings)
        self._topics = list(topics)
        self._compacted = frozenset(compacted)
        self._producer: Any = None

    async def start(self) -> None:
        if self._settings.kafka_create_topics and self._topics:
            await self.ensure_topics()
        self._producer = AIOKafkaProducer(
            **self._options,
            enable_idempotence=True,
            acks="all",
            linger_ms=self._settings.kafka_linger_ms,
            request_timeout_ms=max(5000, int(self._settings.kafka_append_timeout_s * 4000)),
        )
        try:
            await self._producer.start()
        except KafkaError as exc:
            await self._producer.stop()
            raise LogUnavailable(f"cannot reach Kafka: {exc}") from exc

    async def close(self) -> None:
        if self._producer is not None:
            await self._producer.stop()  # flushes what is queued

    async def create_topic(self, name: str, partitions: int) -> None:
        """Create one topic if it is missing."""
        admin = AIOKafkaAdminClient(**self._options)
        try:
            await admin.start()
            if name not in set(await admin.list_topics()):
                with contextlib.suppress(TopicAlreadyExistsError):
                    await admin.create_topics(
                        [NewTopic(name, partitions, self._settings.kafka_replication_factor)]
                    )
        except KafkaError as exc:
            raise LogUnavailable(f"cannot create {name}: {exc}") from exc
        finally:
            await admin.close()

    async def ensure_topics(self) -> None:
        """Create the gateway's topics if they are missing (compacted where declared)."""
        admin = AIOKafkaAdminClient(**self._options)
        try:
            await admin.start()
            existing = set(await admin.list_topics())
            wanted = [
                NewTopic(
                    name,
                    self._settings.kafka_partitions,
                    self._settings.kafka_replication_factor,
                    topic_configs={"cleanup.policy": "compact"} if name in self._compacted else {},
                )
                for name in self._topics
                if name not in existing
            ]
            if wanted:
                with contextlib.suppress(TopicAlreadyExistsError):
                    await admin.create_topics(wanted)
        except KafkaError as exc:
            raise LogUnavailable(f"cannot create topics: {exc}") from exc
        finally:
            await admin.close()

    async def partitions(self, topic: str) -> list[int]:
        """The partition numbers of `topic` (empty if it does not exist)."""
        if self._producer is None:
            raise LogUnavailable("the Kafka log is not started")
        try:
            metadata = await self._producer.client.fetch_all_metadata()
        except KafkaError as exc:
            raise LogUnavailable(f"kafka metadata: {exc}") from exc
        return sorted(metadata.partitions_for_topic(topic) or ())

    async def partition_counts(self, topics: Sequence[str]) -> dict[str, int]:
        return {topic: len(await self.partitions(topic)) for topic in topics}

    async def append(self, records: Sequence[Record]) -> list[Position]:
        return await self.append_pending(await self.queue(records))

    async def queue(self, records: Sequence[Record]) -> list[asyncio.Future[Any]]:
        """Hand records to the producer; the futures resolve when Kafka confirms them."""
        if self._producer is None:
            raise LogUnavailable("the Kafka log is not started")
        try:
            return [await _send(self._producer, record) for record in records]
        except KafkaError as exc:
            raise LogUnavailable(f"kafka send: {exc}") from exc

    @staticmethod
    async def append_pending(futures: Sequence[asyncio.Future[Any]]) -> list[Position]:
        try:
            metadata = await asyncio.gather(*futures)
        except KafkaError as exc:
            raise LogUnavailable(f"kafka append: {exc}") from exc
        return [Position(m.topic, m.partition, m.offset) for m in metadata]

    def consumer(
        self, group: str, topics: Sequence[str], listener: AssignmentListener | None = None
    ) -> KafkaConsumer:
        return KafkaConsumer(self._settings, self._options, group, topics, listener)

    async def read(
        self,
        topic: str,
        *,
        partitions: Sequence[int] | None = None,
        since_ms: int | None = None,
    ) -> AsyncIterator[LogRecord]:
        chosen = partitions if partitions is not None else await self.partitions(topic)
        tps = [TopicPartition(topic, p) for p in sorted(chosen)]
        if not tps:
            return
        consumer = AIOKafkaConsumer(
            **self._options,
            enable_auto_commit=False,
            isolation_level="read_committed",
            auto_offset_reset="earliest",
        )
        await consumer.start()
        try:
            consumer.assign(tps)
            end = await consumer.end_offsets(tps)
            start = await consumer.beginning_offsets(tps)
            if since_ms is not None:
                found = await consumer.offsets_for_times(dict.fromkeys(tps, since_ms))
                start = {tp: at.offset if at is not None else end[tp] for tp, at in found.items()}
            for tp in tps:
                consumer.seek(tp, start[tp])
            remaining = {tp for tp in tps if await consumer.position(tp) < end[tp]}
            while remaining:
                batch = await consumer.getmany(*remaining, timeout_ms=1000)
                for tp, messages in batch.items():
                    for message in messages:
                        if message.offset < end[tp]:
                            yield _to_record(message)
                for tp in list(remaining):
                    if await consumer.position(tp) >= end[tp]:
                        remaining.discard(tp)
        finally:
            await consumer.stop()

    async def writable(self) -> bool:
        if self._producer is None:
            return False
        client = self._producer.client
        try:
            async with asyncio.timeout(2.0):
                return bool(await client.fetch_all_metadata())
        except (KafkaError, TimeoutError, OSError):
            return False


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    """Keeps one transactional producer per owned partition in step with ownership."""

    def __init__(self, owner: KafkaConsumer, listener: AssignmentListener | None) -> None:
        self._owner = owner
        self._listener = listener

    async def on_partitions_revoked(self, revoked: Any) -> None:
        tps = {(tp.topic, tp.partition) for tp in revoked}
        if self._listener is not None:
            await self._listener.on_revoked(tps)  # waits for the batch in flight
        await self._owner.release(tps)

    async def on_partitions_assigned(self, assigned: Any) -> None:
        # aiokafka's fetcher starts on new partitions while this listener runs; keep
        # them paused until their producer is up and the owner has loaded their state.
        self._owner.pause(assigned)
        tps = {(tp.topic, tp.partition) for tp in assigned}
        try:
            await self._owner.acquire(tps)
            if self._listener is not None:
                await self._listener.on_assigned(tps)
        except Exception as exc:
            # aiokafka would only log this and go on with paused partitions; make the
            # next fetch fail instead, so the owner rebuilds the consumer.
            self._owner.broken = exc
            raise
        self._owner.resume(assigned)


class KafkaConsumer:
    """A group member whose commits are Kafka transactions: per owned input partition,
    the outputs derived from it and its offset commit in one transaction.

    Each input partition has its own transactional producer, with a transactional id
    derived from the group and the partition (not from the replica). Whoever takes a
    partition over, after a crash, a deploy or a rebalance, initialises that id and so
    fences the previous owner's producer: a zombie can no longer commit, and a
    transaction that was open when its owner died is aborted. aiokafka speaks the
    transaction protocol before KIP-447, so this per-partition scheme is what fences.
    """

    def __init__(
        self,
        settings: Settings,
        options: dict[str, Any],
        group: str,
        topics: Sequence[str],
        listener: AssignmentListener | None,
    ) -> None:
        self._settings = settings
        self._options = options
        self._group = group
        self._topics = list(topics)
        self._consumer: Any = AIOKafkaConsumer(
            **options,
            group_id=group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            isolation_level="read_committed",
            session_timeout_ms=10000,
            heartbeat_interval_ms=1000,
            max_poll_interval_ms=300000,
        )
        self._producers: dict[TP, Any] = {}
        self._listener = _Rebalance(self, listener)
        self.broken: Exception | None = None

    def transactional_id(self, tp: TP) -> str:
        prefix = self._settings.kafka_transactional_id_prefix
        return f"{prefix}-{self._group}-{tp[0]}-{tp[1]}"

    async def acquire(self, tps: set[TP]) -> None:
        """Start (and so fence the previous owner of) each new partition's producer."""
        for tp in sorted(tps - self._producers.keys()):
            producer = AIOKafkaProducer(
                **self._options,
                transactional_id=self.transactional_id(tp),
                enable_idempotence=True,
                acks="all",
                linger_ms=self._settings.kafka_linger_ms,
            )
            await producer.start()
            self._producers[tp] = producer

    def pause(self, partitions: Any) -> None:
        self._consumer.pause(*partitions)

    def resume(self, partitions: Any) -> None:
        owned = set(self._consumer.assignment())
        self._consumer.resume(*(tp for tp in partitions if tp in owned))

    async def release(self, tps: set[TP]) -> None:
        for tp in tps:
            producer = self._producers.pop(tp, None)
            if producer is not None:
                with contextlib.suppress(KafkaError):
                    await producer.stop()

    async def start(self) -> None:
        try:
            self._consumer.subscribe(self._topics, listener=self._listener)
            await self._consumer.start()
        except KafkaError as exc:
            await self.stop()
            raise LogUnavailable(f"cannot start the Kafka consumer: {exc}") from exc

    async def stop(self) -> None:
        with contextlib.suppress(KafkaError):
            await self._consumer.stop()  # revokes: the listener releases the producers
        await self.release(set(self._producers))

    async def fetch(self, max_records: int, timeout_s: float) -> list[LogRecord]:
        if self.broken is not None:
            raise LogUnavailable(f"partition assignment failed: {self.broken}")
        try:
            batch = await self._consumer.getmany(
                timeout_ms=int(timeout_s * 1000), max_records=max_records
            )
        except KafkaError as exc:
            raise LogUnavailable(f"kafka fetch: {exc}") from exc
        return [_to_record(m) for messages in batch.values() for m in messages]

    async def commit(
        self, outputs: Mapping[TP, Sequence[Record]], positions: Mapping[TP, int]
    ) -> None:
        parts = {tp for tp, records in outputs.items() if records} | set(positions)
        results = await asyncio.gather(
            *(self._commit_partition(tp, outputs.get(tp, ()), positions.get(tp)) for tp in parts),
            return_exceptions=True,
        )
        failures = [r for r in results if isinstance(r, BaseException)]
        if failures:
            raise LogUnavailable(f"kafka transaction: {failures[0]}") from failures[0]

    async def _commit_partition(
        self, tp: TP, outputs: Sequence[Record], position: int | None
    ) -> None:
        producer = self._producers.get(tp)
        if producer is None:
            raise LogUnavailable(f"partition {tp} is no longer owned here")
        try:
            async with producer.transaction():
                futures = [await _send(producer, record) for record in outputs]
                if position is not None:
                    await producer.send_offsets_to_transaction(
                        {TopicPartition(*tp): position}, self._group
                    )
            await asyncio.gather(*futures)
        except KafkaError as exc:
            raise LogUnavailable(f"kafka transaction on {tp}: {exc}") from exc

    async def rewind(self) -> None:
        try:
            for tp in self._consumer.assignment():
                committed = await self._consumer.committed(tp)
                if committed is None:
                    await self._consumer.seek_to_beginning(tp)
                else:
                    self._consumer.seek(tp, committed)
        except KafkaError as exc:
            raise LogUnavailable(f"kafka rewind: {exc}") from exc

    async def lag(self) -> dict[TP, int]:
        assigned = list(self._consumer.assignment())
        if not assigned:
            return {}
        result: dict[TP, int] = {}
        try:
            end = await self._consumer.end_offsets(assigned)
            for tp in assigned:
                committed = await self._consumer.committed(tp) or 0
                result[(tp.topic, tp.partition)] = max(0, end[tp] - committed)
        except KafkaError as exc:
            raise LogUnavailable(f"kafka lag: {exc}") from exc
        return result


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


async def check_partitions(log: KafkaLog, raw_topic: str, state_topic: str) -> None:
    """The processor writes state to the partition of the raw record it came from, so
    the state topic needs at least as many partitions as the raw topic."""
    counts = await log.partition_counts([raw_topic, state_topic])
    if counts[state_topic] < counts[raw_topic]:
        raise ConfigurationError(
            f"{state_topic} has {counts[state_topic]} partitions but {raw_topic} has "
            f"{counts[raw_topic]}; give the state topic at least as many"
        )
