"""Transactions left hanging on a state partition: found at assignment, ended the way
their coordinator decided, or reported (README, known limitations: a broker that
completes a transaction without all of its markers)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka import TopicPartition as AioTopicPartition
from aiokafka.client import AIOKafkaClient
from aiokafka.protocol.produce import ProduceRequest
from aiokafka.record.default_records import DefaultRecordBatchBuilder

from gateway.errors import LogUnavailable
from gateway.lifespan import all_topics
from gateway.log.base import POSITION_KEY, Record, TopicPartition
from gateway.log.kafka import KafkaLog
from gateway.log.kafka.consumer import hanging
from gateway.log.kafka.hanging import Marker, OpenTransaction, decide
from gateway.settings import Settings
from tests.conftest import SettingsFactory, _running_broker
from tests.helpers import wait_for
from tests.log.test_contract import fetch_until
from tools.kafka_broker import Broker

from .test_rebalance import Recording, join, started_log

S0, S1 = ("state", 0), ("state", 1)
NOT_LEADER = 6  # NOT_LEADER_OR_FOLLOWER, while a new partition's leader settles


@pytest.mark.parametrize(
    ("committed_end", "written_end", "expected"),
    [
        ({S0: 5, S1: 7}, {S0: 5, S1: 7}, []),  # nothing open
        ({S0: 2, S1: 7}, {S0: 11, S1: 7}, [S0]),  # records past the last stable offset
        ({S0: 0}, {S0: 0}, []),  # empty
        ({}, {S0: 4}, []),  # no stable offset known: not judged
    ],
)
def test_a_partition_hangs_when_its_stable_end_is_behind_its_written_end(
    committed_end: dict[TopicPartition, int],
    written_end: dict[TopicPartition, int],
    expected: list[TopicPartition],
) -> None:
    assert hanging(committed_end, written_end) == expected


OPENED = OpenTransaction(producer_id=7, producer_epoch=3, timestamp_ms=1)


@pytest.mark.parametrize(
    ("markers", "expected"),
    [
        ([Marker(7, 3, commit=True)], "commit"),
        ([Marker(7, 3, commit=False)], "abort"),
        ([], None),  # no partition got a marker: nothing says
        ([Marker(7, 2, commit=True)], None),  # an earlier transaction of the producer
        ([Marker(8, 3, commit=True)], None),  # another producer's
        ([Marker(7, 2, commit=False), Marker(7, 3, commit=True)], "commit"),
    ],
)
def test_a_hanging_transaction_ends_as_a_marker_of_its_producer_and_epoch_says(
    markers: list[Marker], expected: str | None
) -> None:
    assert decide(OPENED, markers) == expected


@pytest.fixture
async def settings(make_settings: SettingsFactory, kafka_bootstrap: str) -> Settings:
    settings = make_settings(kafka_bootstrap_servers=kafka_bootstrap, kafka_partitions=3)
    log = KafkaLog(settings, topics=all_topics(settings))  # creates them, 3 partitions each
    await log.start()
    await log.close()
    return settings


@pytest.mark.kafka
async def test_an_open_transaction_on_a_state_partition_stops_the_assignment_until_it_ends(
    settings: Settings,
) -> None:
    # A producer that is not the partition's holds a transaction open on state partition
    # 0: the member's own abort cannot end it, so the assignment fails (the owner then
    # rebuilds the consumer) instead of reading state and offsets that are not settled.
    stranger = await _transactional(
        settings.kafka_bootstrap_servers, f"stranger-{uuid.uuid4().hex[:8]}"
    )
    try:
        await stranger.begin_transaction()
        await (await stranger.send(settings.topic_state, b"v", key=b"k", partition=0))
        async with started_log(settings) as log:
            subject = await join(log, settings)
            await wait_for(lambda: subject.broken is not None, timeout_s=60)
            with pytest.raises(LogUnavailable, match="still hang after ending them"):
                await subject.fetch(10, 0.1)
            await subject.stop()
            # A consumer of another topic (a DLQ redrive) does not judge the state
            # partitions: it takes its partitions while the transaction is still open.
            listener = Recording()
            redrive = log.consumer(
                f"{settings.kafka_consumer_group}-redrive", [settings.topic_dlq], listener
            )
            await redrive.start()
            await wait_for(listener.assigned.is_set, timeout_s=60)  # after the check
            assert redrive.broken is None
            await redrive.stop()
            await stranger.abort_transaction()
            # Once it ended, the next member takes every partition.
            member = await join(log, settings)
            await wait_for(lambda: len(member.assignment()) == 3, timeout_s=60)
            assert member.broken is None
            await member.stop()
            # The first member's aborting transaction took in every partition it may
            # write, without a record: each got its abort marker and nothing visible.
            assert [r async for r in log.read(settings.topic_outbound)] == []
            written = await _written_ends(settings, settings.topic_outbound)
            assert all(end == 1 for end in written)  # the abort marker alone
    finally:
        await stranger.stop()


async def _written_ends(settings: Settings, topic: str) -> list[int]:
    """Each partition's end as a read_uncommitted reader sees it (aborted records too)."""
    reader = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        isolation_level="read_uncommitted",
        enable_auto_commit=False,
    )
    await reader.start()
    try:
        partitions = [AioTopicPartition(topic, p) for p in range(settings.kafka_partitions)]
        reader.assign(partitions)
        return list((await reader.end_offsets(partitions)).values())
    finally:
        await reader.stop()


@pytest.fixture(scope="module")
def lenient_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    """A broker that takes a transaction's records for a partition the transaction never
    added. Records written so are hanging, as are those of a partition whose marker the
    coordinator skipped: nothing will end them but the producer id's next marker. It has
    an authorizer that allows what no ACL names, so a test can deny one topic."""
    yield from _running_broker(
        Path(tmp_path_factory.mktemp("lenient-kafka")),
        "transaction.partition.verification.enable=false\n"
        "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer\n"
        "allow.everyone.if.no.acl.found=true",
    )


@pytest.mark.kafka
@pytest.mark.parametrize(("ended", "kept"), [("commit", True), ("abort", False), (None, False)])
async def test_records_a_skipped_marker_left_hanging_end_as_their_transaction_did(
    make_settings: SettingsFactory, lenient_broker: Broker, ended: str | None, kept: bool
) -> None:
    # The previous owner of raw partition 0 read in-0 and in-1 and ended a transaction
    # that wrote an event and, where the coordinator never writes a marker (as a restarted
    # broker that skipped it would leave it), its new position on state partition 0. The
    # next owner must end that position the way the event went: kept, and reading resumes
    # at in-2, if the event was committed; dropped, and in-0 is read again, if it was
    # aborted or when no marker anywhere says.
    settings = make_settings(kafka_bootstrap_servers=lenient_broker.bootstrap, kafka_partitions=1)
    state = await _left_hanging(settings, lenient_broker, ended)

    async with started_log(settings) as log:
        outcomes: list[str] = []
        log.on_hanging_ended = outcomes.append  # the processor's metric counts these
        listener = Recording()
        member = await join(log, settings, listener)
        try:
            await wait_for(listener.assigned.is_set, timeout_s=60)  # after the state settled
            assert member.broken is None
            assert not await _hanging(settings, state)
            assert outcomes == ["commit" if ended == "commit" else "abort"]
            first = await fetch_until(member, 1)
            assert [r.value for r in first] == [b"in-2" if kept else b"in-0"]
        finally:
            await member.stop()
        positions = [r.value async for r in log.read(settings.topic_state)]
        assert positions == ([b"2"] if kept else [])
        events = [r.value async for r in log.read(settings.topic_outbound)]
        assert events == ([b"event"] if ended == "commit" else [])


@pytest.mark.kafka
async def test_a_marker_on_a_topic_the_gateway_may_not_read_is_passed_over(
    make_settings: SettingsFactory, lenient_broker: Broker
) -> None:
    # Without Read on the typed topics (helm/README.md's ACL examples grant it) the search
    # cannot see the commit marker there: the takeover still ends the hanging position,
    # as an abort (the README's known limits), instead of failing the assignment.
    settings = make_settings(kafka_bootstrap_servers=lenient_broker.bootstrap, kafka_partitions=1)
    state = await _left_hanging(settings, lenient_broker, "commit")
    # As the chart's ACLs would be but for Read: Write (which allows Describe) and no Read.
    topic = ("--topic", settings.topic_outbound)
    allow = ("--allow-principal", "User:*", "--operation", "Write", *topic)
    deny = ("--deny-principal", "User:*", "--operation", "Read", *topic)
    await asyncio.to_thread(lenient_broker.acls, "--add", *allow)
    await asyncio.to_thread(lenient_broker.acls, "--add", *deny)
    try:
        async with started_log(settings) as log:
            outcomes: list[str] = []
            log.on_hanging_ended = outcomes.append
            listener = Recording()
            member = await join(log, settings, listener)
            try:
                await wait_for(listener.assigned.is_set, timeout_s=60)
                assert member.broken is None
                assert not await _hanging(settings, state)
                assert outcomes == ["abort"]
                assert [r.value for r in await fetch_until(member, 1)] == [b"in-0"]
                # The topic was searched and refused, not left out: the ending took its
                # partition in (event, commit marker, then the ending's abort marker).
                assert await _written_ends(settings, settings.topic_outbound) == [3]
            finally:
                await member.stop()
    finally:
        await asyncio.to_thread(lenient_broker.acls, "--remove", "--force", *deny)
        await asyncio.to_thread(lenient_broker.acls, "--remove", "--force", *allow)


async def _left_hanging(settings: Settings, broker: Broker, ended: str | None) -> TopicPartition:
    """Raw partition 0 holds in-0..in-2. Its previous owner read in-0 and in-1 and ended
    (`ended`: "commit", "abort", or None for a transaction that wrote no event) a
    transaction that wrote an event on outbound partition 0 and, where no marker ends it,
    its new position on state partition 0, which is returned."""
    raw, state = settings.topic_raw, (settings.topic_state, 0)
    log = KafkaLog(settings, topics=all_topics(settings))
    await log.start()
    await log.append([Record(raw, f"in-{i}".encode(), b"k", partition=0) for i in range(3)])
    await log.close()
    prefix, group = settings.kafka_transactional_id_prefix, settings.kafka_consumer_group
    previous = await _transactional(broker.bootstrap, f"{prefix}-{group}-{raw}-0")
    try:
        await previous.begin_transaction()
        if ended is not None:
            await (await previous.send(settings.topic_outbound, b"event", partition=0))
        await _write_unmarked(broker.bootstrap, previous, state, POSITION_KEY, b"2")
        if ended == "abort":
            await previous.abort_transaction()
        else:
            await previous.commit_transaction()
    finally:
        await previous.stop()
    assert await _hanging(settings, state)
    return state


async def _transactional(bootstrap: str, transactional_id: str) -> AIOKafkaProducer:
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, transactional_id=transactional_id, enable_idempotence=True
    )
    await producer.start()
    return producer


async def _write_unmarked(
    bootstrap: str, producer: AIOKafkaProducer, tp: tuple[str, int], key: bytes, value: bytes
) -> None:
    """One record in `producer`'s open transaction, on a partition not added to it."""
    manager = producer._txn_manager
    batch = DefaultRecordBatchBuilder(
        magic=2,
        compression_type=0,
        is_transactional=1,
        producer_id=manager.producer_id,
        producer_epoch=manager.producer_epoch,
        base_sequence=0,
        batch_size=16384,
    )
    batch.append(0, int(time.time() * 1000), key, value, [])
    client = AIOKafkaClient(bootstrap_servers=bootstrap)
    await client.bootstrap()
    try:
        client.add_topic(tp[0])
        request = ProduceRequest(
            manager.transactional_id, -1, 30_000, [(tp[0], [(tp[1], bytes(batch.build()))])]
        )

        async def written() -> bool:
            await client.force_metadata_update()  # a new topic's leader may not be known yet
            leader = client.cluster.leader_for_partition(AioTopicPartition(*tp))
            if leader is None or leader < 0:
                return False
            error = (await client.send(leader, request)).topics[0][1][0][1]
            assert error in (0, NOT_LEADER), error
            return bool(error == 0)

        await wait_for(written, timeout_s=30)
    finally:
        await client.close()


async def _hanging(settings: Settings, tp: tuple[str, int]) -> bool:
    """Records past the partition's last stable offset."""
    partition = AioTopicPartition(*tp)
    ends = []
    for isolation in ("read_committed", "read_uncommitted"):
        reader = AIOKafkaConsumer(
            bootstrap_servers=settings.kafka_bootstrap_servers, isolation_level=isolation
        )
        await reader.start()
        try:
            ends.append((await reader.end_offsets([partition]))[partition])
        finally:
            await reader.stop()
    return bool(ends[0] < ends[1])
