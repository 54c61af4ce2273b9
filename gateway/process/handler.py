"""One raw record -> its typed events: parse, deduplicate, enrich, map, remember.

Each raw record concerns one entity (its key) of one callback; the callback may carry
several items for it, handled in order. Per item: drop it if this delivery or this exact
change (status + OC event time) was already published; flag it if it goes backwards;
enrich it within the deadline; publish; remember it in the entity's state. Enrichment
that did not arrive in time is owed as a follow-up (see followups.py).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from pydantic import ValidationError

from gateway.errors import ProcessingError
from gateway.ingest.record import Kind
from gateway.log.base import LogRecord, Record
from gateway.ops.logs import get_logger
from gateway.ops.metrics import Metrics
from gateway.process import mapping
from gateway.process.cloudevents import event_id, to_record
from gateway.process.enrich import Enricher, NoEnrichment, OutboundEnrichment, ReturnEnrichment
from gateway.process.followups import run_follow_ups
from gateway.process.raw import record_context
from gateway.process.state import EntityState, FollowUp, StateView
from gateway.settings import Settings
from schemas.callbacks import (
    InventoryCallback,
    InventoryCallbackItem,
    OcOutboundOrder,
    OutboundCallback,
    ReturnCallback,
    ReturnCallbackItem,
    parse_callback,
)
from schemas.events import (
    INVENTORY_LEVEL,
    OUTBOUND_STATUS_CHANGED,
    RETURN_UPDATED,
    Enrichment,
    EnrichmentPart,
    InventoryLevel,
    OutboundOrderStatusChanged,
    ReturnUpdated,
    StockLevel,
)

T = TypeVar("T")
E = TypeVar("E", OutboundEnrichment, ReturnEnrichment)
logger = get_logger("gateway.process")


def enrichment_status(enabled: bool, missing: Sequence[EnrichmentPart], parts: int) -> Enrichment:
    if not enabled:
        return Enrichment(status="not_requested")
    if not missing:
        return Enrichment(status="complete")
    if len(missing) >= parts:
        return Enrichment(status="unavailable", missing=list(missing), follow_up=True)
    return Enrichment(status="partial", missing=list(missing), follow_up=True)


@dataclass(frozen=True, slots=True)
class Context:
    """What every event of one raw record shares."""

    kind: Kind
    key: str
    partition: int
    delivery_id: str
    received_at: datetime

    def identity(self, index: int) -> str:
        return f"{self.delivery_id}#{self.key}#{index}"


def _items(entities: list[tuple[str, list[T]]], ctx: Context) -> list[T]:
    """The items of the callback that concern this record's entity."""
    for key, items in entities:
        if key == ctx.key:
            return items
    raise ProcessingError(f"the callback has no {ctx.kind} entity {ctx.key!r}")


class CallbackHandler:
    def __init__(
        self,
        settings: Settings,
        metrics: Metrics,
        enricher: Enricher | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.metrics = metrics
        self._settings = settings
        self._metrics = metrics
        self.enricher: Enricher = enricher or NoEnrichment()
        self.clock = clock
        self._clock = clock

    async def handle(self, record: LogRecord, view: StateView) -> list[Record]:
        kind, delivery_id, received_at = record_context(record)
        if record.key is None:
            raise ProcessingError("raw record has no key")
        ctx = Context(kind, record.key.decode(), record.partition, delivery_id, received_at)
        try:
            callback = parse_callback(kind, record.value)
        except ValidationError as exc:
            raise ProcessingError(
                f"cannot parse the {kind} callback: {exc.error_count()} errors"
            ) from exc
        outputs: list[Record] = []
        if isinstance(callback, OutboundCallback):
            for index, order in enumerate(_items(callback.entities(), ctx)):
                outputs += await self._outbound(ctx, index, callback, order, view)
        elif isinstance(callback, ReturnCallback):
            for index, rma in enumerate(_items(callback.entities(), ctx)):
                outputs += await self._return(ctx, index, callback, rma, view)
        else:
            for index, row in enumerate(_items(callback.entities(), ctx)):
                outputs += self._inventory(ctx, index, callback, row, view)
        return outputs

    async def follow_ups(self, view: StateView, now_ms: int) -> dict[int, list[Record]]:
        if not self.enricher.enabled:
            return {}
        return await run_follow_ups(self, view, now_ms)

    # --- per kind -----------------------------------------------------------------------
    def _seen(self, ctx: Context, state: EntityState, identity: str, fingerprint: str) -> bool:
        if state.saw_delivery(identity) or state.saw_fingerprint(fingerprint):
            self._metrics.duplicates.labels(ctx.kind).inc()
            return True
        return False

    async def _outbound(
        self,
        ctx: Context,
        index: int,
        callback: OutboundCallback,
        item: OcOutboundOrder,
        view: StateView,
    ) -> list[Record]:
        state_key = f"outbound:{ctx.key}"
        state = view.get(ctx.partition, state_key)
        occurred = callback.occurred_at(item) or ctx.received_at
        status, oc_status = item.normalized_status(), item.raw_status()
        identity = ctx.identity(index)
        fingerprint = f"{status}|{oc_status}|{occurred.isoformat()}"
        if self._seen(ctx, state, identity, fingerprint):
            return []
        if status == "unknown":
            self._metrics.unknown_status.labels(ctx.kind).inc()
        regress = mapping.regressed(
            mapping.ORDER_RANK, state.status, state.occurred_at_ms, status, occurred
        )
        skus = mapping.order_skus(item)
        result = await self._enrich(
            self.enricher.outbound(ctx.key, skus, item.service_region, self._timeout),
            OutboundEnrichment(missing=("order", "stock")),
        )
        enrichment = enrichment_status(self.enricher.enabled, result.missing, 2)
        ce_id = event_id(OUTBOUND_STATUS_CHANGED, identity)
        event = OutboundOrderStatusChanged(
            event_id=ce_id,
            occurred_at=occurred,
            received_at=ctx.received_at,
            delivery_id=ctx.delivery_id,
            order_number=ctx.key,
            reference_number=item.reference_number,
            service_region=item.service_region,
            status=status,
            oc_status=oc_status,
            previous_status=state.status,  # type: ignore[arg-type]
            status_regressed=regress,
            shipments=mapping.shipments(item),
            enrichment=enrichment,
            oc_order=result.order,
            stock_levels=result.stock,
        )
        outputs = [self.event_record(event, OUTBOUND_STATUS_CHANGED, ce_id, ctx.kind, ctx.key)]
        outputs += self.level_records(result.stock, identity, occurred, "stock_snapshot")
        self._remember(ctx, state, identity, fingerprint, status, occurred, regress)
        if enrichment.follow_up:
            self._owe(
                state,
                ce_id,
                OUTBOUND_STATUS_CHANGED,
                ctx,
                identity,
                occurred,
                result.missing,
                {"skus": skus, "region": item.service_region},
            )
        view.put(ctx.partition, state_key, state)
        return outputs

    async def _return(
        self,
        ctx: Context,
        index: int,
        callback: ReturnCallback,
        item: ReturnCallbackItem,
        view: StateView,
    ) -> list[Record]:
        state_key = f"return:{ctx.key}"
        state = view.get(ctx.partition, state_key)
        occurred = callback.occurred_at(item) or ctx.received_at
        status, oc_status = item.normalized_status(), item.raw_status()
        identity = ctx.identity(index)
        fingerprint = f"{status}|{oc_status}|{occurred.isoformat()}"
        if self._seen(ctx, state, identity, fingerprint):
            return []
        if status == "unknown":
            self._metrics.unknown_status.labels(ctx.kind).inc()
        regress = mapping.regressed(
            mapping.RETURN_RANK, state.status, state.occurred_at_ms, status, occurred
        )
        sku_ids = [i.mf_sku_id for i in item.item_list if i.mf_sku_id]
        result = await self._enrich(
            self.enricher.returns(ctx.key, sku_ids, self._timeout),
            ReturnEnrichment(missing=("return_order", "return_stock")),
        )
        enrichment = enrichment_status(self.enricher.enabled, result.missing, 2)
        ce_id = event_id(RETURN_UPDATED, identity)
        event = ReturnUpdated(
            event_id=ce_id,
            occurred_at=occurred,
            received_at=ctx.received_at,
            delivery_id=ctx.delivery_id,
            return_number=ctx.key,
            order_number=item.original_order_number,
            status=status,
            oc_status=oc_status,
            previous_status=state.status,  # type: ignore[arg-type]
            status_regressed=regress,
            tracking_number=item.tracking_number,
            carrier_code=item.carrier_code,
            items=mapping.return_items(item.item_list),
            enrichment=enrichment,
            oc_return=result.return_order,
            return_stock=result.stock,
        )
        outputs = [self.event_record(event, RETURN_UPDATED, ce_id, ctx.kind, ctx.key)]
        outputs += self.level_records(result.stock, identity, occurred, "return_stock_snapshot")
        self._remember(ctx, state, identity, fingerprint, status, occurred, regress)
        if enrichment.follow_up:
            self._owe(
                state,
                ce_id,
                RETURN_UPDATED,
                ctx,
                identity,
                occurred,
                result.missing,
                {"skus": sku_ids},
            )
        view.put(ctx.partition, state_key, state)
        return outputs

    def _inventory(
        self,
        ctx: Context,
        index: int,
        callback: InventoryCallback,
        item: InventoryCallbackItem,
        view: StateView,
    ) -> list[Record]:
        state_key = f"inventory:{ctx.key}"
        state = view.get(ctx.partition, state_key)
        occurred = callback.occurred_at(item) or ctx.received_at
        identity = ctx.identity(index)
        level = mapping.stock_level(item)
        if level is None:
            raise ProcessingError("inventory item without a location")
        fingerprint = f"{level.model_dump_json()}|{occurred.isoformat()}"
        if self._seen(ctx, state, identity, fingerprint):
            return []
        self._remember(ctx, state, identity, fingerprint, None, occurred, False)
        view.put(ctx.partition, state_key, state)
        return self.level_records([level], identity, occurred, "inventory_callback")

    # --- shared -------------------------------------------------------------------------
    @property
    def _timeout(self) -> float:
        return self._settings.enrich_timeout_s

    async def _enrich(self, lookup: Awaitable[E], nothing: E) -> E:
        """Enrichment must never stop an event: an enricher that fails unexpectedly
        counts as OC not answering (the follow-up retries it), and is logged as a bug."""
        try:
            return await lookup
        except Exception as exc:
            logger.error("enrichment failed unexpectedly", error=f"{type(exc).__name__}: {exc}")
            return nothing

    def _remember(
        self,
        ctx: Context,
        state: EntityState,
        identity: str,
        fingerprint: str,
        status: str | None,
        occurred: datetime,
        regress: bool,
    ) -> None:
        state.remember(identity, fingerprint)
        if regress:
            self._metrics.status_regressions.labels(ctx.kind).inc()
        else:
            state.status = status
            state.occurred_at_ms = int(occurred.timestamp() * 1000)
        state.updated_ms = int(self._clock() * 1000)

    def _owe(
        self,
        state: EntityState,
        ce_id: str,
        event_type: str,
        ctx: Context,
        identity: str,
        occurred: datetime,
        missing: Sequence[str],
        detail: dict[str, Any],
    ) -> None:
        now_ms = int(self._clock() * 1000)
        state.followups.append(
            FollowUp(
                event_id=ce_id,
                event_type=event_type,
                missing=list(missing),
                delivery_id=ctx.delivery_id,
                identity=identity,
                occurred_at_ms=int(occurred.timestamp() * 1000),
                received_at_ms=int(ctx.received_at.timestamp() * 1000),
                first_ms=now_ms,
                next_ms=now_ms + int(self._settings.enrich_followup_delay_s * 1000),
                detail=detail,
            )
        )

    def topic_for(self, kind: Kind) -> str:
        return {
            "outbound": self._settings.topic_outbound,
            "return": self._settings.topic_returns,
            "inventory": self._settings.topic_inventory,
        }[kind]

    def event_record(
        self, event: Any, event_type: str, ce_id: str, kind: Kind, key: str, **extensions: str
    ) -> Record:
        return to_record(
            event,
            event_type=event_type,
            ce_id=ce_id,
            topic=self.topic_for(kind),
            key=key,
            source=f"/oc-gateway/{kind}",
            subject=key,
            time=event.occurred_at,
            extensions=extensions or None,
        )

    def level_records(
        self, levels: Sequence[StockLevel], identity: str, observed: datetime, source: Any
    ) -> list[Record]:
        records = []
        for level in levels:
            key = mapping.level_key(level)
            ce_id = event_id(INVENTORY_LEVEL, f"{identity}|{key}")
            event = InventoryLevel(event_id=ce_id, observed_at=observed, source=source, level=level)
            records.append(
                to_record(
                    event,
                    event_type=INVENTORY_LEVEL,
                    ce_id=ce_id,
                    topic=self._settings.topic_inventory,
                    key=key,
                    source="/oc-gateway/inventory",
                    subject=key,
                    time=observed,
                )
            )
        return records
