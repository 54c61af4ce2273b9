"""Where a trace reads: the records of one key, without reading whole topics.

`Source` is the port; two adapters implement it, chosen from the settings by `open_source`:

- `KafkaSource` reads only the partition a key can be on (Kafka's default partitioner,
  gateway/log/kafka/partitioner.py), from a start time (the broker's time index,
  `offsets_for_times`), comparing keys as bytes before anything is decoded; a caller that
  knows what it is looking for can stop the read as soon as it has found it.
- `EmbeddedSource` asks the embedded log's SQLite file, read-only, through its
  `(topic, key)` index.

Both only read; neither joins a consumer group or writes anything.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Protocol

from gateway.log.base import Headers, LogRecord
from gateway.log.kafka import KafkaLog
from gateway.log.kafka.partitioner import partition_for
from gateway.settings import Settings

Enough = Callable[[Sequence[LogRecord]], bool]
"""Told the matching records found so far; True stops the read early."""


class Source(Protocol):
    name: str

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def keyed(
        self,
        topic: str,
        key: bytes,
        since_ms: int | None,
        *,
        partition: int | None = None,
        enough: Enough | None = None,
    ) -> list[LogRecord]:
        """`topic`'s records whose key is `key`, in offset order, written at or after
        `since_ms`. Only the partition the default partitioner gives the key is read,
        or `partition` when the writer chose it (the state changelog)."""
        ...

    async def containing(self, topic: str, needle: bytes, since_ms: int | None) -> list[LogRecord]:
        """`topic`'s records whose value contains `needle` (for small topics keyed by
        something else: the quarantine is keyed by delivery)."""
        ...

    async def newest(self, topic: str, since_ms: int | None, limit: int) -> list[LogRecord]:
        """Up to `limit` of `topic`'s newest records at or after `since_ms`, newest
        first (for small topics: the DLQ and the quarantine)."""
        ...

    async def partition_of(self, topic: str, key: bytes) -> int | None:
        """The partition `key` is on in `topic` (None: the topic does not exist)."""
        ...


class KafkaSource:
    """A `Source` on Kafka, through the Kafka log's reads."""

    name = "kafka"

    def __init__(self, log: KafkaLog) -> None:
        self._log = log
        self._counts: dict[str, int] = {}

    async def start(self) -> None:
        await self._log.start()

    async def close(self) -> None:
        await self._log.close()

    async def _count(self, topic: str) -> int:
        count = self._counts.get(topic)
        if count is None:
            count = len(await self._log.partitions(topic))
            if count:
                self._counts[topic] = count
        return count

    async def partition_of(self, topic: str, key: bytes) -> int | None:
        count = await self._count(topic)
        return partition_for(key, count) if count else None

    async def keyed(
        self,
        topic: str,
        key: bytes,
        since_ms: int | None,
        *,
        partition: int | None = None,
        enough: Enough | None = None,
    ) -> list[LogRecord]:
        chosen = partition if partition is not None else await self.partition_of(topic, key)
        if chosen is None:
            return []
        found: list[LogRecord] = []
        reading = self._log.read(topic, partitions=[chosen], since_ms=since_ms)
        try:
            async for record in reading:
                if record.key == key:
                    found.append(record)
                    if enough is not None and enough(found):
                        break
        finally:
            if isinstance(reading, AsyncGenerator):
                await reading.aclose()  # stops its consumer now, not when collected
        return found

    async def containing(self, topic: str, needle: bytes, since_ms: int | None) -> list[LogRecord]:
        if not await self._count(topic):
            return []
        found = [r async for r in self._log.read(topic, since_ms=since_ms) if needle in r.value]
        return sorted(found, key=lambda r: (r.timestamp_ms, r.partition, r.offset))

    async def newest(self, topic: str, since_ms: int | None, limit: int) -> list[LogRecord]:
        if not await self._count(topic):
            return []
        kept: list[LogRecord] = []
        async for record in self._log.read(topic, since_ms=since_ms):
            kept.append(record)
            if len(kept) > 2 * limit:
                kept = _newest_first(kept)[:limit]
        return _newest_first(kept)[:limit]


def _newest_first(records: list[LogRecord]) -> list[LogRecord]:
    return sorted(records, key=lambda r: (r.timestamp_ms, r.partition, r.offset), reverse=True)


def _decode_headers(text: str) -> Headers:
    # The embedded log stores headers as JSON pairs, values in latin-1 (one code point
    # per byte): gateway/log/sqlite.py writes them.
    return tuple((name, value.encode("latin-1")) for name, value in json.loads(text))


_COLUMNS = "offset, key, value, headers, ts"
Row = tuple[int, bytes | None, bytes, str, int]


class EmbeddedSource:
    """A `Source` on the embedded log's file, opened read-only for each query (SQLite
    readers see committed transactions only, and never block the gateway's writer)."""

    name = "embedded"

    def __init__(self, path: Path) -> None:
        self._path = path

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    def _query(self, topic: str, sql: str, args: Sequence[object]) -> list[LogRecord]:
        if not self._path.exists():
            return []
        conn = sqlite3.connect(f"file:{self._path}?mode=ro", uri=True)
        try:
            rows: list[Row] = conn.execute(sql, args).fetchall()
        except sqlite3.OperationalError as exc:
            if "no such table" in str(exc):
                return []  # a file the gateway has not initialised yet
            raise
        finally:
            conn.close()
        return [
            LogRecord(topic, 0, offset, key, value, _decode_headers(headers), ts)
            for offset, key, value, headers, ts in rows
        ]

    async def _run(self, topic: str, sql: str, *args: object) -> list[LogRecord]:
        return await asyncio.to_thread(self._query, topic, sql, args)

    async def partition_of(self, topic: str, key: bytes) -> int | None:
        return 0  # one partition per topic

    async def keyed(
        self,
        topic: str,
        key: bytes,
        since_ms: int | None,
        *,
        partition: int | None = None,
        enough: Enough | None = None,
    ) -> list[LogRecord]:
        if partition not in (None, 0):
            return []
        return await self._run(
            topic,
            f"SELECT {_COLUMNS} FROM records WHERE topic = ? AND key = ? AND ts >= ? "
            "ORDER BY offset",
            topic,
            key,
            since_ms or 0,
        )

    async def containing(self, topic: str, needle: bytes, since_ms: int | None) -> list[LogRecord]:
        return await self._run(
            topic,
            f"SELECT {_COLUMNS} FROM records WHERE topic = ? AND ts >= ? "
            "AND instr(value, ?) > 0 ORDER BY offset",
            topic,
            since_ms or 0,
            needle,
        )

    async def newest(self, topic: str, since_ms: int | None, limit: int) -> list[LogRecord]:
        return await self._run(
            topic,
            f"SELECT {_COLUMNS} FROM records WHERE topic = ? AND ts >= ? "
            "ORDER BY offset DESC LIMIT ?",
            topic,
            since_ms or 0,
            limit,
        )


def build_source(settings: Settings) -> Source:
    """Kafka when the settings name brokers, else the embedded log's file."""
    if settings.uses_kafka:
        return KafkaSource(KafkaLog(settings))
    return EmbeddedSource(settings.data_dir / "log.sqlite3")


@contextlib.asynccontextmanager
async def open_source(settings: Settings) -> AsyncIterator[Source]:
    source = build_source(settings)
    await source.start()
    try:
        yield source
    finally:
        await source.close()
