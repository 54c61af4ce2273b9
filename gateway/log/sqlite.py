"""The embedded log: one SQLite file in WAL mode with `synchronous=FULL`.

An append returns only after its transaction is on disk, so an acknowledged record
survives `kill -9` (and power loss). Concurrent appends share one transaction (group
commit) so the fsync cost is paid once per batch, not once per request. Each topic has a
single partition (0): order is total, which is ordered-per-key and then some. All SQLite
work runs on one dedicated thread; the event loop never blocks on disk.

This is a log for one machine (development, small sites) and Kafka's outage spool. It
is deliberately not a Kafka replacement: no replication, no partitions, no ACLs.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from gateway.errors import LogUnavailable
from gateway.log.base import (
    AssignmentListener,
    Headers,
    LogRecord,
    Position,
    Record,
    TopicPartition,
)

T = TypeVar("T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    topic   TEXT    NOT NULL,
    offset  INTEGER NOT NULL,
    key     BLOB,
    value   BLOB    NOT NULL,
    headers TEXT    NOT NULL,
    ts      INTEGER NOT NULL,
    PRIMARY KEY (topic, offset)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS records_by_key ON records (topic, key);
CREATE TABLE IF NOT EXISTS positions (
    grp    TEXT    NOT NULL,
    topic  TEXT    NOT NULL,
    offset INTEGER NOT NULL,
    PRIMARY KEY (grp, topic)
) WITHOUT ROWID;
"""
_POLL_S = 0.25  # how often a waiting consumer looks for rows written by other processes
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


class SqliteLog:
    """The embedded log. `compacted` topics keep only the newest record per key."""

    name = "embedded"

    def __init__(
        self,
        path: Path,
        *,
        compacted: Iterable[str] = (),
        retention_s: float | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = path
        self._compacted = frozenset(compacted)
        self._retention_s = retention_s
        self._clock = clock
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
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA busy_timeout=5000")
        conn.executescript(_SCHEMA)
        self._conn = conn

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

    @property
    def conn(self) -> sqlite3.Connection:
        if self._conn is None:
            raise LogUnavailable("the embedded log is not open")
        return self._conn

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
            results = await self._run(lambda: self._insert_all([p.records for p in batch]))
        except sqlite3.Error as exc:
            for pending in batch:
                if not pending.future.done():
                    pending.future.set_exception(LogUnavailable(f"embedded log write: {exc}"))
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
        now_ms = int(self._clock() * 1000)
        results: list[list[Position]] = []
        # BEGIN IMMEDIATE takes the write lock, so offsets read here stay ours even when
        # another process (a CLI command) appends to the same file.
        conn.execute("BEGIN IMMEDIATE")
        next_offset: dict[str, int] = {}
        try:
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
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
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
        try:
            await self._run(lambda: self._insert_all([outputs], (group, positions)))
        except sqlite3.Error as exc:
            raise LogUnavailable(f"embedded log commit: {exc}") from exc
        async with self._appended:
            self._appended.notify_all()

    async def delete_through(self, topic: str, offset: int) -> None:
        """Delete `topic`'s records up to and including `offset` (the spool drainer's trim)."""

        def delete() -> None:
            self.conn.execute(
                "DELETE FROM records WHERE topic = ? AND offset <= ?", (topic, offset)
            )

        await self._run(delete)

    async def enforce_retention(self) -> int:
        """Delete records older than the retention period; returns how many went."""
        if self._retention_s is None:
            return 0
        cutoff = int((self._clock() - self._retention_s) * 1000)
        keep = sorted(self._compacted)

        def delete() -> int:
            marks = ",".join("?" * len(keep))
            clause = f" AND topic NOT IN ({marks})" if keep else ""
            cursor = self.conn.execute(f"DELETE FROM records WHERE ts < ?{clause}", (cutoff, *keep))
            return cursor.rowcount

        return await self._run(delete)

    # --- reading -----------------------------------------------------------------------
    async def committed(self, group: str, topic: str) -> int:
        def query() -> int:
            row = self.conn.execute(
                "SELECT offset FROM positions WHERE grp = ? AND topic = ?", (group, topic)
            ).fetchone()
            return int(row[0]) if row else 0

        return await self._run(query)

    async def rows_after(self, topic: str, offset: int, limit: int) -> list[LogRecord]:
        def query() -> list[LogRecord]:
            rows = self.conn.execute(
                "SELECT offset, key, value, headers, ts FROM records "
                "WHERE topic = ? AND offset >= ? ORDER BY offset LIMIT ?",
                (topic, offset, limit),
            ).fetchall()
            return [_row_to_record(topic, row) for row in rows]

        return await self._run(query)

    async def end_offset(self, topic: str) -> int:
        def query() -> int:
            row = self.conn.execute(
                "SELECT COALESCE(MAX(offset) + 1, 0) FROM records WHERE topic = ?", (topic,)
            ).fetchone()
            return int(row[0])

        return await self._run(query)

    async def stats(self, topic: str) -> tuple[int, int, int | None]:
        """(records, bytes of values, oldest timestamp in ms) of one topic."""

        def query() -> tuple[int, int, int | None]:
            row = self.conn.execute(
                "SELECT COUNT(*), COALESCE(SUM(LENGTH(value)), 0), MIN(ts) "
                "FROM records WHERE topic = ?",
                (topic,),
            ).fetchone()
            return int(row[0]), int(row[1]), None if row[2] is None else int(row[2])

        return await self._run(query)

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
        return not self._closed and self._conn is not None

    def consumer(
        self, group: str, topics: Sequence[str], listener: AssignmentListener | None = None
    ) -> SqliteConsumer:
        return SqliteConsumer(self, group, topics, listener)


class SqliteConsumer:
    """A consumer of the embedded log; it owns partition 0 of every topic it reads."""

    def __init__(
        self,
        log: SqliteLog,
        group: str,
        topics: Sequence[str],
        listener: AssignmentListener | None,
    ) -> None:
        self._log = log
        self._group = group
        self._topics = list(topics)
        self._listener = listener
        self._next: dict[str, int] = {}

    @property
    def assignment(self) -> set[TopicPartition]:
        return {(topic, 0) for topic in self._topics}

    async def start(self) -> None:
        await self.rewind()
        if self._listener is not None:
            await self._listener.on_assigned(self.assignment)

    async def stop(self) -> None:
        if self._listener is not None:
            await self._listener.on_revoked(self.assignment)

    async def rewind(self) -> None:
        for topic in self._topics:
            self._next[topic] = await self._log.committed(self._group, topic)

    async def fetch(self, max_records: int, timeout_s: float) -> list[LogRecord]:
        deadline = asyncio.get_running_loop().time() + timeout_s
        while True:
            batch: list[LogRecord] = []
            for topic in self._topics:
                room = max_records - len(batch)
                if room <= 0:
                    break
                rows = await self._log.rows_after(topic, self._next[topic], room)
                if rows:
                    self._next[topic] = rows[-1].offset + 1
                    batch.extend(rows)
            remaining = deadline - asyncio.get_running_loop().time()
            if batch or remaining <= 0:
                return batch
            await self._log.wait_for_append(min(remaining, _POLL_S))

    async def commit(
        self,
        outputs: Mapping[TopicPartition, Sequence[Record]],
        positions: Mapping[TopicPartition, int],
    ) -> None:
        # One SQLite transaction covers every partition at once.
        flat = [record for records in outputs.values() for record in records]
        await self._log.commit_group(self._group, flat, positions)

    async def lag(self) -> dict[TopicPartition, int]:
        result: dict[TopicPartition, int] = {}
        for topic in self._topics:
            end = await self._log.end_offset(topic)
            committed = await self._log.committed(self._group, topic)
            result[(topic, 0)] = max(0, end - committed)
        return result
