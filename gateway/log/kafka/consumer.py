"""A consumer-group member whose commits are Kafka transactions, one per owned partition.

Ownership: the `KafkaConsumer` owns its aiokafka consumer and one transactional producer
per assigned partition. A producer is on its books from the moment it is built (before
it connects) until its `stop()` returned; a revoked partition's producer is flushed and
closed before the next assignment is taken; `stop()` closes everything, also when a
rebalance is in progress. The `KafkaLog` that built a consumer keeps it on its books until
then, counts what it holds (`Holdings`) and closes whatever an owner left open.

Taking a partition over: its producer starts (fencing the previous owner), then any
transaction still hanging on its state partition is aborted (`abort_hanging`), then the
owner loads its state and the partition resumes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.errors import KafkaError

from gateway.errors import LogUnavailable
from gateway.log.base import AssignmentListener, LogRecord, Record
from gateway.log.base import TopicPartition as TP
from gateway.log.kafka.common import send_batches, to_log_record
from gateway.log.kafka.partitioner import DefaultPartitioner
from gateway.ops.logs import get_logger
from gateway.settings import Settings

logger = get_logger("gateway.log.kafka")

_SESSION_TIMEOUT_MS = 10_000
# aiokafka sends no heartbeat while the assignment callback runs, so the group evicts a
# member whose producers take longer than the session timeout to start: give up before.
_ACQUIRE_TIMEOUT_S = 0.8 * _SESSION_TIMEOUT_MS / 1000
# A producer's start is only cancelled when it hangs: aiokafka leaks its bootstrap
# connection when the start is cancelled while it asks for the first metadata.
_STOP_WAITS_FOR_STARTS_S = 3.0
# Every batch commits a transaction per partition, so the steps of one meet the end of
# the one before (CONCURRENT_TRANSACTIONS while its markers are written) and transient
# coordinator answers often; aiokafka then waits its retry backoff, 100 ms by default,
# before it asks again. 20 ms is the wait aiokafka itself uses between transactions in
# one such case; with it a batch's commit took half as long (bench/README.md).
_TXN_RETRY_BACKOFF_MS = 20
# How long a fetch that found records waits for the broker's newer ones (see fetch).
_TOP_UP_MS = 10
# The key of the records an aborting transaction writes (never visible: aborted).
_ABORT_KEY = b"gw-abort-hanging-transaction"


class _Abort(Exception):
    """Ends the transaction that aborts a hanging one."""


def hanging(committed_end: Mapping[TP, int], written_end: Mapping[TP, int]) -> list[TP]:
    """The partitions whose last stable offset (`committed_end`, as a read_committed
    reader sees the end) is behind what was written (`written_end`): an open transaction
    holds them."""
    return sorted(tp for tp, end in written_end.items() if committed_end.get(tp, end) < end)


@dataclass(frozen=True, slots=True)
class Holdings:
    """What a log's consumers hold open right now."""

    consumers: int  # started and not yet closed
    partitions: tuple[TP, ...]  # assigned to them by the group (aiokafka's view)
    producers: tuple[TP, ...]  # the partition of each open transactional producer
    starting: tuple[TP, ...]  # those of them still starting (fencing the previous owner)


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    """Keeps one transactional producer per owned partition in step with ownership.

    Never raises: aiokafka would only log the error and carry on. A failure marks the
    consumer broken instead, so its next fetch fails and its owner rebuilds it.
    """

    def __init__(self, owner: KafkaConsumer, listener: AssignmentListener | None) -> None:
        self._owner = owner
        self._listener = listener

    async def on_partitions_revoked(self, revoked: Any) -> None:
        tps = {(tp.topic, tp.partition) for tp in revoked}
        try:
            if self._listener is not None:
                await self._listener.on_revoked(tps)  # waits for the batch in flight
        except Exception as exc:
            self._owner.fail(exc)
        finally:
            await self._owner.release(tps)

    async def on_partitions_assigned(self, assigned: Any) -> None:
        # aiokafka's fetcher starts on new partitions while this listener runs; keep
        # them paused until their producer is up and the owner has loaded their state.
        self._owner.pause(assigned)
        tps = {(tp.topic, tp.partition) for tp in assigned}
        try:
            await self._owner.acquire(tps)
            await self._owner.abort_hanging(tps)
            if self._listener is not None:
                await self._listener.on_assigned(tps)
        except Exception as exc:
            self._owner.fail(exc)
            return
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
        books: set[KafkaConsumer],
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
            session_timeout_ms=_SESSION_TIMEOUT_MS,
            heartbeat_interval_ms=1000,
            max_poll_interval_ms=300000,
        )
        # Owned: started, so a commit may use it. A producer is not owned while it starts
        # or once its close began: a transaction begun on one would wait forever (on an
        # InitProducerId still running, or on a sender going away). Opening and closing
        # ones are on the books apart, until their start failed or their stop() returned.
        self._producers: dict[TP, Any] = {}
        self._opening: dict[TP, Any] = {}
        self._closing_producers: dict[int, tuple[TP, Any]] = {}
        self._starting: set[asyncio.Task[None]] = set()
        self._stopping = False
        self._closing: asyncio.Task[None] | None = None
        self._books = books
        self._listener = _Rebalance(self, listener)
        self.broken: Exception | None = None

    def transactional_id(self, tp: TP) -> str:
        prefix = self._settings.kafka_transactional_id_prefix
        return f"{prefix}-{self._group}-{tp[0]}-{tp[1]}"

    # --- ownership ------------------------------------------------------------------------
    def assignment(self) -> set[TP]:
        return {(tp.topic, tp.partition) for tp in self._consumer.assignment()}

    def producers(self) -> list[TP]:
        """The partition of every producer still open: owned, starting or being closed."""
        closing = (tp for tp, _ in self._closing_producers.values())
        return [*self._producers, *self._opening, *closing]

    def starting(self) -> list[TP]:
        return list(self._opening)

    async def acquire(self, tps: set[TP]) -> None:
        """Start (and so fence the previous owner of) each new partition's producer, all
        at once; raises LogUnavailable, with nothing of it left open, if one fails, takes
        too long or the consumer is stopping."""
        if self._stopping:
            raise LogUnavailable("the consumer is stopping")
        new = sorted(tps - self._producers.keys() - self._opening.keys())
        for tp in new:  # on the books before the first await
            self._opening[tp] = AIOKafkaProducer(
                **self._options,
                transactional_id=self.transactional_id(tp),
                enable_idempotence=True,
                acks="all",
                retry_backoff_ms=_TXN_RETRY_BACKOFF_MS,
                linger_ms=self._settings.kafka_linger_ms,
                max_batch_size=self._settings.kafka_max_batch_bytes,
                partitioner=DefaultPartitioner(),
            )
        tasks = {
            tp: asyncio.create_task(self._opening[tp].start(), name=f"producer-start-{tp[1]}")
            for tp in new
        }
        self._starting.update(tasks.values())
        try:
            if tasks:
                await asyncio.wait(tasks.values(), timeout=_ACQUIRE_TIMEOUT_S)
        finally:
            for task in tasks.values():
                task.cancel()  # a no-op for those that finished
            await asyncio.gather(*tasks.values(), return_exceptions=True)
            self._starting.difference_update(tasks.values())
        failed = {tp: task for tp, task in tasks.items() if task.cancelled() or task.exception()}
        for tp in tasks.keys() - failed.keys():
            self._producers[tp] = self._opening.pop(tp)
        if failed:
            await self._close_all([(tp, self._opening.pop(tp)) for tp in failed])
            raise LogUnavailable(f"producers for {sorted(failed)} did not start: {_why(failed)}")

    async def abort_hanging(self, tps: set[TP]) -> None:
        """Abort any transaction a previous owner of these partitions left hanging.

        Once a partition's producer has started (fencing the previous owner, whose open
        transaction the coordinator then aborts or completes), nothing should be open on
        its state partition, which only that producer writes. Something still is when the
        broker completed a transaction without writing its markers (a single broker
        restarted in the middle of a commit: README, known limitations). Left alone, the
        next commit of the same producer id would make those records visible on top of
        their second copies. So the producer aborts a transaction of its own that touches
        every partition it may write and the group's offsets: the markers it leaves end
        the hanging records too, as aborted. Raises LogUnavailable if that did not help.
        """
        # Only the processor's consumer of the raw topic has a state partition per input
        # partition; another group's (a DLQ redrive) must not judge the processor's.
        raw = self._settings.topic_raw
        state = {tp: (self._settings.topic_state, tp[1]) for tp in tps if tp[0] == raw}
        if not state:
            return
        found = await self._hanging_states(list(state.values()))
        for tp in sorted(tp for tp, s in state.items() if s in found):
            logger.warning(
                "a transaction the previous owner left hangs; aborting it",
                partition=tp,
                state_partition=state[tp],
            )
            await self._abort_everything(tp)
        if found and (left := await self._hanging_states(found)):
            raise LogUnavailable(f"transactions on {left} still hang after an abort")

    async def _hanging_states(self, partitions: list[TP]) -> list[TP]:
        probe = AIOKafkaConsumer(
            **self._options, enable_auto_commit=False, isolation_level="read_uncommitted"
        )
        try:
            await probe.start()
            existing = await probe.topics()
            tps = [TopicPartition(*tp) for tp in partitions if tp[0] in existing]
            written = await probe.end_offsets(tps) if tps else {}
            stable = await self._consumer.end_offsets(tps) if tps else {}  # the LSO
        except KafkaError as exc:
            raise LogUnavailable(f"kafka end offsets of {partitions}: {exc}") from exc
        finally:
            await probe.stop()
        return hanging(
            {(tp.topic, tp.partition): end for tp, end in stable.items()},
            {(tp.topic, tp.partition): end for tp, end in written.items()},
        )

    async def _abort_everything(self, tp: TP) -> None:
        producer = self._producers[tp]
        topics = self._settings.processor_topics
        position = TopicPartition(*tp)
        try:
            existing = await self._consumer.topics()
            async with producer.transaction():
                sent = [
                    await producer.send(topic, b"", key=_ABORT_KEY, partition=partition)
                    for topic in topics
                    if topic in existing
                    for partition in sorted(await producer.partitions_for(topic))
                ]
                await asyncio.gather(*sent)  # every partition is in the transaction
                committed = await self._consumer.committed(position)
                await producer.send_offsets_to_transaction({position: committed or 0}, self._group)
                raise _Abort
        except _Abort:
            pass
        except KafkaError as exc:
            raise LogUnavailable(f"kafka abort on {tp}: {exc}") from exc

    async def release(self, tps: set[TP]) -> None:
        """Flush and close the producers of `tps`; a failure to close is logged, not raised."""
        await self._close_all(
            [(tp, self._producers.pop(tp)) for tp in tps if tp in self._producers]
        )

    async def _close_all(self, leaving: list[tuple[TP, Any]]) -> None:
        for tp, producer in leaving:  # on the books as closing before the first await
            self._closing_producers[id(producer)] = (tp, producer)
        await asyncio.gather(*(self._close(tp, producer) for tp, producer in leaving))

    async def _close(self, tp: TP, producer: Any) -> None:
        try:
            await producer.stop()
        except Exception as exc:  # closed as far as it goes; nothing more to do with it
            logger.warning(
                "transactional producer closed with an error", partition=tp, error=repr(exc)
            )
        self._closing_producers.pop(id(producer), None)  # kept (counted) if stop() is cut short

    def fail(self, exc: Exception) -> None:
        """A rebalance step failed: the next fetch raises, so the owner rebuilds this."""
        if self._stopping:
            return
        if self.broken is None:
            self.broken = exc
        logger.warning(
            "partition assignment failed; the consumer will be rebuilt",
            group=self._group,
            error=str(exc),
        )

    def pause(self, partitions: Any) -> None:
        self._consumer.pause(*partitions)

    def resume(self, partitions: Any) -> None:
        owned = set(self._consumer.assignment())
        self._consumer.resume(*(tp for tp in partitions if tp in owned))

    # --- lifecycle ------------------------------------------------------------------------
    async def start(self) -> None:
        self._books.add(self)
        try:
            self._consumer.subscribe(self._topics, listener=self._listener)
            await self._consumer.start()
        except KafkaError as exc:
            await self.stop()
            raise LogUnavailable(f"cannot start the Kafka consumer: {exc}") from exc

    async def stop(self) -> None:
        """Leave the group and close every producer, also in the middle of a rebalance:
        producers still starting get a moment to finish (then they are cancelled), and
        whatever the rebalance opened before aiokafka let go of it is closed afterwards.
        Cancelling `stop()` does not cut the aiokafka consumer's close short; the log
        waits for it when it closes."""
        self._stopping = True
        if self._starting:  # an assignment is starting producers: let them finish
            _, hanging = await asyncio.wait(self._starting, timeout=_STOP_WAITS_FOR_STARTS_S)
            for task in hanging:
                task.cancel()
        if self._closing is None:
            self._closing = asyncio.create_task(self._close_consumer(), name="consumer-close")
            self._closing.add_done_callback(lambda _: self._forget())
        try:
            await asyncio.shield(self._closing)  # waits for a rebalance listener in progress
        finally:
            await self.release(set(self._producers))
            # Starts cut short above, and closes cut short by a cancelled stop(), get
            # another go (a producer's stop() is idempotent).
            await self._close_all([(tp, self._opening.pop(tp)) for tp in list(self._opening)])
            for tp, producer in list(self._closing_producers.values()):
                await self._close(tp, producer)
            self._forget()

    async def _close_consumer(self) -> None:
        try:
            await self._consumer.stop()
        except Exception as exc:  # the producers are closed all the same
            logger.warning(
                "kafka consumer stopped with an error", group=self._group, error=repr(exc)
            )

    def _forget(self) -> None:
        """Off the log's books once nothing it opened is open any more."""
        idle = not (self._producers or self._opening or self._closing_producers)
        if idle and self._closing is not None and self._closing.done():
            self._books.discard(self)

    # --- the LogConsumer port -------------------------------------------------------------
    async def fetch(self, max_records: int, timeout_s: float) -> list[LogRecord]:
        if self.broken is not None:
            raise LogUnavailable(f"partition assignment failed: {self.broken}")
        try:
            batch = await self._consumer.getmany(
                timeout_ms=int(timeout_s * 1000), max_records=max_records
            )
            got = sum(len(messages) for messages in batch.values())
            if 0 < got < max_records:
                # aiokafka prefetches: what getmany hands over was fetched when the previous
                # batch was taken, and taking it sends the next fetch. Wait briefly for that
                # one, so a batch holds what the broker has now, not what it had a batch ago
                # (each record would otherwise wait a whole batch more; bench/README.md).
                more = await self._consumer.getmany(
                    timeout_ms=_TOP_UP_MS, max_records=max_records - got
                )
                for tp, messages in more.items():
                    batch.setdefault(tp, []).extend(messages)
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
            raise LogUnavailable(f"partition {tp} is not owned here (revoked, or still starting)")
        try:
            async with producer.transaction():
                futures = await send_batches(producer, outputs)
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


def holdings(consumers: set[KafkaConsumer]) -> Holdings:
    return Holdings(
        consumers=len(consumers),
        partitions=tuple(sorted(tp for c in consumers for tp in c.assignment())),
        producers=tuple(sorted(tp for c in consumers for tp in c.producers())),
        starting=tuple(sorted(tp for c in consumers for tp in c.starting())),
    )


def _why(failed: Mapping[TP, asyncio.Task[None]]) -> str:
    for task in failed.values():
        if not task.cancelled() and task.exception() is not None:
            return repr(task.exception())
    return "timed out or stopped"
