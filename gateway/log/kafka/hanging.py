"""How a transaction its coordinator ended without all of its markers was decided.

A single broker killed between two of a transaction's markers may, once restarted, write
the transaction off as complete although some of its partitions never got a marker
(README, known limitations). Those partitions then hold records that are neither
committed nor aborted ("hanging"), and the next marker of the same producer id ends them
either way. Aborting them is right only if the transaction was aborted: when it was
committed, its events are already visible elsewhere and aborting the rest (its state,
its offsets) would publish them again. The decision is still written down: every
partition that did get a marker holds a control record from that producer id and epoch,
COMMIT or ABORT. This module reads the raw record batches (control batches included,
which aiokafka's consumer skips) to find one.

`decide` is the pure part. The reading uses aiokafka's client for Fetch requests at
read_uncommitted, as its own fetcher does.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

from aiokafka import TopicPartition
from aiokafka.protocol.fetch import FetchRequest
from aiokafka.record.memory_records import MemoryRecords

from gateway.log.base import TopicPartition as TP
from gateway.ops.logs import get_logger

logger = get_logger("gateway.log.kafka")

_READ_UNCOMMITTED: Final = 0
_FETCH_BYTES: Final = 1 << 20
_COMMIT: Final = 1  # a control record's type (its key: version int16, type int16)

Outcome = Literal["commit", "abort"]


@dataclass(frozen=True, slots=True)
class OpenTransaction:
    """The first records of a hanging transaction on a partition."""

    producer_id: int
    producer_epoch: int
    timestamp_ms: int


@dataclass(frozen=True, slots=True)
class Marker:
    """A control record: the end of a transaction on one partition."""

    producer_id: int
    producer_epoch: int
    commit: bool


def decide(opened: OpenTransaction, markers: Iterable[Marker]) -> Outcome | None:
    """How the transaction `opened` belongs to was ended, from the markers found on the
    other partitions: by its producer id and epoch; None when no partition has one."""
    for marker in markers:
        if (marker.producer_id, marker.producer_epoch) == (
            opened.producer_id,
            opened.producer_epoch,
        ):
            return "commit" if marker.commit else "abort"
    return None


def _batches(response: Any) -> dict[TP, tuple[int, list[Any]]]:
    """Each partition's error code and record batches from a Fetch response."""
    out: dict[TP, tuple[int, list[Any]]] = {}
    for topic, partitions in response.topics:
        for part in partitions:
            records = MemoryRecords(part[-1])
            batches = []
            while records.has_next():
                batches.append(records.next_batch())
            out[(topic, part[0])] = (part[1], batches)
    return out


async def _fetch(client: Any, tp: TP, offset: int) -> list[Any]:
    """The record batches of `tp` from `offset`, at read_uncommitted (one Fetch)."""
    node = client.cluster.leader_for_partition(TopicPartition(*tp))
    if node is None or node < 0:
        await client.force_metadata_update()
        node = client.cluster.leader_for_partition(TopicPartition(*tp))
    request = FetchRequest(
        0, 1, _FETCH_BYTES, _READ_UNCOMMITTED, [(tp[0], [(tp[1], offset, _FETCH_BYTES)])]
    )
    response = await client.send(node, request)
    error, batches = _batches(response).get(tp, (0, []))
    if error:
        raise FetchRefused(f"fetch of {tp} at {offset} failed with error code {error}")
    return batches


class FetchRefused(RuntimeError):
    """The broker answered a Fetch with an error code (e.g. no Read ACL on the topic)."""


async def open_transaction(client: Any, tp: TP, stable_end: int) -> OpenTransaction | None:
    """The transaction whose records start at `stable_end` (the partition's last stable
    offset), if a transactional batch starts there."""
    for batch in await _fetch(client, tp, stable_end):
        if batch.next_offset <= stable_end:
            continue
        if batch.is_transactional and not batch.is_control_batch:
            return OpenTransaction(batch.producer_id, batch.producer_epoch, batch.first_timestamp)
        return None
    return None


async def markers_since(
    client: Any, starts: Mapping[TP, int], ends: Mapping[TP, int], opened: OpenTransaction
) -> list[Marker]:
    """The control records of `opened`'s producer id on each partition between its start
    and its end offset (written end), up to the first one of `opened`'s epoch."""
    found: list[Marker] = []
    for tp, start in starts.items():
        offset, end = start, ends.get(tp, start)
        while offset < end:
            try:
                batches = await _fetch(client, tp, offset)
            except FetchRefused as exc:  # the other partitions may still say
                logger.warning("a partition could not be searched for markers", error=str(exc))
                break
            if not batches:
                break
            for batch in batches:
                if batch.is_control_batch and batch.producer_id == opened.producer_id:
                    found.append(_marker(batch))
                    if decide(opened, found[-1:]) is not None:
                        return found
            offset = max(offset + 1, batches[-1].next_offset)
    return found


def _marker(batch: Any) -> Marker:
    key = next(iter(batch)).key or b""
    commit = len(key) >= 4 and int.from_bytes(key[2:4], "big") == _COMMIT
    return Marker(batch.producer_id, batch.producer_epoch, commit)
