"""Typed events -> the Kafka records that carry them (topic, key, CloudEvents headers)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from gateway.ingest.record import Kind
from gateway.log.base import Record
from gateway.process import mapping
from gateway.process.cloudevents import event_id, to_record
from gateway.process.mapping import LevelSource
from gateway.process.state import StateView
from gateway.settings import Settings
from schemas.events import INVENTORY_LEVEL, EventModel, StockLevel


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One event and where it goes: its kind's topic, keyed by its entity."""

    event: EventModel
    event_type: str
    event_id: str
    kind: Kind
    key: str
    time: datetime
    reconciled: bool = False
    level: tuple[int | None, ...] | None = None
    """For a stock level OC's snapshot reported: what it says, to publish it only when
    it differs from the last one published for its key."""


def level_events(
    levels: Iterable[StockLevel], identity: str, observed: datetime, source: LevelSource
) -> list[Outgoing]:
    """Inventory-level events (compacted topic, latest wins) for stock OC reported, with
    ids derived from the record that brought them."""
    events = []
    for level in levels:
        key = mapping.level_key(level)
        ce_id = event_id(INVENTORY_LEVEL, f"{identity}|{key}")
        event = mapping.inventory_level(ce_id, observed, source, level)
        said = None if source == "inventory_callback" else mapping.level_content(level)
        events.append(
            Outgoing(event, INVENTORY_LEVEL, ce_id, "inventory", key, observed, level=said)
        )
    return events


def fresh_levels(
    produced: Sequence[Outgoing], view: StateView, levels: dict[str, tuple[int | None, ...]]
) -> list[Outgoing]:
    """`produced` without the stock levels that say what the last one published for
    their key said (in `view`, or earlier in this record: `levels`, which gains the rest)."""
    kept = []
    for out in produced:
        if out.level is not None:
            earlier = levels.get(out.key)
            if earlier == out.level or (
                earlier is None and not view.level_is_news(out.key, out.level)
            ):
                continue
            levels[out.key] = out.level
        kept.append(out)
    return kept


class Publisher:
    def __init__(self, settings: Settings) -> None:
        self._topics: dict[Kind, str] = {
            "outbound": settings.topic_outbound,
            "return": settings.topic_returns,
            "inventory": settings.topic_inventory,
        }

    def topic_for(self, kind: Kind) -> str:
        return self._topics[kind]

    def record(self, out: Outgoing) -> Record:
        """The event on its kind's topic, keyed and CloudEvents-headed by its entity. A
        change found by reconciliation carries the `reconciled` extension attribute."""
        return to_record(
            out.event,
            event_type=out.event_type,
            ce_id=out.event_id,
            topic=self._topics[out.kind],
            key=out.key,
            source=f"/oc-gateway/{out.kind}",
            subject=out.key,
            time=out.time,
            extensions={"reconciled": "true"} if out.reconciled else None,
        )
