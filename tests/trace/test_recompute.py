"""The trace works out the processor's decisions as the processor makes them."""

from __future__ import annotations

from pathlib import Path

from gateway.log.base import LogRecord
from gateway.log.sqlite import SqliteLog
from gateway.ops.metrics import Metrics
from gateway.process.handler import Done, RecordHandler
from gateway.process.state import StateKey, StateStore, StateView
from gateway.settings import Settings
from gateway.trace.recompute import recompute
from tests.trace.builders import ORDER, raw


def decisions(records: list[LogRecord]) -> list[tuple[str, str]]:
    return [
        (item.decision.outcome.value, item.decision.reason)
        for r in recompute(records).records
        for item in r.items
    ]


def test_a_life_with_redeliveries_and_a_late_status() -> None:
    records = [
        raw("CREATED", offset=0),
        raw("ALLOCATED", offset=1),
        raw("ALLOCATED", offset=2, delivery="d-ALLOCATED-1"),  # OC sent it again
        raw("ALLOCATED", offset=3, minute=1),  # the same change, another delivery
        raw("SHIPPED", offset=4),
        raw("PACKED", offset=5, minute=3),  # earlier than shipped: out of order
    ]
    assert decisions(records) == [
        ("published", "change"),
        ("published", "change"),
        ("duplicate", "same delivery"),
        ("duplicate", "same change"),
        ("published", "change"),
        ("published", "change"),
    ]
    items = [item for r in recompute(records).records for item in r.items]
    assert items[5].decision.regressed
    assert items[5].decision.previous == "shipped"
    state = recompute(records).states[StateKey("outbound", ORDER)]
    assert state.status == "shipped"  # a regression is published, not remembered as news


def test_a_record_the_processor_cannot_read_is_explained() -> None:
    bad = raw("CREATED", offset=0, body=b'{"data": [{"orderNumber": 7}]}')
    (record,) = recompute([bad]).records
    assert record.items == ()
    assert record.error is not None
    assert "entity" in record.error


def test_a_failed_record_leaves_no_state_so_its_redrive_is_news() -> None:
    first = raw("SHIPPED", offset=0, delivery="d-1")
    again = raw("SHIPPED", offset=7, delivery="d-1")  # `gateway dlq redrive` put it back
    assert decisions([first, again])[1][0] == "duplicate"
    after_failure = recompute([first, again], failed={(first.partition, first.offset)})
    assert [i.decision.outcome.value for r in after_failure.records for i in r.items] == [
        "published",
        "published",
    ]
    ids = [e.event_id for r in after_failure.records for i in r.items for e in i.events]
    assert ids[0] == ids[1]  # the same delivery: the same deterministic ce_id


async def test_the_event_ids_are_the_ones_the_processor_publishes(tmp_path: Path) -> None:
    records = [
        raw("CREATED", offset=0),
        raw("CREATED", offset=1, delivery="d-CREATED-0"),
        raw("SHIPPED", offset=2),
        raw("PACKED", offset=3, minute=1),
    ]
    handler = RecordHandler(Settings(), Metrics())
    view = StateView(StateStore(SqliteLog(tmp_path / "unused.sqlite3"), "state"))  # empty
    handled = await handler.handle(records, view)
    published = [
        dict(out.headers)["ce_id"].decode()
        for result in handled
        if isinstance(result, Done)
        for out in result.outputs
    ]
    expected = [e.event_id for r in recompute(records).records for i in r.items for e in i.events]
    assert len(published) == 3
    assert expected == published
