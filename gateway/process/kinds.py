"""The entity kinds, in one table: what the processor knows of each kind of callback.

Per kind: how its callbacks parse, how an item becomes an `Observation` for the decision
core (status, fingerprint, event time), how its statuses rank, what to enrich (the
entity look-up and the stock look-up) and where its stock levels come from, and how its
events are built (mapping.py) from a change and its enrichment. Outbound orders and
returns share one shape, a status that changes (`StatusKind`); inventory levels are
levels (`InventoryKind`). The handler and the follow-ups never ask which kind they hold.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Generic, TypeVar

from pydantic import TypeAdapter, ValidationError

from gateway.errors import ProcessingError
from gateway.ingest.record import Kind
from gateway.process import mapping
from gateway.process.cloudevents import event_id
from gateway.process.decide import Decision, Observation
from gateway.process.enrich import Enriched, Need
from gateway.process.mapping import Change, Completion, LevelSource
from gateway.process.publish import Outgoing, level_events
from gateway.process.state import FollowUp, Status
from schemas.callbacks import (
    INVENTORY_CALLBACK,
    OUTBOUND_CALLBACK,
    RETURN_CALLBACK,
    CallbackEnvelope,
    InventoryCallbackItem,
    OcOutboundOrder,
    ReturnCallbackItem,
)
from schemas.events import (
    INVENTORY_LEVEL,
    OUTBOUND_ENRICHED,
    OUTBOUND_STATUS_CHANGED,
    RETURN_ENRICHED,
    RETURN_UPDATED,
    Consignee,
    EnrichmentPart,
    EventModel,
)

P = TypeVar("P")
Pii = Callable[[Consignee], Consignee | None]
"""Applies the topic's personal-data policy to a consignee (None: the topic carries none)."""


@dataclass(frozen=True, slots=True)
class Context:
    """What every item of one raw record shares."""

    kind: Kind
    key: str
    partition: int
    delivery_id: str
    received_at: datetime
    reconciled: bool

    def identity(self, index: int) -> str:
        return f"{self.delivery_id}#{self.key}#{index}"


@dataclass(frozen=True, slots=True)
class Item(Generic[P]):
    """One callback item about the record's entity, seen through its kind."""

    ctx: Context
    payload: P
    occurred_at: datetime
    observation: Observation
    need: Need | None = None
    """What to enrich it with, if its kind enriches."""


class EntityKind(Generic[P]):
    """One row of the table."""

    name: Kind
    ranks: Mapping[str, int]
    change_event: str
    enriched_event: str | None = None
    level_source: LevelSource
    adapter: TypeAdapter[Any]

    def items(self, ctx: Context, body: bytes) -> list[Item[P]]:
        """The record's items for its entity; ProcessingError if it does not parse."""
        try:
            callback: CallbackEnvelope[Any] = self.adapter.validate_json(body)
        except ValidationError as exc:
            raise ProcessingError(
                f"cannot parse the {self.name} callback: {exc.error_count()} errors"
            ) from exc
        for key, items in callback.entities():
            if key == ctx.key:
                return [
                    self.observe(ctx, index, item, callback.sent_at())
                    for index, item in enumerate(items)
                ]
        raise ProcessingError(f"the callback has no {self.name} entity {ctx.key!r}")

    def observe(
        self, ctx: Context, index: int, item: P, sent_at: datetime | None
    ) -> Item[P]:  # pragma: no cover - every row implements it
        raise NotImplementedError

    def events(
        self, item: Item[P], decision: Decision, enriched: Enriched | None, pii: Pii | None
    ) -> list[Outgoing]:  # pragma: no cover - every row implements it
        """The events of a published change. `enriched` is None when enrichment is off."""
        raise NotImplementedError

    def need(self, key: str, skus: Sequence[str], region: str | None) -> Need:
        """What to look up to enrich an entity of this kind."""
        raise ProcessingError(f"{self.name} events are not enriched")

    def enriched_events(
        self, follow_up: FollowUp, key: str, done: Enriched, final: bool
    ) -> list[Outgoing]:
        """The `*.enriched` event of a follow-up (and its stock levels)."""
        raise ProcessingError(f"{self.name} events are never enriched later")


def _millis(at: datetime) -> int:
    return int(at.timestamp() * 1000)


class StatusKind(EntityKind[P]):
    """A kind whose entity has a status that changes: outbound orders and returns."""

    def __init__(
        self,
        *,
        name: Kind,
        ranks: Mapping[str, int],
        change_event: str,
        enriched_event: str,
        parts: tuple[EnrichmentPart, EnrichmentPart],
        level_source: LevelSource,
        adapter: TypeAdapter[Any],
        status: Callable[[P], Status],
        oc_status: Callable[[P], str | None],
        occurred: Callable[[P], datetime | None],
        skus: Callable[[P], Sequence[str]],
        region: Callable[[P], str | None],
        build: Callable[[Change, P, Pii | None], EventModel],
        build_enriched: Callable[[Completion], EventModel],
    ) -> None:
        self.name = name
        self.ranks = ranks
        self.change_event = change_event
        self.enriched_event = enriched_event
        self._enriched_type = enriched_event
        self.parts = parts
        self.level_source = level_source
        self.adapter = adapter
        self._status = status
        self._oc_status = oc_status
        self._occurred = occurred
        self._skus = skus
        self._region = region
        self._build = build
        self._build_enriched = build_enriched

    def observe(self, ctx: Context, index: int, item: P, sent_at: datetime | None) -> Item[P]:
        status, oc_status = self._status(item), self._oc_status(item)
        occurred = self._occurred(item) or sent_at or ctx.received_at
        seen = Observation(
            identity=ctx.identity(index),
            fingerprint=f"{status}|{oc_status}|{occurred.isoformat()}",
            occurred_ms=_millis(occurred),
            status=status,
            reconciled=ctx.reconciled,
            oc_status=oc_status,
        )
        return Item(
            ctx, item, occurred, seen, self.need(ctx.key, self._skus(item), self._region(item))
        )

    def need(self, key: str, skus: Sequence[str], region: str | None) -> Need:
        entity, stock = self.parts
        return Need(key, entity, stock, tuple(skus), region)

    def events(
        self, item: Item[P], decision: Decision, enriched: Enriched | None, pii: Pii | None
    ) -> list[Outgoing]:
        ctx = item.ctx
        identity = item.observation.identity
        ce_id = event_id(self.change_event, identity)
        found = enriched if enriched is not None else Enriched()
        change = Change(
            event_id=ce_id,
            key=ctx.key,
            occurred_at=item.occurred_at,
            received_at=ctx.received_at,
            delivery_id=ctx.delivery_id,
            reconciled=ctx.reconciled,
            previous=decision.previous,
            regressed=decision.regressed,
            enrichment=mapping.enrichment_status(enriched is not None, found.missing, 2),
            enriched=found,
        )
        event = self._build(change, item.payload, pii)
        main = Outgoing(
            event, self.change_event, ce_id, self.name, ctx.key, item.occurred_at, ctx.reconciled
        )
        levels = level_events(found.stock, identity, item.occurred_at, self.level_source)
        return [main, *levels]

    def enriched_events(
        self, follow_up: FollowUp, key: str, done: Enriched, final: bool
    ) -> list[Outgoing]:
        ce_id = event_id(self._enriched_type, follow_up.identity)
        observed = mapping.at_ms(follow_up.occurred_at_ms)
        completion = Completion(
            event_id=ce_id,
            key=key,
            enriches_event_id=follow_up.event_id,
            occurred_at=observed,
            received_at=mapping.at_ms(follow_up.received_at_ms),
            delivery_id=follow_up.delivery_id,
            enrichment=mapping.enrichment_status(True, done.missing, 2, final=True),
            enriched=done,
        )
        event = self._build_enriched(completion)
        out = [Outgoing(event, self._enriched_type, ce_id, self.name, key, observed)]
        if self.parts[1] in follow_up.missing:
            # Stock levels become inventory events once: here only if the status event
            # could not carry them (it published the ones it had, under the same ids).
            out += level_events(done.stock, follow_up.identity, observed, self.level_source)
        return out


class InventoryKind(EntityKind[InventoryCallbackItem]):
    """Stock of one SKU in one place: each distinct level reported is published once."""

    name: Kind = "inventory"
    ranks: Mapping[str, int] = {}
    change_event = INVENTORY_LEVEL
    level_source: LevelSource = "inventory_callback"
    adapter = INVENTORY_CALLBACK

    def observe(
        self, ctx: Context, index: int, item: InventoryCallbackItem, sent_at: datetime | None
    ) -> Item[InventoryCallbackItem]:
        level = mapping.stock_level(item)
        if level is None:
            raise ProcessingError("inventory item without a location")
        occurred = item.occurred_at() or sent_at or ctx.received_at
        seen = Observation(
            identity=ctx.identity(index),
            fingerprint=f"{level.model_dump_json()}|{occurred.isoformat()}",
            occurred_ms=_millis(occurred),
        )
        return Item(ctx, item, occurred, seen)

    def events(
        self,
        item: Item[InventoryCallbackItem],
        decision: Decision,
        enriched: Enriched | None,
        pii: Pii | None,
    ) -> list[Outgoing]:
        level = mapping.stock_level(item.payload)
        assert level is not None  # observe() refused items without a location
        return level_events([level], item.observation.identity, item.occurred_at, self.level_source)


def _outbound_event(change: Change, order: OcOutboundOrder, pii: Pii | None) -> EventModel:
    consignee = pii(mapping.consignee(order)) if pii is not None and order.has_consignee() else None
    return mapping.outbound_status_changed(change, order, consignee)


def _return_event(change: Change, item: ReturnCallbackItem, pii: Pii | None) -> EventModel:
    return mapping.return_updated(change, item)


OUTBOUND: Final = StatusKind[OcOutboundOrder](
    name="outbound",
    ranks=mapping.ORDER_RANK,
    change_event=OUTBOUND_STATUS_CHANGED,
    enriched_event=OUTBOUND_ENRICHED,
    parts=("order", "stock"),
    level_source="stock_snapshot",
    adapter=OUTBOUND_CALLBACK,
    status=lambda order: order.normalized_status(),
    oc_status=lambda order: order.raw_status(),
    occurred=lambda order: order.occurred_at(),
    skus=mapping.order_skus,
    region=lambda order: order.service_region,
    build=_outbound_event,
    build_enriched=mapping.outbound_enriched,
)
RETURN: Final = StatusKind[ReturnCallbackItem](
    name="return",
    ranks=mapping.RETURN_RANK,
    change_event=RETURN_UPDATED,
    enriched_event=RETURN_ENRICHED,
    parts=("return_order", "return_stock"),
    level_source="return_stock_snapshot",
    adapter=RETURN_CALLBACK,
    status=lambda item: item.normalized_status(),
    oc_status=lambda item: item.raw_status(),
    occurred=lambda item: item.occurred_at(),
    skus=lambda item: [i.mf_sku_id for i in item.item_list if i.mf_sku_id],
    region=lambda item: None,
    build=_return_event,
    build_enriched=mapping.return_enriched,
)
INVENTORY: Final = InventoryKind()

KINDS: Final[Mapping[Kind, EntityKind[Any]]] = {
    "outbound": OUTBOUND,
    "return": RETURN,
    "inventory": INVENTORY,
}
