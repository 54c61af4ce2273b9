"""The handler on its own: raw records in, outputs and entity state out. No Kafka, no app;
OC is a canned `Enricher` (the port the processor talks to), the clock is a fake."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from gateway.errors import ProcessingError
from gateway.ingest.record import H_SOURCE, SOURCE_RECONCILE, Kind, Received, raw_records
from gateway.log.base import LogRecord, Record
from gateway.log.sqlite import SqliteLog
from gateway.ops.metrics import Metrics
from gateway.process.dlq import DEAD_FOLLOW_UP, H_DEAD_LETTER, H_REASON
from gateway.process.enrich import Enriched, Need
from gateway.process.handler import DEFERRED, Done, Failed, Handled, RecordHandler
from gateway.process.kinds import KINDS, OUTBOUND, Context, EntityKind, Item, StatusKind
from gateway.process.state import StateKey, StateStore, StateView
from gateway.settings import Settings
from schemas.callbacks import OcOutboundOrder
from schemas.events import OcOrderState, StockLevel
from tests.clocks import FakeClock
from tests.conftest import SettingsFactory
from tests.helpers import outbound_callback

ORDER = "OCO0000000000001GB"
OTHER = "OCO0000000000002GB"
LEVEL = StockLevel(mf_sku_id="OC0000000675549", location="UK", location_kind="service_region")


@dataclass
class CannedOc:
    """OC answering every look-up at once, or not at all (`down`)."""

    down: bool = False
    level: StockLevel = LEVEL
    asked: list[Need] = field(default_factory=list)

    @property
    def enabled(self) -> bool:
        return True

    async def enrich(self, needs: Sequence[Need], deadline_s: float) -> Mapping[Need, Enriched]:
        self.asked += needs
        if self.down:
            return {need: Enriched(missing=need.parts) for need in needs}
        fetched = datetime(2026, 12, 1, tzinfo=UTC)
        return {
            need: Enriched(
                entity=OcOrderState(order_number=need.key, status="shipped", fetched_at=fetched),
                stock=(self.level,),
            )
            for need in needs
        }

    async def ready(self) -> None:
        return None


def raw(
    order: str,
    status: str,
    at: str,
    *,
    n: int,
    settings: Settings,
    reconciled: bool = False,
    **extra: Any,
) -> LogRecord:
    body = outbound_callback(order, status, message_id=f"m{n}", status_time=at, **extra)
    received = Received(
        kind="outbound",
        body=body,
        delivery_id=f"delivery-{n}",
        received_at=datetime(2026, 12, 1, 10, 0, n, tzinfo=UTC),
        verified=("path_token",),
        content_type="application/json",
    )
    [record] = raw_records(received, [order], settings.topic_raw)
    headers = record.headers + (((H_SOURCE, SOURCE_RECONCILE.encode()),) if reconciled else ())
    return LogRecord(record.topic, 0, n, record.key, record.value, headers, 0)


@pytest.fixture
def settings(make_settings: SettingsFactory) -> Settings:
    return make_settings(enrich_followup_max_age_s=3600)


@pytest.fixture
def view(tmp_path: Path, settings: Settings) -> StateView:
    store = StateStore(SqliteLog(tmp_path / "never-opened.sqlite3"), settings.topic_state)
    return StateView(store)


def events(results: Sequence[Handled], topic: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for result in results:
        assert isinstance(result, Done)
        out += [json.loads(r.value) for r in result.outputs if r.topic == topic]
    return out


def outputs(results: Sequence[Handled]) -> list[Record]:
    return [r for result in results if isinstance(result, Done) for r in result.outputs]


async def test_out_of_order_delivery_is_published_flagged_not_reordered(
    settings: Settings, view: StateView
) -> None:
    handler = RecordHandler(settings, Metrics())
    results = await handler.handle(
        [
            raw(ORDER, "SHIPPED", "2026-12-01T10:00:00+0800", n=1, settings=settings),
            raw(ORDER, "PACKED", "2026-12-01T09:00:00+0800", n=2, settings=settings),
            raw(ORDER, "DELIVERED", "2026-12-01T12:00:00+0800", n=3, settings=settings),
        ],
        view,
    )
    published = events(results, settings.topic_outbound)
    assert [(e["status"], e["previousStatus"], e["statusRegressed"]) for e in published] == [
        ("shipped", None, False),
        ("packed", "shipped", True),
        ("delivered", "shipped", False),
    ]
    assert all(e["enrichment"]["status"] == "not_requested" for e in published)
    assert view.get(0, StateKey("outbound", ORDER)).status == "delivered"


async def test_a_repeated_delivery_or_change_is_dropped(
    settings: Settings, view: StateView
) -> None:
    metrics = Metrics()
    handler = RecordHandler(settings, metrics)
    first = raw(ORDER, "SHIPPED", "2026-12-01T10:00:00+0800", n=1, settings=settings)
    same_change = raw(ORDER, "SHIPPED", "2026-12-01T10:00:00+0800", n=2, settings=settings)
    results = await handler.handle([first, same_change, first], view)
    assert len(events(results, settings.topic_outbound)) == 1
    view.apply()
    later = await handler.handle([first], view)
    assert events(later, settings.topic_outbound) == []
    decisions = {
        outcome: metrics.registry.get_sample_value(
            "gateway_processor_decisions_total", {"kind": "outbound", "outcome": outcome}
        )
        for outcome in ("published", "duplicate")
    }
    assert decisions == {"published": 1.0, "duplicate": 3.0}


async def test_a_reconciled_change_then_its_late_callback(
    settings: Settings, view: StateView
) -> None:
    handler = RecordHandler(settings, Metrics())
    found = raw(
        ORDER, "SHIPPED", "2026-12-01T10:00:00+0800", n=1, settings=settings, reconciled=True
    )
    late = raw(ORDER, "SHIPPED", "2026-12-01T09:59:00+0800", n=2, settings=settings)
    results = await handler.handle([found, late], view)
    [event] = events(results, settings.topic_outbound)
    assert event["reconciled"] is True
    [record] = [r for r in outputs(results) if r.topic == settings.topic_outbound]
    assert record.header("ce_reconciled") == b"true"
    assert view.get(0, StateKey("outbound", ORDER)).reconciled_status is None  # settled


async def test_an_unknown_status_is_published_and_counted(
    settings: Settings, view: StateView
) -> None:
    metrics = Metrics()
    results = await RecordHandler(settings, metrics).handle(
        [raw(ORDER, "Teleported", "2026-12-01T10:00:00+0800", n=1, settings=settings)], view
    )
    [event] = events(results, settings.topic_outbound)
    assert (event["status"], event["ocStatus"]) == ("unknown", "Teleported")
    sample = metrics.registry.get_sample_value("gateway_unknown_status_total", {"kind": "outbound"})
    assert sample == 1.0


async def test_enrichment_is_asked_once_per_batch_and_carried(
    settings: Settings, view: StateView
) -> None:
    oc = CannedOc()
    results = await RecordHandler(settings, Metrics(), oc).handle(
        [
            raw(ORDER, "PACKED", "2026-12-01T10:00:00+0800", n=1, settings=settings),
            raw(OTHER, "PACKED", "2026-12-01T10:00:00+0800", n=2, settings=settings),
        ],
        view,
    )
    assert sorted(need.key for need in oc.asked) == [ORDER, OTHER]
    published = events(results, settings.topic_outbound)
    assert [e["enrichment"]["status"] for e in published] == ["complete", "complete"]
    assert [e["ocOrder"]["orderNumber"] for e in published] == [ORDER, OTHER]
    # Both orders' stock is the same level of the same SKU: it is published once.
    levels = events(results, settings.topic_inventory)
    assert [lv["level"]["mfSkuId"] for lv in levels] == [LEVEL.mf_sku_id]


async def test_a_stock_level_is_published_again_only_when_it_changes(
    settings: Settings, view: StateView
) -> None:
    oc = CannedOc()
    handler = RecordHandler(settings, Metrics(), oc)
    first = raw(ORDER, "PACKED", "2026-12-01T10:00:00+0800", n=1, settings=settings)
    await handler.handle([first], view)
    view.apply()
    same = await handler.handle(
        [raw(OTHER, "PACKED", "2026-12-01T10:00:00+0800", n=2, settings=settings)], view
    )
    assert events(same, settings.topic_inventory) == []
    view.apply()
    oc.level = LEVEL.model_copy(update={"available": 41})
    changed = await handler.handle(
        [raw(ORDER, "SHIPPED", "2026-12-01T11:00:00+0800", n=3, settings=settings)], view
    )
    [level] = events(changed, settings.topic_inventory)
    assert level["level"]["available"] == 41


async def test_a_follow_up_completes_when_oc_answers(settings: Settings, view: StateView) -> None:
    clock = FakeClock()
    oc = CannedOc(down=True)
    handler = RecordHandler(settings, Metrics(), oc, clock=clock)
    results = await handler.handle(
        [raw(ORDER, "PACKED", "2026-12-01T10:00:00+0800", n=1, settings=settings)], view
    )
    [event] = events(results, settings.topic_outbound)
    assert event["enrichment"] == {
        "status": "unavailable",
        "missing": ["order", "stock"],
        "followUp": True,
    }
    view.apply()
    now_ms = int(clock.time() * 1000)
    assert await handler.follow_ups(view, now_ms) == {}  # not due yet
    oc.down = False
    due = await handler.follow_ups(view, now_ms + 60_000)
    [enriched] = [json.loads(r.value) for r in due[0] if r.topic == settings.topic_outbound]
    assert enriched["type"] == "oc.outbound.order.enriched.v1"
    assert enriched["enrichesEventId"] == event["eventId"]
    assert enriched["enrichment"] == {"status": "complete", "missing": [], "followUp": False}
    assert [r.topic for r in due[0]].count(settings.topic_inventory) == 1  # stock was owed
    view.apply()
    assert view.get(0, StateKey("outbound", ORDER)).followups == ()


async def test_a_follow_up_gives_up_at_its_max_age_into_the_dlq(
    settings: Settings, view: StateView
) -> None:
    clock = FakeClock()
    handler = RecordHandler(settings, Metrics(), CannedOc(down=True), clock=clock)
    await handler.handle(
        [raw(ORDER, "PACKED", "2026-12-01T10:00:00+0800", n=1, settings=settings)], view
    )
    view.apply()
    start_ms = int(clock.time() * 1000)
    retried = await handler.follow_ups(view, start_ms + 10_000)
    assert retried == {0: []}  # tried, still missing, owed again later
    view.apply()
    [owed] = view.get(0, StateKey("outbound", ORDER)).followups
    assert owed.attempts == 1
    assert owed.next_ms > start_ms + 10_000
    late = await handler.follow_ups(view, start_ms + 3_600_000 + 1)
    [dead] = [r for r in late[0] if r.topic == settings.topic_dlq]
    assert dead.header(H_DEAD_LETTER) == DEAD_FOLLOW_UP.encode()
    assert dead.key == ORDER.encode()
    reason = (dead.header(H_REASON) or b"").decode()
    assert reason.startswith("follow_up_expired: OC did not answer order, stock within 3600 s")
    assert json.loads(dead.value)["entity"] == f"outbound:{ORDER}"
    [final] = [json.loads(r.value) for r in late[0] if r.topic == settings.topic_outbound]
    assert final["enrichment"]["followUp"] is False
    view.apply()
    assert view.get(0, StateKey("outbound", ORDER)).followups == ()


class Broken(StatusKind[OcOutboundOrder]):
    """The outbound kind with a bug for one order."""

    def __init__(self, key: str, error: Exception) -> None:
        self.__dict__.update(OUTBOUND.__dict__)
        self._key, self._error = key, error

    def items(self, ctx: Context, body: bytes) -> list[Item[OcOutboundOrder]]:
        if ctx.key == self._key:
            raise self._error
        return super().items(ctx, body)


@pytest.mark.parametrize(
    ("error", "followers"),
    [(RuntimeError("surprise"), "deferred"), (ProcessingError("cannot map"), "handled")],
)
async def test_a_failing_record_holds_back_its_entity_only_when_it_will_be_retried(
    settings: Settings, view: StateView, error: Exception, followers: str
) -> None:
    kinds: dict[Kind, EntityKind[Any]] = {**KINDS, "outbound": Broken(ORDER, error)}
    handler = RecordHandler(settings, Metrics(), kinds=kinds)
    results = await handler.handle(
        [
            raw(ORDER, "PACKED", "2026-12-01T10:00:00+0800", n=1, settings=settings),
            raw(OTHER, "PACKED", "2026-12-01T10:00:00+0800", n=2, settings=settings),
            raw(ORDER, "SHIPPED", "2026-12-01T11:00:00+0800", n=3, settings=settings),
        ],
        view,
    )
    assert isinstance(results[0], Failed)
    assert results[0].error is error
    assert isinstance(results[1], Done)
    if followers == "deferred":
        assert results[2] is DEFERRED
    else:
        assert isinstance(results[2], Failed)  # the same bug: each record is its own failure
    assert view.get(0, StateKey("outbound", ORDER)).deliveries == ()


async def test_a_body_that_does_not_parse_is_a_permanent_failure(
    settings: Settings, view: StateView
) -> None:
    good = raw(ORDER, "PACKED", "2026-12-01T10:00:00+0800", n=1, settings=settings)
    broken = LogRecord(good.topic, 0, 9, good.key, b'{"data": [{"no": "order"}]}', good.headers)
    [result] = await RecordHandler(settings, Metrics()).handle([broken], view)
    assert isinstance(result, Failed)
    assert result.permanent
    assert "cannot parse the outbound callback" in str(result.error)
