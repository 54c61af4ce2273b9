"""The processor's per-entity state: it survives in the changelog, tolerates old record
shapes, and forgets quiet entities after the retention."""

from __future__ import annotations

import gc
import json
from dataclasses import fields
from pathlib import Path

import pytest

from gateway.log.base import POSITION_KEY, Record
from gateway.log.sqlite import SqliteLog
from gateway.process.decide import forgettable
from gateway.process.state import EntityState, FollowUp, StateKey, StateStore, StateView

TOPIC = "state"
OLD, OWED, NEW = (StateKey("outbound", k) for k in ("old", "owed", "new"))


def follow_up() -> FollowUp:
    return FollowUp("e", "t", ("order",), "d", "i", 0, 0, 0, 0)


async def test_forgotten_entities_are_forgotten_durably(tmp_path: Path) -> None:
    log = SqliteLog(tmp_path / "log.sqlite3", compacted=[TOPIC])
    await log.start()
    try:
        store = StateStore(log, TOPIC)
        store.put(0, OLD, EntityState(status="shipped", updated_ms=1_000))
        store.put(0, OWED, EntityState(updated_ms=1_000, followups=(follow_up(),)))
        store.put(0, NEW, EntityState(status="created", updated_ms=9_000))
        await log.append([store.changelog(p, k, s) for p, k, s in store.owned()])

        gone = store.forget((p, k) for p, k, s in store.owned() if forgettable(s, 7_000, 5_000))
        await log.append([r for records in gone.values() for r in records])

        assert [r.key for r in gone[0]] == [b"outbound:old"]
        restored = StateStore(log, TOPIC)
        await restored.load({("raw", 0)})
        assert sorted(k for _, k, _ in restored.owned()) == [NEW, OWED]
        assert restored.pending() == [(0, OWED)]
    finally:
        await log.close()


def test_state_records_of_other_versions_still_decode() -> None:
    written_by_an_older_version = json.dumps(
        {
            "status": "packed",
            "last_published": "x",
            "followups": [
                {
                    "event_id": "e",
                    "gone": 1,
                    "event_type": "t",
                    "missing": ["order", "no-longer-a-part"],
                    "delivery_id": "d",
                    "identity": "i",
                    "occurred_at_ms": 0,
                    "received_at_ms": 0,
                    "first_ms": 0,
                    "next_ms": 0,
                    "detail": {"skus": ["S1"], "region": "UK"},
                }
            ],
        }
    ).encode()
    state = EntityState.decode(written_by_an_older_version)
    assert state.status == "packed"
    [owed] = state.followups
    assert (owed.event_id, owed.missing, owed.skus, owed.region) == ("e", ("order",), ("S1",), "UK")
    assert EntityState.decode(state.encode()) == state


def test_a_status_this_version_does_not_know_decodes_as_none() -> None:
    assert EntityState.decode(json.dumps({"status": "teleported"}).encode()).status is None


async def test_a_changelog_record_with_no_value_removes_the_entity(tmp_path: Path) -> None:
    log = SqliteLog(tmp_path / "log.sqlite3")
    await log.start()
    try:
        await log.append(
            [
                Record(TOPIC, EntityState(status="shipped").encode(), b"outbound:k", partition=0),
                Record(TOPIC, b"", b"outbound:k", partition=0),
                Record(TOPIC, EntityState().encode(), b"not-a-state-key", partition=0),
            ]
        )
        store = StateStore(log, TOPIC)
        await store.load({("raw", 0)})
        assert list(store.owned()) == []
    finally:
        await log.close()


async def test_the_logs_position_records_are_not_entities(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # The Kafka log keeps the processor's input position in the changelog
    # (gateway/log/kafka/positions.py); the store passes over it without a word.
    log = SqliteLog(tmp_path / "log.sqlite3")
    await log.start()
    try:
        await log.append(
            [
                Record(TOPIC, EntityState(status="shipped").encode(), b"outbound:k", partition=0),
                Record(TOPIC, b"42", POSITION_KEY, partition=0),
            ]
        )
        store = StateStore(log, TOPIC)
        await store.load({("raw", 0)})
        assert [k for _, k, _ in store.owned()] == [StateKey("outbound", "k")]
        assert "unknown key" not in caplog.text
    finally:
        await log.close()


def test_encoding_covers_every_field() -> None:
    assert set(json.loads(EntityState().encode())) == {f.name for f in fields(EntityState)}
    assert set(follow_up().encode()) == {f.name for f in fields(FollowUp)}


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("outbound:OCO1", StateKey("outbound", "OCO1")),
        ("inventory:OC1:UK", StateKey("inventory", "OC1:UK")),
        ("return:R-1", StateKey("return", "R-1")),
    ],
)
def test_state_keys_round_trip(text: str, key: StateKey) -> None:
    assert StateKey.parse(text) == key
    assert str(key) == text


@pytest.mark.parametrize("text", ["", "outbound", "outbound:", "order:OCO1", ":OCO1"])
def test_malformed_state_keys_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="not a state key"):
        StateKey.parse(text)


def test_a_view_keeps_its_changes_apart_until_applied(tmp_path: Path) -> None:
    store = StateStore(SqliteLog(tmp_path / "unused.sqlite3"), TOPIC)
    store.put(0, OLD, EntityState(status="created"))
    view = StateView(store)
    view.put(0, OLD, EntityState(status="shipped", followups=(follow_up(),)))
    assert view.get(0, OLD).status == "shipped"
    assert store.get(0, OLD).status == "created"
    assert store.pending() == []
    assert [r.key for r in view.changelog()[0]] == [b"outbound:old"]
    view.apply()
    assert store.get(0, OLD).status == "shipped"
    assert store.pending() == [(0, OLD)]
    assert view.changelog() == {}


@pytest.mark.parametrize(
    "state",
    [
        EntityState(),
        EntityState(status="shipped", occurred_at_ms=5, deliveries=("d1", "d2"), updated_ms=9),
        EntityState(fingerprints=("f",), followups=(follow_up(), follow_up())),
        EntityState(
            status="created",
            reconciled_status="shipped",
            oc_status="Shipped",
            reconciled_oc_status="SHIPPED",
            followups=(FollowUp("e", "t", (), "d", "i", 1, 2, 3, 4, 5, ("s",), "UK"),),
        ),
    ],
)
def test_the_store_gives_back_the_state_it_was_given(state: EntityState) -> None:
    store = StateStore(None, TOPIC)  # type: ignore[arg-type]  # no log: nothing loaded
    store.put(3, OWED, state)
    assert store.get(3, OWED) == state
    assert list(store.owned()) == [(3, OWED, state)]
    assert store.pending() == ([(3, OWED)] if state.followups else [])


def test_a_full_collection_does_not_walk_the_entities_held() -> None:
    # The collector pauses everything while it walks what it tracks: the store's
    # entities, hundreds of thousands of them, must not be among it.
    store = StateStore(None, TOPIC)  # type: ignore[arg-type]
    gc.collect()
    before = len(gc.get_objects())
    for i in range(10_000):
        state = EntityState(status="shipped", deliveries=(f"d{i}",), fingerprints=(f"f{i}",))
        store.put(i % 6, StateKey("outbound", f"order-{i}"), state)
    gc.collect()
    assert len(gc.get_objects()) - before < 100
    assert store.get(5, StateKey("outbound", "order-11")).deliveries == ("d11",)
