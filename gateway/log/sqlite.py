"""The embedded log: one SQLite file in WAL mode with `synchronous=FULL`.

An append returns only after its transaction is on disk, so an acknowledged record
survives `kill -9` (and power loss). Concurrent appends share one transaction (group
commit) so the fsync cost is paid once per batch, not once per request. Each topic has a
single partition (0): order is total, which is ordered-per-key and then some. All SQLite
work runs on one dedicated thread; the event loop never blocks on disk.

A write that fails (a full disk, an I/O error) rolls back whole and is reported as
`LogUnavailable`; from then on `writable()` is false until a write succeeds again (it
tries a small one itself when asked). `enforce_retention` keeps the file bounded; the
gateway's lifespan runs it periodically. The file itself (pragmas, transactions,
retention SQL) is in sqlite_file.py.

This is a log for one machine (development, small sites) and Kafka's outage spool. It
is deliberately not a Kafka replacement: no replication, no partitions, no ACLs.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
from collections.abc import AsyncIterator, Callable, Collection, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TypeVar

from gateway.clock import SYSTEM_CLOCK, Clock
from gateway.errors import LogUnavailable
from gateway.log.base import (
    AssignmentListener,
    Headers,
    LogRecord,
    Position,
    Record,
    TopicPartition,
)
from gateway.log.sqlite_consumer import SqliteConsumer
from gateway.log.sqlite_file import (
    checkpoint,
    connect,
    error_reason,
    expire_chunk,
    file_bytes,
    probe,
    topics,
    transaction,
    vacuum_chunk,
)
from gateway.ops.logs import get_logger

T = TypeVar("T")
logger = get_logger("gateway.log")

_READ_CHUNK = 1000


def _encode_headers(headers: Headers) -> str:
    # latin-1 maps every byte to one code point, so header bytes survive JSON unchanged.
    return json.dumps([[name, value.decode("latin-1")] for name, value in headers])


def _decode_headers(text: str) -> Headers:
    return tuple((name, value.encode("latin-1")) for name, value in json.loads(text))


def _row_to_record(topic: str, row: tuple[int, bytes | None, bytes, str, int]) -> LogRecord:
    offset, key, value, headers, ts = row
    return LogRecord(topic, 0, offset, key, value, _decode_headers(headers), ts)


@dataclass
class _PendingAppend:
    records: Sequence[Record]
    future: asyncio.Future[list[Position]]


@dataclass(frozen=True, slots=True)
class RetentionReport:
    removed: int  # records deleted
    reclaimed_bytes: int  # how much smaller the files (database and WAL) got


class SqliteLog:
    """The embedded log. `compacted` topics keep only the newest record per key.

    Retention (`retention_s`, None: keep everything) never deletes a record some
    consumer group has not committed past: every group with a stored position on the
    topic, and the groups named in `holders` (topic -> groups) even before their first
    commit. `on_write_error(reason)` and `on_writable(ok)` let the owner count failed
    writes and watch the log's writability (metrics)."""

    name = "embedded"

    def __init__(
        self,
        path: Path,
        *,
        compacted: Iterable[str] = (),
        retention_s: float | None = None,
        holders: Mapping[str, Collection[str]] | None = None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.path = path
        self._compacted = frozenset(compacted)
        self._retention_s = retention_s
        self._holders = dict(holders or {})
        self._clock = clock
        self._failing: str | None = None  # why the last write failed, until one succeeds
        self.on_write_error: Callable[[str], None] = lambda reason: None
        self.on_writable: Callable[[bool], None] = lambda ok: None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-log")
        self._conn: sqlite3.Connection | None = None
        self._pending: list[_PendingAppend] = []
        self._writer: asyncio.Task[None] | None = None
        self._wake_writer = asyncio.Event()
        self._appended = asyncio.Condition()
        self._closed = False

    # --- lifecycle ---------------------------------------------------------------------
    async def start(self) -> None:
        await self._run(self._open)
        self._writer = asyncio.create_task(self._write_loop(), name="sqlite-log-writer")

    def _open(self) -> None:
        self._conn = connect(self.path)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._writer is not None:
            self._wake_writer.set()
            await self._writer
        if self._conn is not None:
            await self._run(self._conn.close)
        self._executor.shutdown(wait=True)

    async def _run(self, fn: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn)

    async def _read(self, fn: Callable[[], T]) -> T:
        try:
            return await self._run(fn)
        except sqlite3.Error as exc:
            raise LogUnavailable(f"{self.path.name} read: {exc}") from exc

    async def _write(self, what: str, fn: Callable[[], T]) -> T:
        """Run a write on the log's thread, keeping track of whether writes succeed."""
        try:
            result = await self._run(fn)
        except sqlite3.Error as exc:
            raise self._write_failed(what, exc) from exc
        if self._failing is not None:
            logger.warning("log takes writes again", path=str(self.path), reason=self._failing)
            self._failing = None
            self.on_writable(True)
        return result

    def _write_failed(self, what: str, exc: sqlite3.Error) -> LogUnavailable:
        reason = error_reason(exc)
        self.on_write_error(reason)
        if self._failing is None:
            logger.error(
                "log cannot write", path=str(self.path), op=what, reason=reason, error=str(exc)
            )
            self.on_writable(False)
        self._failing = reason
        return LogUnavailable(f"{self.path.name} {what}: {exc}")

    @property
    def conn(self) -> sqlite3.Connection:
        if self._conn is None:
            raise LogUnavailable("the embedded log is not open")
        return self._conn

    async def set_pragma(self, name: str, value: int | None) -> None:
        """Faults on demand, for fault tests and drills: `max_page_count` caps the file
        (writes that need more fail as SQLITE_FULL; None: SQLite's maximum again), and
        `query_only` 1 refuses every write (SQLITE_READONLY)."""
        defaults = {"max_page_count": 2**31 - 2, "query_only": 0}
        if name not in defaults:
            raise ValueError(f"not a fault pragma: {name}")
        setting = defaults[name] if value is None else int(value)
        await self._run(lambda: self.conn.execute(f"PRAGMA {name}={setting}").fetchall())

    # --- writing -----------------------------------------------------------------------
    async def append(self, records: Sequence[Record]) -> list[Position]:
        if self._closed:
            raise LogUnavailable("the embedded log is closed")
        if not records:
            return []
        future: asyncio.Future[list[Position]] = asyncio.get_running_loop().create_future()
        self._pending.append(_PendingAppend(records, future))
        self._wake_writer.set()
        return await future

    async def _write_loop(self) -> None:
        while True:
            await self._wake_writer.wait()
            self._wake_writer.clear()
            batch, self._pending = self._pending, []
            if batch:
                await self._write_batch(batch)
            if self._closed and not self._pending:
                return

    async def _write_batch(self, batch: list[_PendingAppend]) -> None:
        try:
            results = await self._write(
                "append", lambda: self._insert_all([p.records for p in batch])
            )
        except Exception as exc:  # every waiting append gets the answer; the loop lives on
            for pending in batch:
                if not pending.future.done():
                    failure = LogUnavailable(str(exc)) if isinstance(exc, LogUnavailable) else exc
                    pending.future.set_exception(failure)
            return
        for pending, positions in zip(batch, results, strict=True):
            if not pending.future.done():
                pending.future.set_result(positions)
        async with self._appended:
            self._appended.notify_all()

    def _insert_all(
        self,
        groups: Sequence[Sequence[Record]],
        positions_for: tuple[str, Mapping[TopicPartition, int]] | None = None,
    ) -> list[list[Position]]:
        """Insert record groups (and optionally move a group's positions) in one transaction."""
        conn = self.conn
        now_ms = int(self._clock.time() * 1000)
        results: list[list[Position]] = []
        next_offset: dict[str, int] = {}
        # The write lock is held from the start, so the offsets read here stay ours.
        with transaction(conn):
            for records in groups:
                results.append(
                    [self._insert(conn, record, now_ms, next_offset) for record in records]
                )
            if positions_for is not None:
                group, positions = positions_for
                conn.executemany(
                    "INSERT INTO positions (grp, topic, offset) VALUES (?, ?, ?) "
                    "ON CONFLICT (grp, topic) DO UPDATE SET offset = excluded.offset",
                    [(group, topic, offset) for (topic, _), offset in positions.items()],
                )
        return results

    def _insert(
        self, conn: sqlite3.Connection, record: Record, now_ms: int, next_offset: dict[str, int]
    ) -> Position:
        topic = record.topic
        offset = next_offset.get(topic)
        if offset is None:
            row = conn.execute(
                "SELECT COALESCE(MAX(offset) + 1, 0) FROM records WHERE topic = ?", (topic,)
            ).fetchone()
            offset = int(row[0])
        if topic in self._compacted and record.key is not None:
            conn.execute("DELETE FROM records WHERE topic = ? AND key = ?", (topic, record.key))
        conn.execute(
            "INSERT INTO records (topic, offset, key, value, headers, ts) VALUES (?,?,?,?,?,?)",
            (
                topic,
                offset,
                record.key,
                record.value,
                _encode_headers(record.headers),
                record.timestamp_ms if record.timestamp_ms is not None else now_ms,
            ),
        )
        next_offset[topic] = offset + 1
        return Position(topic, 0, offset)

    async def commit_group(
        self, group: str, outputs: Sequence[Record], positions: Mapping[TopicPartition, int]
    ) -> None:
        """Append `outputs` and store `group`'s positions in one transaction."""
        await self._write("commit", lambda: self._insert_all([outputs], (group, positions)))
        async with self._appended:
            self._appended.notify_all()

    async def delete_through(self, topic: str, offset: int) -> None:
        """Delete `topic`'s records up to and including `offset` (the spool drainer's trim)."""

        def delete() -> None:
            with transaction(self.conn):
                self.conn.execute(
                    "DELETE FROM records WHERE topic = ? AND offset <= ?", (topic, offset)
                )

        await self._write("trim", delete)

    async def enforce_retention(self) -> RetentionReport:
        """Delete expired records, then give the free space back to the file system.

        Expired: older than the retention period, at an offset every consumer group has
        committed past, not a topic's newest record; in compacted topics only tombstones
        (the newest record per key stays). Without a retention period (the spool) only
        the space is reclaimed: spooled records leave only through `delete_through`,
        once Kafka confirmed them. Each step is its own short transaction, so appends
        go on meanwhile."""
        before = await self._run(lambda: file_bytes(self.path))
        removed = 0
        if self._retention_s is not None:
            cutoff = int((self._clock.time() - self._retention_s) * 1000)
            for topic in await self._read(lambda: topics(self.conn)):
                start: int | None = 0
                while start is not None:
                    step = partial(
                        expire_chunk,
                        self.conn,
                        topic,
                        start,
                        cutoff,
                        self._holders.get(topic, ()),
                        topic in self._compacted,
                    )
                    gone, start = await self._write("retention", step)
                    removed += gone
        while await self._write("vacuum", lambda: vacuum_chunk(self.conn)):
            pass
        await self._write("checkpoint", lambda: checkpoint(self.conn))
        after = await self._run(lambda: file_bytes(self.path))
        return RetentionReport(removed, max(0, before - after))

    def size_bytes(self) -> int:
        """Bytes on disk of the log's file and its WAL."""
        return file_bytes(self.path)

    # --- reading -----------------------------------------------------------------------
    async def committed(self, group: str, topic: str) -> int:
        def query() -> int:
            row = self.conn.execute(
                "SELECT offset FROM positions WHERE grp = ? AND topic = ?", (group, topic)
            ).fetchone()
            return int(row[0]) if row else 0

        return await self._read(query)

    async def rows_after(self, topic: str, offset: int, limit: int) -> list[LogRecord]:
        def query() -> list[LogRecord]:
            rows = self.conn.execute(
                "SELECT offset, key, value, headers, ts FROM records "
                "WHERE topic = ? AND offset >= ? ORDER BY offset LIMIT ?",
                (topic, offset, limit),
            ).fetchall()
            return [_row_to_record(topic, row) for row in rows]

        return await self._read(query)

    async def end_offset(self, topic: str) -> int:
        def query() -> int:
            row = self.conn.execute(
                "SELECT COALESCE(MAX(offset) + 1, 0) FROM records WHERE topic = ?", (topic,)
            ).fetchone()
            return int(row[0])

        return await self._read(query)

    async def stats(self, topic: str) -> tuple[int, int, int | None]:
        """(records, bytes of values, oldest timestamp in ms) of one topic."""

        def query() -> tuple[int, int, int | None]:
            row = self.conn.execute(
                "SELECT COUNT(*), COALESCE(SUM(LENGTH(value)), 0), MIN(ts) "
                "FROM records WHERE topic = ?",
                (topic,),
            ).fetchone()
            return int(row[0]), int(row[1]), None if row[2] is None else int(row[2])

        return await self._read(query)

    async def wait_for_append(self, timeout_s: float) -> None:
        """Return after the next append in this process, or after `timeout_s`."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s), self._appended:
                await self._appended.wait()

    async def read(
        self,
        topic: str,
        *,
        partitions: Sequence[int] | None = None,
        since_ms: int | None = None,
    ) -> AsyncIterator[LogRecord]:
        if partitions is not None and 0 not in partitions:
            return
        end = await self.end_offset(topic)
        offset = 0
        while offset < end:
            rows = await self.rows_after(topic, offset, _READ_CHUNK)
            if not rows:
                return
            for record in rows:
                if record.offset >= end:
                    return
                if since_ms is None or record.timestamp_ms >= since_ms:
                    yield record
            offset = rows[-1].offset + 1

    async def writable(self) -> bool:
        """Open, and writes succeed: after a failed write, true again only once a write
        of about one batch (`sqlite_file.probe`) goes through."""
        if self._closed or self._conn is None:
            return False
        if self._failing is None:
            return True
        with contextlib.suppress(LogUnavailable):
            await self._write("probe", lambda: probe(self.conn))
        return self._failing is None

    def consumer(
        self, group: str, topics: Sequence[str], listener: AssignmentListener | None = None
    ) -> SqliteConsumer:
        return SqliteConsumer(self, group, topics, listener)
