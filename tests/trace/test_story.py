"""The story puts what was found next to what was decided, and says loudly what is wrong."""

from __future__ import annotations

from collections.abc import Sequence

from gateway.log.base import LogRecord
from gateway.process.cloudevents import event_id
from gateway.process.dlq import dead_letter, given_up
from gateway.process.pii import PiiPolicy
from gateway.process.state import FollowUp, StateKey
from gateway.trace.mask import BodyMask
from gateway.trace.recompute import recompute
from gateway.trace.story import Story, tell
from schemas.events import OUTBOUND_ENRICHED, OUTBOUND_STATUS_CHANGED
from tests.trace.builders import ORDER, T0, as_read, event, raw

TOPICS = {"outbound": "oc.outbound.orders.v1", "return": "r", "inventory": "i"}
MASK = BodyMask(PiiPolicy({}, ""), "")


def story(
    records: Sequence[LogRecord],
    events: Sequence[LogRecord] = (),
    dead: Sequence[LogRecord] = (),
    quarantine: Sequence[LogRecord] = (),
) -> Story:
    failed = {
        (r.partition, r.offset)
        for r in records
        if any(d.header("gw-original-offset") == str(r.offset).encode() for d in dead)
    }
    return tell(
        ORDER,
        "embedded",
        None,
        recompute(records, failed),
        events=events,
        dead=dead,
        quarantine=quarantine,
        mask=MASK,
        topic_for=TOPICS,
    )


def ce_id_of(record: LogRecord) -> str:
    return recompute([record]).records[0].items[0].events[0].event_id


def test_every_decision_with_its_event_found_has_no_problem() -> None:
    created, again = raw("CREATED", offset=0), raw("CREATED", offset=1, delivery="d-CREATED-0")
    found = event(ce_id_of(created), {"status": "created"}, offset=0)
    told = story([created, again], [found])
    assert told.problems == []
    first, second = told.deliveries
    assert first["outcome"] == "published"
    assert first["items"][0]["events"][0]["found"][0]["offset"] == 0
    assert second["outcome"] == "duplicate"
    assert second["items"][0]["events"] == []
    assert told.events[0]["explained"]


def test_a_published_decision_without_its_event_is_the_first_problem() -> None:
    created, shipped = raw("CREATED", offset=0), raw("SHIPPED", offset=1)
    told = story([created, shipped], [event(ce_id_of(created), {"status": "created"}, offset=0)])
    (problem,) = told.problems
    assert ce_id_of(shipped) in problem
    assert "decided published" in problem
    assert told.deliveries[1]["items"][0]["events"][0]["found"] == []


def test_a_dead_lettered_delivery_shows_why_and_expects_no_event() -> None:
    shipped = raw("SHIPPED", offset=3)
    letter = as_read(dead_letter(shipped, "dlq", "unexpected_error: boom", 5, T0), 0, 0)
    told = story([shipped], dead=[letter])
    delivery = told.deliveries[0]
    assert delivery["outcome"] == "dead_lettered"
    assert delivery["dead_letters"][0]["reason"] == "unexpected_error: boom"
    assert delivery["items"][0]["events"] == []
    assert told.problems == [
        f"delivery {delivery['delivery_id']}: dead-lettered: unexpected_error: boom"
    ]


def test_a_record_that_cannot_be_processed_and_has_no_dead_letter_yet() -> None:
    bad = raw("CREATED", offset=0, body=b'{"data": [{"orderNumber": 7}]}')
    told = story([bad])
    assert told.deliveries[0]["outcome"] == "dead_lettered"
    assert "no dead letter" in told.problems[0]


def owed_event(ce_id: str) -> LogRecord:
    data = {
        "status": "shipped",
        "enrichment": {"status": "unavailable", "missing": ["order"], "followUp": True},
    }
    return event(ce_id, data, offset=5)


def test_follow_ups_completed_owed_and_given_up() -> None:
    shipped = raw("SHIPPED", offset=0)
    status_id = ce_id_of(shipped)
    enriched_id = event_id(OUTBOUND_ENRICHED, f"d-SHIPPED-0#{ORDER}#0")
    completing = event(
        enriched_id, {"enrichesEventId": status_id}, offset=9, ce_type=OUTBOUND_ENRICHED
    )

    done = story([shipped], [owed_event(status_id), completing])
    assert done.events[0]["follow_up"] == {"state": "completed", "by": enriched_id}
    assert done.events[1]["explained"]
    assert done.problems == []

    owed = story([shipped], [owed_event(status_id)])
    assert owed.events[0]["follow_up"] == {"state": "owed", "missing": ["order"]}
    assert owed.problems == []
    (state,) = owed.state["worked_out"]
    assert state["follow_ups"] == [{"event_id": status_id, "missing": ["order"]}]
    assert done.state["worked_out"][0]["follow_ups"] == []

    follow_up = FollowUp(
        status_id,
        OUTBOUND_STATUS_CHANGED,
        ("order",),
        "d-SHIPPED-0",
        f"d-SHIPPED-0#{ORDER}#0",
        0,
        0,
        0,
        0,
        attempts=40,
    )
    letter = as_read(
        given_up(follow_up, StateKey("outbound", ORDER), "dlq", "follow_up_expired: no", T0), 0, 0
    )
    gave_up = story([shipped], [owed_event(status_id)], dead=[letter])
    assert gave_up.events[0]["follow_up"]["state"] == "given_up"
    assert "given up" in gave_up.problems[0]


def test_an_event_no_decision_asked_for_is_pointed_out() -> None:
    created = raw("CREATED", offset=0, delivery="d1")
    resent = raw("CREATED", offset=1, minute=0, delivery="d2")  # the same change again
    # The processor published the re-sent change too: its state then lacked the first.
    stray = event(
        event_id(OUTBOUND_STATUS_CHANGED, f"d2#{ORDER}#0"),
        {"status": "created", "deliveryId": "d2"},
        offset=1,
    )
    unrelated = event("e-old", {"deliveryId": "long-gone"}, offset=2)
    told = story([created, resent], [stray, unrelated])
    assert told.deliveries[1]["outcome"] == "duplicate"
    first, second, third = told.problems
    assert ce_id_of(created) in first  # the first change's own event is missing
    assert second.startswith(f"event {event_id(OUTBOUND_STATUS_CHANGED, f'd2#{ORDER}#0')}")
    assert "recomputed as duplicate (same change)" in second
    assert "outside the searched window" in third
    assert not told.events[0]["explained"]


def test_a_quarantined_delivery_is_shown_masked_and_flagged() -> None:
    held = raw(
        "CREATED",
        offset=0,
        body=b'{"data": [{"consigneeName": "Jane", "x": "OCO0000011225074GB"}]}',
        extra_headers=(("gw-reason", b"not an outbound callback"),),
    )
    told = story([], quarantine=[held])
    (quarantined,) = told.quarantined
    assert quarantined["reason"] == "not an outbound callback"
    assert quarantined["body"]["data"][0]["consigneeName"] == "[dropped]"
    assert "quarantined" in told.problems[0]
