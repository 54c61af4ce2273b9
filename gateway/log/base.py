"""The log port: append a batch and get positions back; consume from a committed position;
commit outputs and positions together.

Two adapters implement it: `KafkaLog` (Apache Kafka through aiokafka) and `SqliteLog`
(an embedded file in WAL mode, for one machine and as Kafka's outage spool). The pipeline
only ever sees these types, so it runs unchanged on either.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final, Protocol

Headers = tuple[tuple[str, bytes], ...]
TopicPartition = tuple[str, int]

POSITION_KEY: Final = b"gw.input-position"
"""The key of the records in which a log keeps a consumer's input positions among what
its transactions write (the Kafka log keeps the processor's in the state changelog,
gateway/log/kafka/positions.py). Whoever reads such a topic for its content skips them."""


@dataclass(frozen=True, slots=True)
class Record:
    """A record to append. `partition=None` lets the log choose by key."""

    topic: str
    value: bytes
    key: bytes | None = None
    headers: Headers = ()
    partition: int | None = None
    timestamp_ms: int | None = None

    def header(self, name: str) -> bytes | None:
        return header_value(self.headers, name)


@dataclass(frozen=True, slots=True)
class Position:
    """Where an appended record landed."""

    topic: str
    partition: int
    offset: int


@dataclass(frozen=True, slots=True)
class LogRecord:
    """A record read back from the log."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    headers: Headers = field(default=())
    timestamp_ms: int = 0

    @property
    def topic_partition(self) -> TopicPartition:
        return (self.topic, self.partition)

    def header(self, name: str) -> bytes | None:
        return header_value(self.headers, name)


def header_value(headers: Headers, name: str) -> bytes | None:
    """The last value of header `name`, or None."""
    found: bytes | None = None
    for key, value in headers:
        if key == name:
            found = value
    return found


class AssignmentListener(Protocol):
    """Told which partitions a consumer owns; awaited before ownership changes."""

    async def on_assigned(self, partitions: set[TopicPartition]) -> None: ...

    async def on_revoked(self, partitions: set[TopicPartition]) -> None: ...


class LogConsumer(Protocol):
    """A member of a consumer group reading some topics from their committed positions."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def fetch(self, max_records: int, timeout_s: float) -> list[LogRecord]:
        """Up to `max_records` records after the last fetched ones; [] after `timeout_s`."""
        ...

    async def commit(
        self,
        outputs: Mapping[TopicPartition, Sequence[Record]],
        positions: Mapping[TopicPartition, int],
    ) -> None:
        """For each owned input partition, append the outputs derived from it and move
        its position (the next offset to read) as one atomic step: after a crash, either
        both happened or neither did. Partitions are independent units of work."""
        ...

    async def rewind(self) -> None:
        """Fetch again from the committed positions (after a failed batch)."""
        ...

    async def lag(self) -> dict[TopicPartition, int]:
        """Records not yet committed per owned partition."""
        ...


class Log(Protocol):
    """A durable, ordered-per-key, append-only log of topics."""

    name: str

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def append(self, records: Sequence[Record]) -> list[Position]:
        """Append `records`; returns only once every one is durable, in input order."""
        ...

    def consumer(
        self, group: str, topics: Sequence[str], listener: AssignmentListener | None = None
    ) -> LogConsumer:
        """A consumer in `group`, reading with read-committed isolation."""
        ...

    def read(
        self,
        topic: str,
        *,
        partitions: Sequence[int] | None = None,
        since_ms: int | None = None,
    ) -> AsyncIterator[LogRecord]:
        """Committed records of `topic` from `since_ms` (or the beginning) up to the end
        as it was when the read began. Independent of any consumer group."""
        ...

    async def writable(self) -> bool:
        """Whether an append would be accepted now (readiness)."""
        ...


class Lease(Protocol):
    """At most one holder at a time among the gateway's replicas (for singleton jobs)."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    def held(self) -> bool:
        """Whether this process holds the lease now."""
        ...


class SoleLease:
    """The lease of a process that is alone by construction (the embedded log allows one
    gateway per data directory)."""

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    def held(self) -> bool:
        return True
