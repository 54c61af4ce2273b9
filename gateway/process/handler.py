"""One raw record -> its typed events: parse, deduplicate, enrich, map, remember.

Each raw record concerns one entity (its key) of one callback; the callback may carry
several items for it, handled in order. Per item: drop it if this delivery or this exact
change (status + OC event time) was already published; flag it if it goes backwards;
enrich it within the deadline; publish; remember it in the entity's state. Enrichment
that did not arrive in time is owed as a follow-up (see followups.py).

Raw records written by reconciliation (`gw-source: reconcile`) carry OC's current state of
an entity: they become an event, marked reconciled, only when that state is ahead of what
was published; a callback arriving later for a change reconciliation already published is
absorbed as a duplicate.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from gateway.errors import ProcessingError
from gateway.ingest.record import Kind
from gateway.log.base import LogRecord, Record
from gateway.ops.logs import get_logger
from gateway.ops.metrics import Metrics
from gateway.process import mapping
from gateway.process.cloudevents import event_id
from gateway.process.enrich import Enricher, NoEnrichment, OutboundEnrichment, ReturnEnrichment
from gateway.process.followups import run_follow_ups
from gateway.process.pii import PiiPolicy
from gateway.process.publish import LevelSource, Publisher
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
    OUTBOUND_STATUS_CHANGED,
    RETURN_UPDATED,
    Enrichment,
    EnrichmentPart,
    OutboundOrderStatusChanged,
    ReturnUpdated,
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
    reconciled: bool

    def identity(self, index: int) -> str:
        return f"{self.delivery_id}#{self.key}#{index}"


@dataclass(frozen=True)
class StatusChange:
    """One status change of an order or a return, and how to publish it."""

    status: str
    oc_status: str | None
    occurred: datetime
    ranks: Mapping[str, int]
    event_type: str
    levels_source: LevelSource
    follow_up_detail: dict[str, Any] = field(default_factory=dict)


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
        self.enricher: Enricher = enricher or NoEnrichment()
        self.clock = clock
        self.publisher = Publisher(settings)
        # Records are handled concurrently so their OC look-ups share batches, but only
        # this many at once may be between two waits: a batch's CPU work then comes in
        # short turns, and callbacks arriving meanwhile (same event loop) are answered
        # between them instead of after the whole batch.
        self._cpu = asyncio.Semaphore(settings.processor_concurrency)
        self._pii = PiiPolicy(settings.pii_policy, settings.pii_hmac_key.get_secret_value())

    async def handle(self, record: LogRecord, view: StateView) -> list[Record]:
        kind, delivery_id, received_at, reconciled = record_context(record)
        if record.key is None:
            raise ProcessingError("raw record has no key")
        ctx = Context(
            kind, record.key.decode(), record.partition, delivery_id, received_at, reconciled
        )
        try:
            async with self._cpu:
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
                async with self._cpu:
                    outputs += self._inventory(ctx, index, callback, row, view)
        return outputs

    async def follow_ups(self, view: StateView, now_ms: int) -> dict[int, list[Record]]:
        if not self.enricher.enabled:
            return {}
        return await run_follow_ups(self, view, now_ms)

    # --- per kind -----------------------------------------------------------------------
    async def _outbound(
        self,
        ctx: Context,
        index: int,
        callback: OutboundCallback,
        item: OcOutboundOrder,
        view: StateView,
    ) -> list[Record]:
        skus = mapping.order_skus(item)
        change = StatusChange(
            status=item.normalized_status(),
            oc_status=item.raw_status(),
            occurred=callback.occurred_at(item) or ctx.received_at,
            ranks=mapping.ORDER_RANK,
            event_type=OUTBOUND_STATUS_CHANGED,
            levels_source="stock_snapshot",
            follow_up_detail={"skus": skus, "region": item.service_region},
        )
        consignee = mapping.consignee(item) if item.has_consignee() else None
        topic = self.publisher.topic_for("outbound")

        async def enrich() -> OutboundEnrichment:
            return await self._enrich(
                self.enricher.outbound(ctx.key, skus, item.service_region, self._timeout),
                OutboundEnrichment(missing=("order", "stock")),
            )

        def build(
            ce_id: str, state: EntityState, regress: bool, result: OutboundEnrichment
        ) -> BaseModel:
            return OutboundOrderStatusChanged(
                event_id=ce_id,
                occurred_at=change.occurred,
                received_at=ctx.received_at,
                delivery_id=ctx.delivery_id,
                reconciled=ctx.reconciled,
                order_number=ctx.key,
                reference_number=item.reference_number,
                service_region=item.service_region,
                status=item.normalized_status(),
                oc_status=change.oc_status,
                previous_status=state.status,  # type: ignore[arg-type]
                status_regressed=regress,
                shipments=mapping.shipments(item),
                consignee=self._pii.apply(topic, consignee) if consignee else None,
                enrichment=enrichment_status(self.enricher.enabled, result.missing, 2),
                oc_order=result.order,
                stock_levels=result.stock,
            )

        return await self._status_change(ctx, index, change, view, enrich, build)

    async def _return(
        self,
        ctx: Context,
        index: int,
        callback: ReturnCallback,
        item: ReturnCallbackItem,
        view: StateView,
    ) -> list[Record]:
        sku_ids = [i.mf_sku_id for i in item.item_list if i.mf_sku_id]
        change = StatusChange(
            status=item.normalized_status(),
            oc_status=item.raw_status(),
            occurred=callback.occurred_at(item) or ctx.received_at,
            ranks=mapping.RETURN_RANK,
            event_type=RETURN_UPDATED,
            levels_source="return_stock_snapshot",
            follow_up_detail={"skus": sku_ids},
        )

        async def enrich() -> ReturnEnrichment:
            return await self._enrich(
                self.enricher.returns(ctx.key, sku_ids, self._timeout),
                ReturnEnrichment(missing=("return_order", "return_stock")),
            )

        def build(
            ce_id: str, state: EntityState, regress: bool, result: ReturnEnrichment
        ) -> BaseModel:
            return ReturnUpdated(
                event_id=ce_id,
                occurred_at=change.occurred,
                received_at=ctx.received_at,
                delivery_id=ctx.delivery_id,
                reconciled=ctx.reconciled,
                return_number=ctx.key,
                order_number=item.original_order_number,
                status=item.normalized_status(),
                oc_status=change.oc_status,
                previous_status=state.status,  # type: ignore[arg-type]
                status_regressed=regress,
                tracking_number=item.tracking_number,
                carrier_code=item.carrier_code,
                items=mapping.return_items(item.item_list),
                enrichment=enrichment_status(self.enricher.enabled, result.missing, 2),
                oc_return=result.return_order,
                return_stock=result.stock,
            )

        return await self._status_change(ctx, index, change, view, enrich, build)

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
        state.remember(identity, fingerprint)
        state.updated_ms = int(self.clock() * 1000)
        view.put(ctx.partition, state_key, state)
        return self.publisher.level_records([level], identity, occurred, "inventory_callback")

    # --- the status pipeline shared by orders and returns -------------------------------
    async def _status_change(
        self,
        ctx: Context,
        index: int,
        change: StatusChange,
        view: StateView,
        enrich: Callable[[], Awaitable[E]],
        build: Callable[[str, EntityState, bool, E], BaseModel],
    ) -> list[Record]:
        state_key = f"{ctx.kind}:{ctx.key}"
        identity = ctx.identity(index)
        fingerprint = f"{change.status}|{change.oc_status}|{change.occurred.isoformat()}"
        async with self._cpu:
            state = view.get(ctx.partition, state_key)
            if self._seen(ctx, state, identity, fingerprint):
                return []
            if not self._is_news(ctx, state, change):
                state.remember(identity, fingerprint)
                view.put(ctx.partition, state_key, state)
                return []
            if change.status == "unknown":
                self.metrics.unknown_status.labels(ctx.kind).inc()
                self.metrics.count_unknown_status(ctx.kind, change.oc_status)
            regress = mapping.regressed(
                change.ranks, state.status, state.occurred_at_ms, change.status, change.occurred
            )
        result = await enrich()  # no turn is held while OC answers
        async with self._cpu:
            return self._publish(
                ctx, state_key, state, identity, fingerprint, change, regress, result, build, view
            )

    def _publish(
        self,
        ctx: Context,
        state_key: str,
        state: EntityState,
        identity: str,
        fingerprint: str,
        change: StatusChange,
        regress: bool,
        result: E,
        build: Callable[[str, EntityState, bool, E], BaseModel],
        view: StateView,
    ) -> list[Record]:
        ce_id = event_id(change.event_type, identity)
        event = build(ce_id, state, regress, result)
        status = enrichment_status(self.enricher.enabled, result.missing, 2).status
        self.metrics.enrichment.labels(status).inc()
        outputs = [
            self.publisher.event_record(
                event,
                change.event_type,
                ce_id,
                ctx.kind,
                ctx.key,
                change.occurred,
                reconciled=ctx.reconciled,
            )
        ]
        outputs += self.publisher.level_records(
            result.stock, identity, change.occurred, change.levels_source
        )
        self._remember(ctx, state, identity, fingerprint, change, regress)
        if result.missing and self.enricher.enabled:
            self._owe(state, ce_id, change, ctx, identity, result.missing)
        view.put(ctx.partition, state_key, state)
        return outputs

    def _seen(self, ctx: Context, state: EntityState, identity: str, fingerprint: str) -> bool:
        if state.saw_delivery(identity) or state.saw_fingerprint(fingerprint):
            self.metrics.duplicates.labels(ctx.kind).inc()
            return True
        return False

    def _is_news(self, ctx: Context, state: EntityState, change: StatusChange) -> bool:
        """Whether a change is worth an event, given what reconciliation knows."""
        if ctx.reconciled:
            # OC's current state, found by polling: news when it differs from what was
            # published and is not behind it (OC's query can lag its own callbacks).
            behind = mapping.behind(change.ranks, state.status, change.status)
            return change.status != state.status and not behind
        if state.reconciled_status is not None and state.reconciled_status == change.status:
            # The late callback of a change that reconciliation already published.
            self.metrics.duplicates.labels(ctx.kind).inc()
            state.reconciled_status = None
            return False
        return True

    def _remember(
        self,
        ctx: Context,
        state: EntityState,
        identity: str,
        fingerprint: str,
        change: StatusChange,
        regress: bool,
    ) -> None:
        state.remember(identity, fingerprint)
        state.reconciled_status = change.status if ctx.reconciled else None
        if ctx.reconciled:
            self.metrics.reconcile_changes.labels(ctx.kind).inc()
        if regress:
            self.metrics.status_regressions.labels(ctx.kind).inc()
        else:
            state.status = change.status
            state.occurred_at_ms = int(change.occurred.timestamp() * 1000)
        state.updated_ms = int(self.clock() * 1000)

    def _owe(
        self,
        state: EntityState,
        ce_id: str,
        change: StatusChange,
        ctx: Context,
        identity: str,
        missing: Sequence[str],
    ) -> None:
        now_ms = int(self.clock() * 1000)
        state.followups.append(
            FollowUp(
                event_id=ce_id,
                event_type=change.event_type,
                missing=list(missing),
                delivery_id=ctx.delivery_id,
                identity=identity,
                occurred_at_ms=int(change.occurred.timestamp() * 1000),
                received_at_ms=int(ctx.received_at.timestamp() * 1000),
                first_ms=now_ms,
                next_ms=now_ms + int(self.settings.enrich_followup_delay_s * 1000),
                detail=change.follow_up_detail,
            )
        )

    @property
    def _timeout(self) -> float:
        return self.settings.enrich_timeout_s

    async def _enrich(self, lookup: Awaitable[E], nothing: E) -> E:
        """Enrichment must never stop an event: an enricher that fails unexpectedly
        counts as OC not answering (the follow-up retries it), and is logged as a bug."""
        try:
            return await lookup
        except Exception as exc:
            logger.error("enrichment failed unexpectedly", error=f"{type(exc).__name__}: {exc}")
            return nothing
