"""Follow-up enrichment: what an event could not carry in time, published once OC answers.

An entity's state lists the follow-ups it is owed (written in the same transaction as
the event that needed them), so they survive restarts and rebalances. Each batch, the
processor retries the ones that are due, with exponential backoff; when OC answers, an
`*.enriched` event carries what was missing. After `enrich_followup_max_age_s` the
gateway stops waiting and publishes what it has, saying it is final: nothing is dropped
silently and nothing waits forever.
"""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from gateway.ingest.record import Kind
from gateway.log.base import Record
from gateway.process.cloudevents import event_id
from gateway.process.enrich import OutboundEnrichment, ReturnEnrichment
from gateway.process.publish import LevelSource
from gateway.process.state import FollowUp, StateView
from schemas.events import (
    OUTBOUND_ENRICHED,
    OUTBOUND_STATUS_CHANGED,
    RETURN_ENRICHED,
    Enrichment,
    OutboundOrderEnriched,
    ReturnEnriched,
)

if TYPE_CHECKING:
    from gateway.process.handler import CallbackHandler

_MAX_PER_BATCH = 50
_BACKOFF_MAX_S = 300.0


def _at(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def next_attempt_ms(now_ms: int, attempts: int, first_s: float) -> int:
    """Exponential backoff with jitter, capped: first_s, 2 first_s, 4 first_s ... 5 min."""
    delay = min(_BACKOFF_MAX_S, first_s * 2 ** max(0, attempts))
    return now_ms + int(delay * random.uniform(0.8, 1.2) * 1000)


async def run_follow_ups(
    handler: CallbackHandler, view: StateView, now_ms: int
) -> dict[int, list[Record]]:
    due: list[tuple[int, str, FollowUp]] = []
    for partition, key in view.pending():
        state = view.get(partition, key)
        due.extend((partition, key, f) for f in state.followups if f.next_ms <= now_ms)
        if len(due) >= _MAX_PER_BATCH:
            break
    if not due:
        return {}
    results = await asyncio.gather(*(_attempt(handler, key, f) for _, key, f in due))
    outputs: dict[int, list[Record]] = {}
    for (partition, key, follow_up), result in zip(due, results, strict=True):
        state = view.get(partition, key)
        given_up = now_ms - follow_up.first_ms > handler.settings.enrich_followup_max_age_s * 1000
        remaining = [f for f in state.followups if f.event_id != follow_up.event_id]
        if result.missing and not given_up:
            follow_up.attempts += 1
            follow_up.next_ms = next_attempt_ms(
                now_ms, follow_up.attempts, handler.settings.enrich_followup_delay_s
            )
            remaining.append(follow_up)
        else:
            outputs.setdefault(partition, []).extend(_publish(handler, key, follow_up, result))
        state.followups = remaining
        view.put(partition, key, state)
    return outputs


async def _attempt(
    handler: CallbackHandler, state_key: str, follow_up: FollowUp
) -> OutboundEnrichment | ReturnEnrichment:
    entity = state_key.split(":", 1)[1]
    deadline = handler.settings.enrich_timeout_s
    if follow_up.event_type == OUTBOUND_STATUS_CHANGED:
        detail = follow_up.detail
        return await handler.enricher.outbound(
            entity, detail.get("skus", []), detail.get("region"), deadline
        )
    return await handler.enricher.returns(entity, follow_up.detail.get("skus", []), deadline)


def _publish(
    handler: CallbackHandler,
    state_key: str,
    follow_up: FollowUp,
    result: OutboundEnrichment | ReturnEnrichment,
) -> list[Record]:
    entity = state_key.split(":", 1)[1]
    final = Enrichment(
        status="complete" if not result.missing else "partial",
        missing=list(result.missing),
        follow_up=False,
    )
    common: dict[str, Any] = {
        "occurred_at": _at(follow_up.occurred_at_ms),
        "received_at": _at(follow_up.received_at_ms),
        "delivery_id": follow_up.delivery_id,
        "enriches_event_id": follow_up.event_id,
        "enrichment": final,
    }
    handler.metrics.enrichment.labels(f"follow_up_{final.status}").inc()
    observed = _at(follow_up.occurred_at_ms)
    kind: Kind
    source: LevelSource
    if isinstance(result, OutboundEnrichment):
        ce_id = event_id(OUTBOUND_ENRICHED, follow_up.identity)
        event: Any = OutboundOrderEnriched(
            event_id=ce_id,
            order_number=entity,
            oc_order=result.order,
            stock_levels=result.stock,
            **common,
        )
        event_type, kind, source = OUTBOUND_ENRICHED, "outbound", "stock_snapshot"
    else:
        ce_id = event_id(RETURN_ENRICHED, follow_up.identity)
        event = ReturnEnriched(
            event_id=ce_id,
            return_number=entity,
            oc_return=result.return_order,
            return_stock=result.stock,
            **common,
        )
        event_type, kind, source = RETURN_ENRICHED, "return", "return_stock_snapshot"
    publisher = handler.publisher
    records = [publisher.event_record(event, event_type, ce_id, kind, entity, observed)]
    if {"stock", "return_stock"} & set(follow_up.missing):
        # Stock levels become inventory events once: here only if the status event could
        # not carry them (it published the ones it had, under the same ids).
        records += publisher.level_records(result.stock, follow_up.identity, observed, source)
    return records
