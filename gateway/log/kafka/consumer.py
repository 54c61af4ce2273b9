"""A consumer-group member whose commits are Kafka transactions, one per owned partition."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping, Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.errors import KafkaError

from gateway.errors import LogUnavailable
from gateway.log.base import AssignmentListener, LogRecord, Record
from gateway.log.base import TopicPartition as TP
from gateway.log.kafka.common import send_record, to_log_record
from gateway.log.kafka.partitioner import DefaultPartitioner
from gateway.settings import Settings


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
                max_batch_size=self._settings.kafka_max_batch_bytes,
                partitioner=DefaultPartitioner(),
            )
            try:
                await producer.start()
            except BaseException:
                await producer.stop()  # a half-started client still holds connections
                raise
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
        return [to_log_record(m) for messages in batch.values() for m in messages]

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
                futures = [await send_record(producer, record) for record in outputs]
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
