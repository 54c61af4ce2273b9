"""Retention of the embedded log: the file stays bounded under steady load, and nothing a
consumer still needs goes. The log runs on an injected clock, so hours pass in a second."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from gateway.log.base import Record
from gateway.log.sqlite import SqliteLog
from gateway.ops.metrics import Metrics
from tests.conftest import SettingsFactory
from tests.helpers import running_app, wait_for

HOUR = 3600.0
START = 1_800_000_000.0


class Clock:
    """The gateway's Clock, at the time the test sets (`at`, epoch seconds)."""

    def __init__(self) -> None:
        self.at = START

    def time(self) -> float:
        return self.at

    def monotonic(self) -> float:
        return self.at

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.at, UTC)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(0)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def log(tmp_path: Path, clock: Clock) -> AsyncIterator[SqliteLog]:
    log = SqliteLog(
        tmp_path / "log.sqlite3",
        compacted=["state"],
        retention_s=HOUR,
        holders={"raw": ["processor"]},
        clock=clock,
    )
    await log.start()
    try:
        yield log
    finally:
        await log.close()


async def values(log: SqliteLog, topic: str) -> list[bytes]:
    return [r.value async for r in log.read(topic)]


async def test_a_log_under_steady_load_stays_within_its_retention(
    log: SqliteLog, clock: Clock
) -> None:
    """Five hours of 30 callbacks a minute (raw records of 1 kB, each processed into an
    event and a state record, 300 keys), with retention of one hour running every 15
    minutes. Without retention the file would grow fivefold; with it, it stays put."""
    sizes: dict[int, int] = {}
    appended = 0
    for minute in range(0, 5 * 60, 3):
        clock.at = START + minute * 60
        keys = [f"order-{n % 300}".encode() for n in range(appended, appended + 90)]
        raw = [Record("raw", bytes(1000), key) for key in keys]
        positions = await log.append(raw)
        appended += len(raw)
        events = [Record("outbound", bytes(600), r.key) for r in raw]
        states = [Record("state", bytes(100), r.key) for r in raw]
        await log.commit_group("processor", events + states, {("raw", 0): positions[-1].offset + 1})
        if minute % 15 == 12:
            report = await log.enforce_retention()
            sizes[minute] = log.size_bytes()
            if minute >= 72:
                assert report.removed > 0
                assert report.reclaimed_bytes > 0

    bound = sizes[72]  # after the first run that had records old enough to delete
    later = [size for minute, size in sizes.items() if minute > 72]
    assert max(later) <= bound * 1.2, (bound, later)
    kept = await values(log, "raw")
    # At most an hour and a quarter of records stay (retention runs every 15 minutes).
    assert 60 * 30 <= len(kept) <= 76 * 30
    assert appended > 3.5 * len(kept)
    assert len(await values(log, "state")) == 300  # compacted: one per key, never expired


async def test_retention_keeps_what_the_processor_has_not_committed_past(
    log: SqliteLog, clock: Clock
) -> None:
    positions = await log.append([Record("raw", f"r{i}".encode(), b"k") for i in range(10)])
    await log.commit_group("processor", [], {("raw", 0): positions[4].offset + 1})
    clock.at += 2 * HOUR

    report = await log.enforce_retention()

    assert report.removed == 5
    assert await values(log, "raw") == [f"r{i}".encode() for i in range(5, 10)]


async def test_a_holder_with_no_position_yet_holds_the_whole_topic(
    log: SqliteLog, clock: Clock
) -> None:
    await log.append([Record("raw", b"r", b"k") for _ in range(3)])
    clock.at += 2 * HOUR
    assert (await log.enforce_retention()).removed == 0
    assert len(await values(log, "raw")) == 3


async def test_every_consumer_group_holds_what_it_has_not_committed_past(
    log: SqliteLog, clock: Clock
) -> None:
    await log.append([Record("dlq", f"d{i}".encode(), b"k") for i in range(6)])
    await log.commit_group("processor-redrive", [], {("dlq", 0): 2})
    clock.at += 2 * HOUR
    await log.enforce_retention()
    assert await values(log, "dlq") == [b"d2", b"d3", b"d4", b"d5"]


async def test_a_topic_keeps_its_newest_record_so_offsets_go_on(
    log: SqliteLog, clock: Clock
) -> None:
    await log.append([Record("outbound", b"e", b"k") for _ in range(4)])
    clock.at += 2 * HOUR
    assert (await log.enforce_retention()).removed == 3
    positions = await log.append([Record("outbound", b"new", b"k")])
    assert positions[0].offset == 4  # not 0: a consumer at offset 4 must see it


async def test_compacted_topics_keep_the_newest_record_per_key_and_lose_old_tombstones(
    log: SqliteLog, clock: Clock
) -> None:
    await log.append(
        [
            Record("state", b"a1", b"a"),
            Record("state", b"b1", b"b"),
            Record("state", b"a2", b"a"),
            Record("state", b"", b"b"),  # b forgotten
            Record("state", b"c1", b"c"),
        ]
    )
    clock.at += 2 * HOUR
    await log.enforce_retention()
    left = [(r.key, r.value) async for r in log.read("state")]
    assert left == [(b"a", b"a2"), (b"c", b"c1")]


async def test_records_within_the_retention_stay(log: SqliteLog, clock: Clock) -> None:
    await log.append([Record("outbound", b"old", b"k")])
    clock.at += 2 * HOUR
    await log.append([Record("outbound", b"young", b"k") for _ in range(2)])
    clock.at += HOUR / 2
    await log.enforce_retention()
    assert await values(log, "outbound") == [b"young", b"young"]


async def test_the_spool_loses_no_record_to_retention_and_shrinks_after_the_drain(
    tmp_path: Path, clock: Clock
) -> None:
    spool = SqliteLog(tmp_path / "spool.sqlite3", clock=clock)  # no retention period
    await spool.start()
    try:
        positions = await spool.append([Record("raw", bytes(3000), b"k") for _ in range(500)])
        clock.at += 1000 * HOUR
        assert (await spool.enforce_retention()).removed == 0
        assert len(await values(spool, "raw")) == 500
        grown = spool.size_bytes()

        await spool.delete_through("raw", positions[-1].offset)  # Kafka confirmed them
        report = await spool.enforce_retention()

        assert report.reclaimed_bytes > 1_000_000
        assert spool.size_bytes() < grown / 5
    finally:
        await spool.close()


async def test_a_file_made_without_auto_vacuum_is_converted_and_can_shrink(
    tmp_path: Path, clock: Clock
) -> None:
    path = tmp_path / "log.sqlite3"
    old = sqlite3.connect(path, isolation_level=None)
    old.execute("PRAGMA journal_mode=WAL")
    old.execute(
        "CREATE TABLE records (topic TEXT NOT NULL, offset INTEGER NOT NULL, key BLOB, "
        "value BLOB NOT NULL, headers TEXT NOT NULL, ts INTEGER NOT NULL, "
        "PRIMARY KEY (topic, offset)) WITHOUT ROWID"
    )
    old.executemany(
        "INSERT INTO records VALUES ('outbound', ?, 'k', zeroblob(3000), '[]', 0)",
        [(i,) for i in range(500)],
    )
    old.close()

    log = SqliteLog(path, retention_s=HOUR, clock=clock)
    await log.start()
    try:
        assert log.conn.execute("PRAGMA auto_vacuum").fetchone()[0] == 2  # incremental
        assert len(await values(log, "outbound")) == 500  # converted, nothing lost
        before = log.size_bytes()
        report = await log.enforce_retention()
        assert report.removed == 499
        assert log.size_bytes() < before / 5
    finally:
        await log.close()


async def test_the_gateway_runs_retention_and_exports_what_it_did(
    make_settings: SettingsFactory,
) -> None:
    # Records older than a second go, at most a tenth of a second after that.
    settings = make_settings(embedded_retention_hours=1 / 3600, retention_interval_s=0.1)
    async with running_app(settings) as (client, gateway):
        assert isinstance(gateway.log, SqliteLog)
        await gateway.log.append(
            [Record(settings.topic_outbound, bytes(3000), b"k") for _ in range(200)]
        )

        async def removed() -> bool:
            return _sample(gateway.metrics, "gateway_log_retention_removed_records_total") >= 199

        await wait_for(removed, timeout_s=60)
        await wait_for(
            lambda: _positive(gateway.metrics, "gateway_log_retention_reclaimed_bytes_total"),
            timeout_s=60,
        )
        metrics = (await client.get("/metrics")).text
    assert 'gateway_log_retention_removed_records_total{log="embedded"}' in metrics
    assert 'gateway_log_writable{log="embedded"} 1.0' in metrics


def _sample(metrics: Metrics, name: str) -> float:
    value = metrics.registry.get_sample_value(name, {"log": "embedded"})
    return value or 0.0


async def _positive(metrics: Metrics, name: str) -> bool:
    return _sample(metrics, name) > 0
