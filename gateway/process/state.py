"""Per-entity processing state and where it lives.

The processor remembers, per entity (order, return, SKU place), what it last published:
the status and OC event time (to flag regressions), recent delivery ids and change
fingerprints (to drop duplicates), and follow-up enrichments it still owes. The state is
written to a compacted changelog topic in the same transaction as the events it
describes, on the partition of the raw record it came from; whoever owns raw partition p
rebuilds its state from changelog partition p. So state and events can never disagree.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator, MutableMapping
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from gateway.log.base import Log, Record, TopicPartition

_RECENT = 16  # delivery ids / fingerprints remembered per entity


@dataclass
class FollowUp:
    """An enrichment owed for an event that was published without all of it."""

    event_id: str
    event_type: str
    missing: list[str]
    delivery_id: str
    identity: str
    occurred_at_ms: int
    received_at_ms: int
    first_ms: int
    next_ms: int
    attempts: int = 0
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass
class EntityState:
    status: str | None = None
    occurred_at_ms: int | None = None
    deliveries: list[str] = field(default_factory=list)
    fingerprints: list[str] = field(default_factory=list)
    followups: list[FollowUp] = field(default_factory=list)
    updated_ms: int = 0
    reconciled_status: str | None = None  # published by reconciliation, no callback yet

    def saw_delivery(self, delivery: str) -> bool:
        return delivery in self.deliveries

    def saw_fingerprint(self, fingerprint: str) -> bool:
        return fingerprint in self.fingerprints

    def remember(self, delivery: str, fingerprint: str | None) -> None:
        self.deliveries = [*self.deliveries, delivery][-_RECENT:]
        if fingerprint is not None:
            self.fingerprints = [*self.fingerprints, fingerprint][-_RECENT:]

    def encode(self) -> bytes:
        data = {
            "status": self.status,
            "occurred_at_ms": self.occurred_at_ms,
            "deliveries": self.deliveries,
            "fingerprints": self.fingerprints,
            "followups": [asdict(f) for f in self.followups],
            "updated_ms": self.updated_ms,
            "reconciled_status": self.reconciled_status,
        }
        return json.dumps(data, separators=(",", ":")).encode()

    @classmethod
    def decode(cls, raw: bytes) -> EntityState:
        """Tolerant of fields added or removed since the record was written."""
        data = json.loads(raw)
        followups = [
            FollowUp(**{k: v for k, v in f.items() if k in _FOLLOW_UP_FIELDS})
            for f in data.pop("followups", [])
        ]
        known = {k: v for k, v in data.items() if k in _STATE_FIELDS}
        return cls(**known, followups=followups)

    def copy(self) -> EntityState:
        """A copy that shares nothing mutable with this one."""
        return replace(
            self,
            deliveries=list(self.deliveries),
            fingerprints=list(self.fingerprints),
            followups=[copy.deepcopy(f) for f in self.followups],
        )


_FOLLOW_UP_FIELDS = frozenset(f.name for f in fields(FollowUp))
_STATE_FIELDS = frozenset(f.name for f in fields(EntityState)) - {"followups"}


class StateStore:
    """The state of the entities in the partitions this process owns."""

    def __init__(self, log: Log, topic: str) -> None:
        self._log = log
        self._topic = topic
        self._partitions: dict[int, dict[str, EntityState]] = {}
        self._pending: set[tuple[int, str]] = set()  # entities that owe a follow-up

    @property
    def topic(self) -> str:
        return self._topic

    async def load(self, partitions: set[TopicPartition]) -> None:
        """Rebuild the state of newly owned raw partitions from the changelog."""
        for _, partition in sorted(partitions):
            entities: dict[str, EntityState] = {}
            async for record in self._log.read(self._topic, partitions=[partition]):
                if record.key is None:
                    continue
                if record.value:
                    entities[record.key.decode()] = EntityState.decode(record.value)
                else:
                    entities.pop(record.key.decode(), None)
            self._partitions[partition] = entities
            self._pending.update((partition, k) for k, e in entities.items() if e.followups)

    def drop(self, partitions: set[TopicPartition]) -> None:
        for _, partition in partitions:
            self._partitions.pop(partition, None)
        self._pending = {(p, k) for p, k in self._pending if p in self._partitions}

    def partition(self, partition: int) -> MutableMapping[str, EntityState]:
        return self._partitions.setdefault(partition, {})

    def put(self, partition: int, key: str, state: EntityState) -> None:
        self.partition(partition)[key] = state
        if state.followups:
            self._pending.add((partition, key))
        else:
            self._pending.discard((partition, key))

    def pending(self) -> list[tuple[int, str]]:
        """Entities that still owe a follow-up enrichment."""
        return sorted(self._pending)

    def expired(self, before_ms: int) -> dict[int, list[Record]]:
        """Forget entities unchanged since `before_ms` that owe nothing; returns the
        changelog records (empty values) that make the forgetting durable."""
        gone: dict[int, list[Record]] = {}
        for partition, key, entity in list(self.owned()):
            if entity.updated_ms < before_ms and not entity.followups:
                del self._partitions[partition][key]
                gone.setdefault(partition, []).append(
                    Record(self._topic, b"", key.encode(), partition=partition)
                )
        return gone

    def owned(self) -> Iterator[tuple[int, str, EntityState]]:
        for partition, entities in list(self._partitions.items()):
            for key, entity in list(entities.items()):
                yield partition, key, entity

    def changelog(self, partition: int, key: str, state: EntityState) -> Record:
        return Record(self._topic, state.encode(), key.encode(), partition=partition)


class StateView:
    """Copy-on-write changes to the store made while a batch is processed; applied
    only after the batch's transaction committed, discarded if it did not."""

    def __init__(self, store: StateStore) -> None:
        self._store = store
        self._changed: dict[tuple[int, str], EntityState] = {}

    def pending(self) -> list[tuple[int, str]]:
        return self._store.pending()

    def get(self, partition: int, key: str) -> EntityState:
        changed = self._changed.get((partition, key))
        if changed is not None:
            return changed
        current = self._store.partition(partition).get(key)
        return current.copy() if current is not None else EntityState()

    def put(self, partition: int, key: str, state: EntityState) -> None:
        self._changed[(partition, key)] = state

    def changelog(self) -> dict[int, list[Record]]:
        """The changed entities' state records, by raw partition."""
        records: dict[int, list[Record]] = {}
        for (partition, key), state in self._changed.items():
            records.setdefault(partition, []).append(self._store.changelog(partition, key, state))
        return records

    def apply(self) -> None:
        for (partition, key), state in self._changed.items():
            self._store.put(partition, key, state)
        self._changed.clear()
