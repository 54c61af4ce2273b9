"""The embedded log when its file cannot take writes: a full disk (SQLite's page limit,
`PRAGMA max_page_count`, which needs no root and behaves the same everywhere) or
refused writes. Every write rolls back whole, says why, and the log takes writes again
by itself once there is room."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gateway.errors import LogUnavailable
from gateway.log.base import Record
from gateway.log.sqlite import SqliteLog
from gateway.log.sqlite_file import error_reason

# Bigger than what fits in a page's cell, so every append needs a new (overflow) page.
BIG = b"x" * 6000


def _error(code: int | None) -> sqlite3.Error:
    error = sqlite3.OperationalError("boom")
    if code is not None:
        error.sqlite_errorcode = code
    return error


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        (sqlite3.SQLITE_FULL, "disk_full"),
        (sqlite3.SQLITE_IOERR, "io_error"),
        (sqlite3.SQLITE_IOERR_WRITE, "io_error"),  # extended codes map by their low byte
        (sqlite3.SQLITE_IOERR_FSYNC, "io_error"),
        (sqlite3.SQLITE_BUSY, "busy"),
        (sqlite3.SQLITE_BUSY_SNAPSHOT, "busy"),
        (sqlite3.SQLITE_LOCKED, "busy"),
        (sqlite3.SQLITE_READONLY, "read_only"),
        (sqlite3.SQLITE_CORRUPT, "corrupt"),
        (sqlite3.SQLITE_NOTADB, "corrupt"),
        (sqlite3.SQLITE_CANTOPEN, "cannot_open"),
        (sqlite3.SQLITE_NOMEM, "out_of_memory"),
        (sqlite3.SQLITE_ERROR, "other"),
        (None, "other"),
    ],
)
def test_error_reasons(code: int | None, reason: str) -> None:
    assert error_reason(_error(code)) == reason


class Watched:
    def __init__(self, log: SqliteLog) -> None:
        self.errors: list[str] = []
        self.writable: list[bool] = []
        log.on_write_error = self.errors.append
        log.on_writable = self.writable.append


@pytest.fixture
async def log(tmp_path: Path) -> AsyncIterator[SqliteLog]:
    log = SqliteLog(tmp_path / "log.sqlite3")
    await log.start()
    try:
        yield log
    finally:
        await log.close()


async def fill(log: SqliteLog) -> None:
    """No room left: free pages given back to the file system, and no growth allowed."""
    await log.enforce_retention()
    await log.set_pragma("max_page_count", 1)  # SQLite raises it to the current size


async def test_a_full_log_fails_appends_whole_and_recovers_by_itself(log: SqliteLog) -> None:
    watched = Watched(log)
    await log.append([Record("raw", BIG, b"k")])
    await fill(log)

    with pytest.raises(LogUnavailable, match="full"):
        await log.append([Record("raw", b"small", b"k"), Record("raw", BIG, b"k")])

    assert not log.conn.in_transaction  # SQLite rolled back; no ROLLBACK error hid why
    assert watched.errors == ["disk_full"]
    assert watched.writable == [False]
    assert not await log.writable()  # the probe write fails too
    assert watched.errors == ["disk_full", "disk_full"]
    assert [r.value for r in [r async for r in log.read("raw")]] == [BIG]  # nothing half

    await log.set_pragma("max_page_count", None)  # space is back
    assert await log.writable()
    assert watched.writable == [False, True]
    positions = await log.append([Record("raw", BIG, b"k")])
    assert [p.offset for p in positions] == [1]  # offsets go on where they were


async def test_a_failed_commit_leaves_neither_outputs_nor_positions(log: SqliteLog) -> None:
    await log.append([Record("raw", b"in", b"k")])
    await fill(log)

    with pytest.raises(LogUnavailable):
        await log.commit_group("g", [Record("out", BIG, b"k")], {("raw", 0): 1})

    assert await log.committed("g", "raw") == 0
    assert [r async for r in log.read("out")] == []
    await log.set_pragma("max_page_count", None)
    await log.commit_group("g", [Record("out", BIG, b"k")], {("raw", 0): 1})
    assert await log.committed("g", "raw") == 1


async def test_refused_writes_fail_every_write_path_and_reads_go_on(log: SqliteLog) -> None:
    watched = Watched(log)
    await log.append([Record("raw", b"a", b"k")])
    await log.set_pragma("query_only", 1)

    with pytest.raises(LogUnavailable):
        await log.append([Record("raw", b"b", b"k")])
    with pytest.raises(LogUnavailable):
        await log.commit_group("g", [], {("raw", 0): 1})
    with pytest.raises(LogUnavailable):
        await log.delete_through("raw", 0)
    with pytest.raises(LogUnavailable):
        await log.enforce_retention()
    assert set(watched.errors) == {"read_only"}
    assert len(watched.errors) == 4
    assert [r.value async for r in log.read("raw")] == [b"a"]

    await log.set_pragma("query_only", None)
    await log.append([Record("raw", b"b", b"k")])
    assert watched.writable == [False, True]  # the successful append said so


async def test_many_failed_batches_leave_the_writer_working(log: SqliteLog) -> None:
    await fill(log)
    for _ in range(5):
        with pytest.raises(LogUnavailable):
            await log.append([Record("raw", BIG, b"k")])
    await log.set_pragma("max_page_count", None)
    positions = await log.append([Record("raw", BIG, b"k") for _ in range(3)])
    assert [p.offset for p in positions] == [0, 1, 2]


async def test_only_fault_pragmas_can_be_set(log: SqliteLog) -> None:
    with pytest.raises(ValueError, match="journal_mode"):
        await log.set_pragma("journal_mode", 0)
