"""The processor's per-entity state: it survives in the changelog, tolerates old record
shapes, and forgets quiet entities after the retention."""

from __future__ import annotations

import json
from pathlib import Path

from gateway.log.base import Record
from gateway.log.sqlite import SqliteLog
from gateway.process.state import EntityState, FollowUp, StateStore

TOPIC = "state"


def follow_up() -> FollowUp:
    return FollowUp("e", "t", ["order"], "d", "i", 0, 0, 0, 0)


async def test_expired_entities_are_forgotten_durably(tmp_path: Path) -> None:
    log = SqliteLog(tmp_path / "log.sqlite3", compacted=[TOPIC])
    await log.start()
    try:
        store = StateStore(log, TOPIC)
        store.put(0, "outbound:old", EntityState(status="shipped", updated_ms=1_000))
        store.put(0, "outbound:owed", EntityState(updated_ms=1_000, followups=[follow_up()]))
        store.put(0, "outbound:new", EntityState(status="created", updated_ms=9_000))
        await log.append([store.changelog(p, k, s) for p, k, s in store.owned()])

        gone = store.expired(before_ms=5_000)
        await log.append([r for records in gone.values() for r in records])

        assert [r.key for r in gone[0]] == [b"outbound:old"]
        restored = StateStore(log, TOPIC)
        await restored.load({("raw", 0)})
        assert sorted(k for _, k, _ in restored.owned()) == ["outbound:new", "outbound:owed"]
        assert restored.pending() == [(0, "outbound:owed")]
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
                    "missing": [],
                    "delivery_id": "d",
                    "identity": "i",
                    "occurred_at_ms": 0,
                    "received_at_ms": 0,
                    "first_ms": 0,
                    "next_ms": 0,
                }
            ],
        }
    ).encode()
    state = EntityState.decode(written_by_an_older_version)
    assert state.status == "packed"
    assert state.followups[0].event_id == "e"
    assert EntityState.decode(state.encode()) == state


async def test_a_changelog_record_with_no_value_removes_the_entity(tmp_path: Path) -> None:
    log = SqliteLog(tmp_path / "log.sqlite3")
    await log.start()
    try:
        await log.append(
            [
                Record(TOPIC, EntityState(status="x").encode(), b"k", partition=0),
                Record(TOPIC, b"", b"k", partition=0),
            ]
        )
        store = StateStore(log, TOPIC)
        await store.load({("raw", 0)})
        assert list(store.owned()) == []
    finally:
        await log.close()


def test_encoding_covers_every_field() -> None:
    from dataclasses import fields

    assert set(json.loads(EntityState().encode())) == {f.name for f in fields(EntityState)}
