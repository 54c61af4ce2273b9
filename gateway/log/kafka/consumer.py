"""A consumer-group member whose commits are Kafka transactions, one per owned partition.

Ownership: the `KafkaConsumer` owns its aiokafka consumer and one transactional producer
per assigned partition. A producer is on its books from the moment it is built (before
it connects) until its `stop()` returned; a revoked partition's producer is flushed and
closed before the next assignment is taken; `stop()` closes everything, also when a
rebalance is in progress. The `KafkaLog` that built a consumer keeps it on its books until
then, counts what it holds (`Holdings`) and closes whatever an owner left open.

Taking a partition over: its producer starts (fencing the previous owner), then any
transaction still hanging on its state partition is ended as its coordinator decided
(`end_hanging`), then its position is found (`restore_positions`: the processor's are
kept in its state changelog, positions.py), then the owner loads its state and the
partition resumes. All of that runs in a task of its own (`take_over`), with the
partitions paused, not in aiokafka's assignment callback: aiokafka sends no heartbeat
while that callback runs, and loading a large state can take longer than the session
timeout, after which the group would evict the member and rebalance again, forever. A
revocation or `stop()` that comes first abandons the takeover after the step it is in
(`settle_takeover`); it is never cancelled, since aiokafka leaks the connection of a
request cancelled while it connects.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.errors import KafkaError

from gateway.errors import LogUnavailable
from gateway.log.base import POSITION_KEY, AssignmentListener, LogRecord, Record
from gateway.log.base import TopicPartition as TP
from gateway.log.kafka.common import send_batches, start_client, to_log_record
from gateway.log.kafka.hanging import (
    FetchRefused,
    Outcome,
    decide,
    markers_since,
    open_transaction,
)
from gateway.log.kafka.partitioner import DefaultPartitioner
from gateway.log.kafka.positions import (
    FIRST_WINDOW,
    WINDOW_GROWTH,
    encode_position,
    last_position,
    scan_start,
    searched_all,
    start_position,
)
from gateway.ops.logs import get_logger
from gateway.settings import Settings

logger = get_logger("gateway.log.kafka")

_SESSION_TIMEOUT_MS = 10_000
# A producer that has not started after this long hangs (the broker is unreachable, or
# the coordinator keeps answering that it is loading): the assignment fails and the
# owner rebuilds the consumer.
_ACQUIRE_TIMEOUT_S = 8.0
# Every batch commits a transaction per partition, so the steps of one meet the end of
# the one before (CONCURRENT_TRANSACTIONS while its markers are written) and transient
# coordinator answers often; aiokafka then waits its retry backoff, 100 ms by default,
# before it asks again. 20 ms is the wait aiokafka itself uses between transactions in
# one such case; with it a batch's commit took half as long (bench/README.md).
_TXN_RETRY_BACKOFF_MS = 20
# How long a fetch that found records waits for the broker's newer ones (see fetch).
_TOP_UP_MS = 10
# How long a takeover waits for the markers of the transaction that ended a hanging one
# (the coordinator writes them after its EndTxn answer), and how often it looks.
_MARKERS_WAIT_S = 3.0
_MARKERS_POLL_S = 0.05
# How long a takeover may search the processor's partitions for the marker that says how
# a hanging transaction was ended (hanging.py).
_MARKER_SEARCH_S = 3.0
# How often the positions kept in the changelog are also committed to the group's
# offsets (for lag tools; positions.py).
_GROUP_OFFSETS_EVERY_S = 1.0
# How long finding a partition's newest position record in the changelog may take.
_RESTORE_TIMEOUT_S = 30.0


async def _abandoned(task: asyncio.Task[None] | None, abandon: asyncio.Event) -> None:
    """Tell a takeover to stop after its current step, and wait for it."""
    if task is not None and not task.done():
        abandon.set()
        await asyncio.wait([task])


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
            await self._owner.settle_takeover()
            if self._listener is not None:
                await self._listener.on_revoked(tps)  # waits for the batch in flight
            await self._owner.share_positions(tps)
        except Exception as exc:
            self._owner.fail(exc)
        finally:
            await self._owner.release(tps)

    async def on_partitions_assigned(self, assigned: Any) -> None:
        # aiokafka's fetcher starts on new partitions once this returns; keep them
        # paused until their producer is up and the owner has loaded their state.
        self._owner.pause(assigned)
        self._owner.take_over(assigned, self._listener)


class KafkaConsumer:
    """A group member whose commits are Kafka transactions: per owned input partition,
    the outputs derived from it and its new position in one transaction. The position
    of a raw partition is a record on its state partition (positions.py); that of any
    other (a DLQ redrive's) is the group's offset, committed in the transaction.

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
        on_hanging_ended: Callable[[str], None] | None = None,
    ) -> None:
        """`on_hanging_ended` is told the outcome ("commit" or "abort") of each hanging
        transaction a takeover ended (`end_hanging`)."""
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
        self._takeover: asyncio.Task[None] | None = None
        self._abandon = asyncio.Event()  # set: the takeover in progress stops after its step
        self._stopping = False
        self._closing: asyncio.Task[None] | None = None
        self._books = books
        self._on_hanging_ended = on_hanging_ended
        self._listener = _Rebalance(self, listener)
        self.broken: Exception | None = None
        # The position last committed per owned partition, and those of them the group's
        # offsets do not show yet.
        self._positions: dict[TP, int] = {}
        self._unshared: dict[TP, int] = {}
        # The state partition of each owned raw partition whose position is kept there.
        self._kept: dict[TP, TP] = {}
        self._sharing: asyncio.Task[None] | None = None

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

    def take_over(self, assigned: Any, listener: AssignmentListener | None) -> None:
        """Take the (paused) `assigned` partitions over in the background and resume them
        once done: acquire, end what hangs, restore positions, then the listener."""
        previous = (self._takeover, self._abandon)
        self._abandon = asyncio.Event()
        self._takeover = asyncio.create_task(
            self._take_over(assigned, listener, self._abandon, previous),
            name="partition-takeover",
        )
        self._takeover.add_done_callback(lambda _: self._forget())

    async def _take_over(
        self,
        assigned: Any,
        listener: AssignmentListener | None,
        abandon: asyncio.Event,
        previous: tuple[asyncio.Task[None] | None, asyncio.Event],
    ) -> None:
        tps = {(tp.topic, tp.partition) for tp in assigned}
        started = asyncio.get_running_loop().time()
        await _abandoned(*previous)  # no revocation came between: it ends first
        steps: list[Callable[[], Awaitable[None]]] = [
            lambda: self.acquire(tps),
            lambda: self.end_hanging(tps),
            lambda: self.restore_positions(tps),
        ]
        if listener is not None:
            steps.append(lambda: listener.on_assigned(tps))
        try:
            for step in steps:
                if abandon.is_set():  # whoever abandoned it releases what it opened
                    return
                await step()
        except asyncio.CancelledError:
            # Producers a cancelled start left behind; the revocation releases the rest.
            await self._close_all(
                [(tp, self._opening.pop(tp)) for tp in tps & self._opening.keys()]
            )
            raise
        except Exception as exc:
            self.fail(exc)
            return
        if abandon.is_set():
            return
        self.resume(assigned)
        if tps:
            logger.info(
                "partitions taken over",
                group=self._group,
                partitions=sorted(tps),
                took_s=round(asyncio.get_running_loop().time() - started, 3),
            )

    async def settle_takeover(self) -> None:
        """Abandon a takeover still in progress and wait for the step it is in to end.
        It is never cancelled: aiokafka leaks the connection of a request (a start, a
        first request to a broker) cancelled while it connects."""
        await _abandoned(self._takeover, self._abandon)

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

    async def end_hanging(self, tps: set[TP]) -> None:
        """End any transaction a previous owner of these partitions left hanging, the way
        its coordinator decided it.

        Once a partition's producer has started (fencing the previous owner, whose open
        transaction the coordinator then aborts or completes), nothing should be open on
        its state partition, which only that producer writes. Something still is when the
        broker completed a transaction without writing all of its markers (a single broker
        restarted in the middle of a commit: README, known limitations). Left alone, the
        next commit of the same producer id would make those records visible whatever the
        transaction's fate. So the outcome is looked up (`hanging.py`: a COMMIT or ABORT
        marker of that producer id and epoch on another partition it wrote; abort when
        none is found), and the producer ends a transaction of its own the same way, one
        that takes in every partition it may write and the group's offsets but writes no
        record: its markers end the hanging records too. Raises LogUnavailable if
        anything still hangs after that.
        """
        state = self._state_partitions(tps)
        if not state:
            return
        async with self._probe() as probe:
            found = await self._hanging_states(probe, list(state.values()))
            for tp in sorted(tp for tp, s in state.items() if s in found):
                writable = await self._writable(self._producers[tp])
                outcome = await self._outcome(probe, tp, state[tp], found[state[tp]], writable)
                logger.warning(
                    "a transaction the previous owner left hangs; ending it as its coordinator did",
                    partition=tp,
                    state_partition=state[tp],
                    outcome=outcome,
                )
                await self._end_everything(tp, writable, commit=outcome == "commit")
                if self._on_hanging_ended is not None:
                    self._on_hanging_ended(outcome)
            if found and (left := await self._still_hanging(probe, list(found))):
                raise LogUnavailable(f"transactions on {sorted(left)} still hang after ending them")

    async def _still_hanging(self, probe: Any, partitions: list[TP]) -> list[TP]:
        """Those of `partitions` still held open once the markers had time to land: the
        coordinator writes them after it answered EndTxn."""
        deadline = asyncio.get_running_loop().time() + _MARKERS_WAIT_S
        while left := list(await self._hanging_states(probe, partitions)):
            if asyncio.get_running_loop().time() >= deadline:
                break
            await asyncio.sleep(_MARKERS_POLL_S)
        return left

    @contextlib.asynccontextmanager
    async def _probe(self) -> AsyncIterator[Any]:
        """A read_uncommitted consumer for written ends and raw fetches."""
        probe = AIOKafkaConsumer(
            **self._options, enable_auto_commit=False, isolation_level="read_uncommitted"
        )
        try:
            await start_client(probe)
        except BaseException as exc:
            await probe.stop()
            if isinstance(exc, KafkaError):
                raise LogUnavailable(f"kafka probe: {exc}") from exc
            raise
        try:
            yield probe
        finally:
            await probe.stop()

    async def _hanging_states(self, probe: Any, partitions: list[TP]) -> dict[TP, int]:
        """The partitions an open transaction holds, each with its last stable offset."""
        try:
            existing = await probe.topics()
            tps = [TopicPartition(*tp) for tp in partitions if tp[0] in existing]
            written = await probe.end_offsets(tps) if tps else {}
            stable = await self._consumer.end_offsets(tps) if tps else {}  # the LSO
        except KafkaError as exc:
            raise LogUnavailable(f"kafka end offsets of {partitions}: {exc}") from exc
        ends = {(tp.topic, tp.partition): end for tp, end in stable.items()}
        found = hanging(ends, {(tp.topic, tp.partition): end for tp, end in written.items()})
        return {tp: ends[tp] for tp in found}

    async def _outcome(
        self, probe: Any, tp: TP, state: TP, stable_end: int, writable: list[TP]
    ) -> Outcome:
        """How the coordinator ended the transaction hanging on `state`: looked up on the
        other partitions the processor writes (`writable`); abort when no marker says."""
        try:
            opened = await open_transaction(probe._client, state, stable_end)
            if opened is None or opened.producer_id != self._producers[tp]._txn_manager.producer_id:
                return "abort"  # not this partition's producer's: its abort cannot end it
            others = [TopicPartition(*other) for other in writable if other != state]
            since = await probe.offsets_for_times(dict.fromkeys(others, opened.timestamp_ms))
            ends = await probe.end_offsets(others)
            # The partitions taken over wait, paused, for the search: it is bounded, and
            # ends as an abort, the old way, when it takes too long.
            async with asyncio.timeout(_MARKER_SEARCH_S):
                markers = await markers_since(
                    probe._client,
                    {(p.topic, p.partition): at.offset for p, at in since.items() if at},
                    {(p.topic, p.partition): end for p, end in ends.items()},
                    opened,
                )
        except TimeoutError:
            logger.warning("no marker found in time; aborting", state_partition=state)
            return "abort"
        except (KafkaError, FetchRefused) as exc:
            raise LogUnavailable(
                f"kafka look-up of the hanging transaction on {state}: {exc}"
            ) from exc
        return decide(opened, markers) or "abort"

    async def _writable(self, producer: Any) -> list[TP]:
        """Every partition the processor's transactions may write."""
        existing = await self._consumer.topics()
        return [
            (topic, partition)
            for topic in self._settings.processor_topics
            if topic in existing
            for partition in sorted(await producer.partitions_for(topic))
        ]

    async def _end_everything(self, tp: TP, writable: list[TP], *, commit: bool) -> None:
        producer = self._producers[tp]
        try:
            await producer.begin_transaction()
            for other in writable:
                # No record: the partition takes part, so its marker is written.
                producer._txn_manager.maybe_add_partition_to_txn(TopicPartition(*other))
            # Takes the group's offsets in too, at the offset committed now: the marker
            # settles whatever the hanging transaction left pending there.
            position = TopicPartition(*tp)
            committed = await self._consumer.committed(position)
            await producer.send_offsets_to_transaction({position: committed or 0}, self._group)
            if commit:
                await producer.commit_transaction()
            else:
                await producer.abort_transaction()
        except KafkaError as exc:
            raise LogUnavailable(f"kafka end of the hanging transaction on {tp}: {exc}") from exc

    def _state_partitions(self, tps: set[TP]) -> dict[TP, TP]:
        """The state partition of each raw partition among `tps`. Only the processor's
        consumer of the raw topic has one per input partition; another group's (a DLQ
        redrive) must not judge or use the processor's."""
        raw, state = self._settings.topic_raw, self._settings.topic_state
        return {tp: (state, tp[1]) for tp in tps if tp[0] == raw}

    async def restore_positions(self, tps: set[TP]) -> None:
        """Start each new partition at its last committed position: the larger of the
        one in the changelog and the group's offset (positions.py). A raw partition's
        position is kept in its state partition from now on, if there is one."""
        wanted = self._state_partitions(tps)
        in_changelog = await self._changelog_positions(wanted) if wanted else {}
        try:
            for tp in sorted(tps):
                partition = TopicPartition(*tp)
                group = await self._consumer.committed(partition)
                start = start_position(in_changelog.get(tp), group)
                if start is None:
                    continue  # nothing committed yet: the reset policy (earliest) decides
                self._consumer.seek(partition, start)
                self._positions[tp] = start
        except KafkaError as exc:
            raise LogUnavailable(f"kafka committed offsets of {sorted(tps)}: {exc}") from exc

    async def _changelog_positions(self, wanted: Mapping[TP, TP]) -> dict[TP, int]:
        """The newest committed position record of each state partition in `wanted`
        that exists (found by reading back from its end in growing windows); those
        that exist are where their raw partition's position is kept from now on."""
        probe = AIOKafkaConsumer(
            **self._options, enable_auto_commit=False, isolation_level="read_committed"
        )
        found: dict[TP, int] = {}
        try:
            await start_client(probe)
            if self._settings.topic_state not in await probe.topics():
                return {}
            # The gateway checks at start that state has raw's partitions (check_partitions).
            self._kept.update(wanted)
            owner = {TopicPartition(*s): tp for tp, s in wanted.items()}
            probe.assign(list(owner))
            begin = await probe.beginning_offsets(list(owner))
            end = await probe.end_offsets(list(owner))  # read_committed: the stable end
            todo = {s for s in owner if end[s] > begin[s]}
            window = FIRST_WINDOW
            while todo:
                for s in todo:
                    probe.seek(s, scan_start(begin[s], end[s], window))
                for s, position in (await _read_to_end(probe, todo, end)).items():
                    if position is not None:
                        found[owner[s]] = position
                todo = {
                    s
                    for s in todo
                    if owner[s] not in found and not searched_all(begin[s], end[s], window)
                }
                window *= WINDOW_GROWTH
        except KafkaError as exc:
            raise LogUnavailable(f"kafka positions in {sorted(wanted.values())}: {exc}") from exc
        finally:
            await probe.stop()
        return found

    async def share_positions(self, tps: set[TP] | None = None) -> None:
        """Commit the positions the group's offsets do not show yet (of `tps`, or all) as
        plain offset commits, outside any transaction: what lag tools read. A failure is
        logged; the changelog holds the positions that count."""
        owned = self.assignment()
        offsets = {
            tp: position
            for tp, position in self._unshared.items()
            if tp in owned and (tps is None or tp in tps)
        }
        if not offsets:
            return
        for tp in offsets:
            del self._unshared[tp]
        try:
            await self._consumer.commit({TopicPartition(*tp): p for tp, p in offsets.items()})
        except KafkaError as exc:
            logger.info("group offsets not committed now", error=repr(exc), partitions=offsets)
            for tp, position in offsets.items():
                self._unshared.setdefault(tp, position)

    async def _share_now_and_then(self) -> None:
        while True:
            await asyncio.sleep(_GROUP_OFFSETS_EVERY_S)
            try:
                await self.share_positions()
            except Exception as exc:  # a surprise must not end the sharing for good
                logger.warning("group offsets not committed", error=repr(exc))

    async def release(self, tps: set[TP]) -> None:
        """Flush and close the producers of `tps`; a failure to close is logged, not raised."""
        for tp in tps:
            self._positions.pop(tp, None)
            self._unshared.pop(tp, None)
            self._kept.pop(tp, None)
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
            self._sharing = asyncio.create_task(self._share_now_and_then(), name="group-offsets")
        except KafkaError as exc:
            await self.stop()
            raise LogUnavailable(f"cannot start the Kafka consumer: {exc}") from exc

    async def stop(self) -> None:
        """Leave the group and close every producer, also in the middle of a rebalance:
        a takeover in progress ends after its current step, and whatever the rebalance
        opened before aiokafka let go of it is closed afterwards.
        Cancelling `stop()` does not cut the aiokafka consumer's close short; the log
        waits for it when it closes."""
        self._stopping = True
        if self._sharing is not None:
            self._sharing.cancel()  # not awaited: nothing may come before the try below
        try:
            try:
                await self.settle_takeover()
            finally:
                # Also when cut short: aiokafka must not close its client under a takeover
                # still using it (a connection it is opening would be left open).
                await self.settle_takeover()
                if self._closing is None:
                    self._closing = asyncio.create_task(
                        self._close_consumer(), name="consumer-close"
                    )
                    self._closing.add_done_callback(lambda _: self._forget())
            await asyncio.shield(self._closing)  # waits for a rebalance listener in progress
        finally:
            await self.release(set(self._producers))
            # Starts cut short above, and closes cut short by a cancelled stop(), get
            # another go (a producer's stop() is idempotent).
            await self._close_all([(tp, self._opening.pop(tp)) for tp in list(self._opening)])
            for tp, producer in list(self._closing_producers.values()):
                await self._close(tp, producer)
            if self._takeover is not None and not self._takeover.done():
                # A stop() cut short left the takeover running: let its step end.
                await _abandoned(self._takeover, self._abandon)
                await self._close_all([(tp, self._opening.pop(tp)) for tp in list(self._opening)])
                await self.release(set(self._producers))
            self._forget()

    async def _close_consumer(self) -> None:
        try:
            await self._consumer.stop()
        except Exception as exc:  # the producers are closed all the same
            logger.warning(
                "kafka consumer stopped with an error", group=self._group, error=repr(exc)
            )

    def _forget(self) -> None:
        """Off the log's books once nothing it opened is open any more (a takeover still
        running holds clients of its own)."""
        idle = not (self._producers or self._opening or self._closing_producers)
        idle = idle and (self._takeover is None or self._takeover.done())
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
        state = self._kept.get(tp)
        if position is not None and state is not None:
            mark = Record(state[0], encode_position(position), POSITION_KEY, partition=state[1])
            outputs = [*outputs, mark]
        try:
            async with producer.transaction():
                futures = await send_batches(producer, outputs)
                if position is not None and state is None:
                    await producer.send_offsets_to_transaction(
                        {TopicPartition(*tp): position}, self._group
                    )
            await asyncio.gather(*futures)
        except KafkaError as exc:
            raise LogUnavailable(f"kafka transaction on {tp}: {exc}") from exc
        if position is not None:
            self._positions[tp] = position
            if state is not None:
                self._unshared[tp] = position

    async def _committed(self, tp: Any) -> int | None:
        """The last committed position of an owned partition."""
        known = self._positions.get((tp.topic, tp.partition))
        return known if known is not None else await self._consumer.committed(tp)

    async def rewind(self) -> None:
        try:
            for tp in self._consumer.assignment():
                committed = await self._committed(tp)
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
                committed = await self._committed(tp) or 0
                result[(tp.topic, tp.partition)] = max(0, end[tp] - committed)
        except KafkaError as exc:
            raise LogUnavailable(f"kafka lag: {exc}") from exc
        return result


async def _read_to_end(
    probe: Any, partitions: set[Any], end: Mapping[Any, int]
) -> dict[Any, int | None]:
    """Read `partitions` from where `probe` stands to `end`; the last position record
    seen in each (None if none)."""
    found: dict[Any, int | None] = dict.fromkeys(partitions)
    deadline = asyncio.get_running_loop().time() + _RESTORE_TIMEOUT_S
    left = set(partitions)
    while left:
        if asyncio.get_running_loop().time() > deadline:
            raise LogUnavailable(f"reading positions back from {sorted(left)} timed out")
        batch = await probe.getmany(*left, timeout_ms=200)
        for s, messages in batch.items():
            position = last_position((m.key, m.value or b"") for m in messages)
            if position is not None:
                found[s] = position
        left = {s for s in left if await probe.position(s) < end[s]}
    return found


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
