"""Per-entity processing state and where it lives.

The processor remembers, per entity (order, return, SKU place), what it last published:
the status and OC event time (to flag regressions), recent delivery ids and change
fingerprints (to drop duplicates), and follow-up enrichments it still owes. The state is
written to a compacted changelog topic in the same transaction as the events it
describes, on the partition of the raw record it came from; whoever owns raw partition p
rebuilds its state from changelog partition p. So state and events can never disagree.

States are immutable values: the decision core (decide.py) returns a new one instead of
changing the old, so a batch that fails leaves nothing half-changed behind.
"""

from __future__ import annotations

import json
import logging
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, fields
from typing import Any, Final, TypeGuard, get_args

from gateway.ingest.record import Kind
from gateway.log.base import POSITION_KEY, Log, Record, TopicPartition
from schemas.events import EnrichmentPart, OrderStatus, ReturnStatus

logger = logging.getLogger(__name__)

RECENT: Final = 16
"""Delivery ids and change fingerprints remembered per entity."""

Status = OrderStatus | ReturnStatus
_STATUSES: Final[frozenset[str]] = frozenset(get_args(OrderStatus) + get_args(ReturnStatus))
Packed = tuple[Any, ...]
"""An `EntityState` or `FollowUp` as a tuple of its fields, in order."""
_KINDS: Final[frozenset[str]] = frozenset(get_args(Kind))
_PARTS: Final[frozenset[str]] = frozenset(get_args(EnrichmentPart))


def is_status(value: object) -> TypeGuard[Status]:
    return isinstance(value, str) and value in _STATUSES


def is_kind(value: object) -> TypeGuard[Kind]:
    return isinstance(value, str) and value in _KINDS


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


def as_status(value: object) -> Status | None:
    """A status read back from the changelog, or None if this version does not know it."""
    return value if is_status(value) else None


@dataclass(frozen=True, slots=True, order=True)
class StateKey:
    """Which entity a state belongs to: its kind and its key (order number, return
    number, `mfSkuId:place`). Written to the changelog as `kind:key`."""

    kind: Kind
    entity: str

    def __str__(self) -> str:
        return f"{self.kind}:{self.entity}"

    def encode(self) -> bytes:
        return str(self).encode()

    @classmethod
    def parse(cls, text: str) -> StateKey:
        """The key of a changelog record; ValueError if it is not `kind:key`."""
        kind, sep, entity = text.partition(":")
        if not sep or not entity or not is_kind(kind):
            raise ValueError(f"not a state key: {text!r}")
        return cls(kind, entity)


@dataclass(frozen=True, slots=True)
class FollowUp:
    """An enrichment owed for an event that was published without all of it."""

    event_id: str
    event_type: str
    missing: tuple[EnrichmentPart, ...]
    delivery_id: str
    identity: str
    occurred_at_ms: int
    received_at_ms: int
    first_ms: int
    next_ms: int
    attempts: int = 0
    skus: tuple[str, ...] = ()
    region: str | None = None

    def encode(self) -> dict[str, Any]:
        return {
            "event_id": self.event_id,
            "event_type": self.event_type,
            "missing": list(self.missing),
            "delivery_id": self.delivery_id,
            "identity": self.identity,
            "occurred_at_ms": self.occurred_at_ms,
            "received_at_ms": self.received_at_ms,
            "first_ms": self.first_ms,
            "next_ms": self.next_ms,
            "attempts": self.attempts,
            "skus": list(self.skus),
            "region": self.region,
        }

    def pack(self) -> Packed:
        return (
            self.event_id,
            self.event_type,
            self.missing,
            self.delivery_id,
            self.identity,
            self.occurred_at_ms,
            self.received_at_ms,
            self.first_ms,
            self.next_ms,
            self.attempts,
            self.skus,
            self.region,
        )

    @classmethod
    def decode(cls, data: Mapping[str, Any]) -> FollowUp:
        """Tolerant of fields added or removed since the record was written (older
        versions kept the SKUs and region in a `detail` object)."""
        known = {k: v for k, v in data.items() if k in _FOLLOW_UP_FIELDS}
        detail = data.get("detail") or {}
        skus = known.pop("skus", None) or detail.get("skus") or ()
        region = known.pop("region", None) or detail.get("region")
        missing = tuple(p for p in known.pop("missing", ()) if p in _PARTS)
        return cls(**known, missing=missing, skus=tuple(skus), region=region)


@dataclass(frozen=True, slots=True)
class EntityState:
    status: Status | None = None
    occurred_at_ms: int | None = None
    deliveries: tuple[str, ...] = ()
    fingerprints: tuple[str, ...] = ()
    followups: tuple[FollowUp, ...] = ()
    updated_ms: int = 0
    reconciled_status: Status | None = None
    """Published by reconciliation, no callback for it yet."""
    oc_status: str | None = None
    """OC's own value of `status` (several of OC's values share one of ours)."""
    reconciled_oc_status: str | None = None
    """OC's own value of `reconciled_status`."""

    def saw(self, delivery: str, fingerprint: str) -> str | None:
        """Why an item is a duplicate of one already handled, or None."""
        if delivery in self.deliveries:
            return "same delivery"
        if fingerprint in self.fingerprints:
            return "same change"
        return None

    def pack(self) -> Packed:
        """The state as a tuple of plain values, the form the store holds it in."""
        return (
            self.status,
            self.occurred_at_ms,
            self.deliveries,
            self.fingerprints,
            tuple(f.pack() for f in self.followups) if self.followups else (),
            self.updated_ms,
            self.reconciled_status,
            self.oc_status,
            self.reconciled_oc_status,
        )

    @classmethod
    def unpack(cls, packed: Packed) -> EntityState:
        status, occurred, deliveries, fingerprints, followups, *rest = packed
        if followups:
            followups = tuple(FollowUp(*f) for f in followups)
        return cls(status, occurred, deliveries, fingerprints, followups, *rest)

    def encode(self) -> bytes:
        data = {
            "status": self.status,
            "occurred_at_ms": self.occurred_at_ms,
            "deliveries": self.deliveries,
            "fingerprints": self.fingerprints,
            "followups": [f.encode() for f in self.followups],
            "updated_ms": self.updated_ms,
            "reconciled_status": self.reconciled_status,
            "oc_status": self.oc_status,
            "reconciled_oc_status": self.reconciled_oc_status,
        }
        return json.dumps(data, separators=(",", ":")).encode()

    @classmethod
    def decode(cls, raw: bytes) -> EntityState:
        """Tolerant of fields added or removed since the record was written."""
        data = json.loads(raw)
        return cls(
            status=as_status(data.get("status")),
            occurred_at_ms=data.get("occurred_at_ms"),
            deliveries=tuple(data.get("deliveries") or ()),
            fingerprints=tuple(data.get("fingerprints") or ()),
            followups=tuple(FollowUp.decode(f) for f in data.get("followups") or ()),
            updated_ms=int(data.get("updated_ms") or 0),
            reconciled_status=as_status(data.get("reconciled_status")),
            oc_status=_text(data.get("oc_status")),
            reconciled_oc_status=_text(data.get("reconciled_oc_status")),
        )


_FOLLOW_UP_FIELDS = frozenset(f.name for f in fields(FollowUp))
EMPTY: Final = EntityState()
_FOLLOWUPS: Final = 4
"""Where `EntityState.pack` puts the follow-ups."""


LEVELS_REMEMBERED: Final = 100_000


class LevelMemory:
    """The stock levels this process last published from OC's snapshots, per
    `mfSkuId:place`, so a level that says what the last one said is not published again
    (OC's snapshot is cached for seconds and shared by every order of a SKU). Kept in
    memory only, bounded: forgetting one costs one repeated level on a latest-wins topic."""

    def __init__(self, size: int = LEVELS_REMEMBERED) -> None:
        self._size = size
        self._levels: OrderedDict[str, tuple[int | None, ...]] = OrderedDict()

    def get(self, key: str) -> tuple[int | None, ...] | None:
        return self._levels.get(key)

    def put(self, key: str, content: tuple[int | None, ...]) -> None:
        self._levels[key] = content
        self._levels.move_to_end(key)
        while len(self._levels) > self._size:
            self._levels.popitem(last=False)

    def clear(self) -> None:
        self._levels.clear()


class StateStore:
    """The state of the entities in the partitions this process owns.

    It holds every entity seen within the state retention, hundreds of thousands of
    them, so it holds each as plain tuples (`EntityState.pack`, keyed by kind and key)
    rather than as objects: CPython stops tracking a tuple of strings and numbers, and a
    full garbage collection, during which nothing else runs, then does not walk them
    (83 against 3 ms with 200,000 entities, bench/README.md). Records are
    (partition, StateKey) outside, as everywhere else."""

    def __init__(self, log: Log, topic: str) -> None:
        self._log = log
        self._topic = topic
        self._partitions: dict[int, dict[tuple[Kind, str], Packed]] = {}
        self._pending: set[tuple[int, StateKey]] = set()  # entities that owe a follow-up
        self.levels = LevelMemory()

    @property
    def topic(self) -> str:
        return self._topic

    async def load(self, partitions: set[TopicPartition]) -> None:
        """Rebuild the state of newly owned raw partitions from the changelog. Levels
        published are forgotten: what was remembered may not have been committed."""
        self.levels.clear()
        for _, partition in sorted(partitions):
            entities: dict[tuple[Kind, str], Packed] = {}
            async for record in self._log.read(self._topic, partitions=[partition]):
                if record.key == POSITION_KEY:  # the log's, not an entity's
                    continue
                try:
                    key = StateKey.parse((record.key or b"").decode())
                except ValueError:
                    logger.warning("state record with an unknown key skipped: %r", record.key)
                    continue
                if record.value:
                    entities[key.kind, key.entity] = EntityState.decode(record.value).pack()
                else:
                    entities.pop((key.kind, key.entity), None)
            self._partitions[partition] = entities
            self._pending.update(
                (partition, StateKey(kind, entity))
                for (kind, entity), packed in entities.items()
                if packed[_FOLLOWUPS]
            )

    def drop(self, partitions: set[TopicPartition]) -> None:
        for _, partition in partitions:
            self._partitions.pop(partition, None)
        self._pending = {(p, k) for p, k in self._pending if p in self._partitions}

    def get(self, partition: int, key: StateKey) -> EntityState:
        packed = self._partitions.get(partition, {}).get((key.kind, key.entity))
        return EMPTY if packed is None else EntityState.unpack(packed)

    def put(self, partition: int, key: StateKey, state: EntityState) -> None:
        self._partitions.setdefault(partition, {})[key.kind, key.entity] = state.pack()
        if state.followups:
            self._pending.add((partition, key))
        else:
            self._pending.discard((partition, key))

    def pending(self) -> list[tuple[int, StateKey]]:
        """Entities that still owe a follow-up enrichment."""
        return sorted(self._pending)

    def forget(self, forgettable: Iterator[tuple[int, StateKey]]) -> dict[int, list[Record]]:
        """Forget entities; returns the changelog records (empty values) that make the
        forgetting durable, by partition."""
        gone: dict[int, list[Record]] = {}
        for partition, key in list(forgettable):
            if self._partitions.get(partition, {}).pop((key.kind, key.entity), None) is not None:
                self._pending.discard((partition, key))
                gone.setdefault(partition, []).append(
                    Record(self._topic, b"", key.encode(), partition=partition)
                )
        return gone

    def owned(self) -> Iterator[tuple[int, StateKey, EntityState]]:
        for partition, entities in list(self._partitions.items()):
            for (kind, entity), packed in list(entities.items()):
                yield partition, StateKey(kind, entity), EntityState.unpack(packed)

    def changelog(self, partition: int, key: StateKey, state: EntityState) -> Record:
        return Record(self._topic, state.encode(), key.encode(), partition=partition)


class StateView:
    """The changes a batch makes to the store, kept apart until `apply`.

    The processor applies a batch's changes once its outputs are built and handed to the
    commit, before the commit has finished, so the next batch (processed while this one
    commits) builds on them. If that commit fails, the processor rebuilds its consumer,
    which reloads the store from the changelog: what did not commit does not survive.
    A batch that is abandoned (a rebalance) is simply never applied.
    """

    def __init__(self, store: StateStore) -> None:
        self._store = store
        self._changed: dict[tuple[int, StateKey], EntityState] = {}
        self._levels: dict[str, tuple[int | None, ...]] = {}

    def pending(self) -> list[tuple[int, StateKey]]:
        return self._store.pending()

    def get(self, partition: int, key: StateKey) -> EntityState:
        changed = self._changed.get((partition, key))
        return changed if changed is not None else self._store.get(partition, key)

    def put(self, partition: int, key: StateKey, state: EntityState) -> None:
        self._changed[(partition, key)] = state

    def level_is_news(self, key: str, content: tuple[int | None, ...]) -> bool:
        """Whether a stock level differs from the last one published for `key`."""
        last = self._levels.get(key)
        if last is None:
            last = self._store.levels.get(key)
        return last != content

    def levels_published(self, levels: Iterable[tuple[str, tuple[int | None, ...]]]) -> None:
        for key, content in levels:
            self._levels[key] = content

    def changelog(self) -> dict[int, list[Record]]:
        """The changed entities' state records, by raw partition."""
        records: dict[int, list[Record]] = {}
        for (partition, key), state in self._changed.items():
            records.setdefault(partition, []).append(self._store.changelog(partition, key, state))
        return records

    def apply(self) -> None:
        for (partition, key), state in self._changed.items():
            self._store.put(partition, key, state)
        for level_key, content in self._levels.items():
            self._store.levels.put(level_key, content)
        self._changed.clear()
        self._levels.clear()
