"""What the processor decided for each raw record of an entity, worked out again (pure).

The processor's decisions are pure functions of the raw records of an entity, read in
order (gateway/process/decide.py), so a trace replays them through the same code: the
record's headers (raw.py), its items (kinds.py), then `decide` and `remember` for each
item against the entity's state so far. A record that does not parse is what the
processor dead-letters. The events a published change makes, and their deterministic
ids, come from the kind itself (`EntityKind.events`, without enrichment: enrichment adds
stock levels under other keys, never another status event).

This matches the processor when the trace starts from the entity's first record. With
`--since`, or once retention removed older records, the state before the window is not
known: the trace starts from an empty state and says so.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from gateway.errors import ProcessingError
from gateway.ingest.record import Kind
from gateway.log.base import LogRecord
from gateway.process.decide import Decision, decide, remember
from gateway.process.kinds import KINDS, Context, EntityKind
from gateway.process.raw import record_context
from gateway.process.state import EMPTY, EntityState, StateKey, Status


@dataclass(frozen=True, slots=True)
class Expected:
    """An event a published change makes: its type, id and the key it is published under."""

    event_type: str
    event_id: str
    kind: Kind
    key: str


@dataclass(frozen=True, slots=True)
class ItemDecision:
    """One item of a raw record and what the processor decided for it."""

    index: int
    identity: str
    status: Status | None
    oc_status: str | None
    occurred_at: datetime
    reconciled: bool
    decision: Decision
    events: tuple[Expected, ...] = ()


@dataclass(frozen=True, slots=True)
class RecordDecision:
    """One raw record: its context and its items' decisions, or why it cannot be
    processed (the processor dead-letters it)."""

    record: LogRecord
    kind: Kind | None
    delivery_id: str | None
    received_at: datetime | None
    reconciled: bool
    items: tuple[ItemDecision, ...] = ()
    error: str | None = None


@dataclass
class Recomputed:
    records: list[RecordDecision] = field(default_factory=list)
    states: dict[StateKey, EntityState] = field(default_factory=dict)


def _no_consignee(consignee: Any) -> None:
    return None


def _header_context(record: LogRecord) -> tuple[Kind, str, datetime, bool] | str:
    try:
        return record_context(record)
    except ProcessingError as exc:
        return str(exc)


def recompute(
    records: Sequence[LogRecord],
    failed: Collection[tuple[int, int]] = (),
    kinds: Mapping[Kind, EntityKind[Any]] = KINDS,
) -> Recomputed:
    """Every record's decisions, in the order given (a partition's offset order).
    `failed` are the (partition, offset) of records the DLQ says failed: the processor
    kept no state from them (a re-drive of one is news again)."""
    out = Recomputed()
    for record in records:
        context = _header_context(record)
        if isinstance(context, str):
            out.records.append(RecordDecision(record, None, None, None, False, error=context))
            continue
        kind_name, delivery_id, received_at, reconciled = context
        key = (record.key or b"").decode("utf-8", "replace")
        ctx = Context(kind_name, key, record.partition, delivery_id, received_at, reconciled)
        kind = kinds[kind_name]
        state_key = StateKey(kind_name, key)
        state = out.states.get(state_key, EMPTY)
        try:
            items = kind.items(ctx, record.value)
            decided: list[ItemDecision] = []
            for item in items:
                seen = item.observation
                decision = decide(state, seen, kind.ranks)
                state = remember(state, seen, decision, record.timestamp_ms)
                events: tuple[Expected, ...] = ()
                if decision.publish:
                    events = tuple(
                        Expected(o.event_type, o.event_id, o.kind, o.key)
                        for o in kind.events(item, decision, None, _no_consignee)
                    )
                decided.append(
                    ItemDecision(
                        len(decided),
                        seen.identity,
                        seen.status,
                        seen.oc_status,
                        item.occurred_at,
                        seen.reconciled,
                        decision,
                        events,
                    )
                )
        except Exception as exc:
            # As in the processor: a ProcessingError is dead-lettered at once, anything
            # else is retried and then dead-lettered; either way the state is unchanged.
            error = str(exc) if isinstance(exc, ProcessingError) else f"{type(exc).__name__}: {exc}"
            out.records.append(
                RecordDecision(record, kind_name, delivery_id, received_at, reconciled, error=error)
            )
            continue
        if (record.partition, record.offset) not in failed:
            out.states[state_key] = state
        out.records.append(
            RecordDecision(
                record, kind_name, delivery_id, received_at, reconciled, items=tuple(decided)
            )
        )
    return out
