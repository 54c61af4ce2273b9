"""The Kafka log: appends through one idempotent producer (`acks=all`), returning once
the broker has replicated them; reads; topic creation. Consumers commit through their own
transactional producers (consumer.py), so `read_committed` readers see each output
exactly once even if a process dies mid-batch. aiokafka errors become `LogUnavailable`
in this package and nowhere else.

The log keeps the consumers it built on its books from `start()` until every client they
opened is closed (`holdings()` counts them); `close()` closes what their owners left open,
e.g. when a shutdown deadline cancelled a consumer's `stop()`."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError

from gateway.errors import ConfigurationError, LogUnavailable
from gateway.log.base import AssignmentListener, LogRecord, Position, Record
from gateway.log.kafka.common import client_options, send_record, start_client, to_log_record
from gateway.log.kafka.consumer import Holdings, KafkaConsumer, holdings
from gateway.log.kafka.partitioner import DefaultPartitioner
from gateway.ops.logs import get_logger
from gateway.settings import Settings

logger = get_logger("gateway.log.kafka")


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
        self._consumers: set[KafkaConsumer] = set()
        self.on_hanging_ended: Callable[[str], None] | None = None
        """Told the outcome ("commit" or "abort") of each transaction a previous owner
        left hanging that one of this log's consumers ended on a takeover."""

    async def start(self) -> None:
        if self._settings.kafka_create_topics and self._topics:
            await self.ensure_topics()
        self._producer = AIOKafkaProducer(
            **self._options,
            enable_idempotence=True,
            acks="all",
            linger_ms=self._settings.kafka_linger_ms,
            max_batch_size=self._settings.kafka_max_batch_bytes,
            partitioner=DefaultPartitioner(),
            request_timeout_ms=max(5000, int(self._settings.kafka_append_timeout_s * 4000)),
        )
        try:
            await self._producer.start()
        except KafkaError as exc:
            await self._producer.stop()
            raise LogUnavailable(f"cannot reach Kafka: {exc}") from exc
        for topic in self._topics:
            # Metadata of these topics only is what readiness asks for (see writable).
            self._producer.client.add_topic(topic)

    async def close(self) -> None:
        left = list(self._consumers)
        if left:
            logger.warning(
                "closing Kafka consumers their owners left open",
                consumers=len(left),
                producers=len(self.holdings().producers),
            )
            await asyncio.gather(*(consumer.stop() for consumer in left))
        if self._producer is not None:
            await self._producer.stop()  # flushes what is queued

    def holdings(self) -> Holdings:
        """The consumers this log built that are not closed yet, and what they hold."""
        return holdings(self._consumers)

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
            return [await send_record(self._producer, record) for record in records]
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
        return KafkaConsumer(
            self._settings,
            self._options,
            group,
            topics,
            listener,
            self._consumers,
            on_hanging_ended=self._hanging_ended,
        )

    def _hanging_ended(self, outcome: str) -> None:
        if self.on_hanging_ended is not None:
            self.on_hanging_ended(outcome)

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
        try:
            await start_client(consumer)
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
                            yield to_log_record(message)
                for tp in list(remaining):
                    if await consumer.position(tp) >= end[tp]:
                        remaining.discard(tp)
        except KafkaError as exc:
            raise LogUnavailable(f"kafka read of {topic}: {exc}") from exc
        finally:
            await consumer.stop()

    async def writable(self) -> bool:
        """Whether the cluster answers a metadata request for the gateway's topics: a round
        trip to a broker, asked every second, so not for the whole cluster's metadata
        (which a cluster of many topics makes large to decode)."""
        if self._producer is None:
            return False
        client = self._producer.client
        try:
            async with asyncio.timeout(2.0):
                return bool(await client.force_metadata_update())
        except (KafkaError, TimeoutError, OSError):
            return False


async def check_partitions(log: KafkaLog, raw_topic: str, state_topic: str) -> None:
    """The processor writes state to the partition of the raw record it came from, so
    the state topic needs at least as many partitions as the raw topic."""
    counts = await log.partition_counts([raw_topic, state_topic])
    if counts[state_topic] < counts[raw_topic]:
        raise ConfigurationError(
            f"{state_topic} has {counts[state_topic]} partitions but {raw_topic} has "
            f"{counts[raw_topic]}; give the state topic at least as many"
        )
