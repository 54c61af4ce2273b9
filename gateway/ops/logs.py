"""Structured JSON logs on stdout: structlog for our lines, stdlib logging (uvicorn,
aiokafka, httpx) rendered through the same JSON formatter.

Our own lines (one per callback, so on the hot path) go from structlog straight to stdout:
a level-filtering bound logger and a JSON renderer, with no stdlib `LogRecord`, handler
or formatter in between. The lines look exactly as the stdlib ones do.

aiokafka logs some passing broker states at ERROR although it retries them itself (the
group coordinator not yet available while a new cluster creates its offsets topic, a
leader election, a broker restarting). `KAFKA_TRANSIENT_STATES` names them; their lines
go out at WARNING or INFO with a `transient` field that says what happens next, so ERROR
keeps meaning that an operator must act. Every other aiokafka line keeps its level. While
a broker is down every client retries many times a second, so each state's line goes out
at most once a second, with `repeated` saying how many like it were held back.

Never log bodies, headers or OC payloads: they carry consignees' personal data. Log ids
(delivery id, entity key, event id), outcomes and durations only.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import logging
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from json.encoder import encode_basestring_ascii
from typing import Any, TextIO

import structlog

from gateway.clock import SYSTEM_CLOCK, Clock

_SHARED: list[structlog.typing.Processor] = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
]


class TurnLines:
    """Log lines held for the end of the event-loop turn they were written in, then
    written together, one write and flush per stream (see the module docstring)."""

    def __init__(self) -> None:
        self._held: dict[TextIO, list[str]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None  # where the flush is due

    def write(self, file: TextIO, line: str) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop in this thread: at once
            file.write(line)
            file.flush()
            return
        if self._loop is not loop:
            if self._loop is not None:  # due on a loop that is gone (tests run many)
                self.flush()
            self._loop = loop
            loop.call_soon(self.flush)
        self._held.setdefault(file, []).append(line)

    def flush(self) -> None:
        self._loop = None
        held, self._held = self._held, {}
        for file, lines in held.items():
            # Nowhere to report a stream that broke meanwhile; its lines are dropped.
            with contextlib.suppress(ValueError, OSError):
                file.write("".join(lines))
                file.flush()


LINES = TurnLines()
atexit.register(LINES.flush)


class _NamedWriter(structlog.WriteLogger):
    """Writes rendered lines to a stream, by turn (`LINES`); carries its name for
    `add_logger_name`."""

    def __init__(self, file: TextIO, name: str) -> None:
        super().__init__(file)
        self.name = name

    def msg(self, message: str) -> None:
        LINES.write(self._file, message + "\n")

    log = debug = info = warn = warning = msg
    fatal = failure = err = error = critical = exception = msg


class _TurnHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """A stdlib handler whose lines go out by turn (`LINES`), as ours do."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            LINES.write(self.stream, self.format(record) + self.terminator)
        except Exception:
            self.handleError(record)


class NamedWriterFactory:
    def __init__(self, file: TextIO) -> None:
        self._file = file

    def __call__(self, *args: Any) -> _NamedWriter:
        return _NamedWriter(self._file, str(args[0]) if args else "")


@dataclass(frozen=True, slots=True)
class KafkaState:
    """A line aiokafka logs about a broker state it retries by itself."""

    logger: str  # aiokafka's logger
    message: str  # the line's format string, exactly as aiokafka writes it
    errors: frozenset[str]  # error class names among its arguments that make it passing
    level: int  # the level it is written at instead
    transient: str  # what is going on and what happens next


_CONNECTION = frozenset(
    {"KafkaConnectionError", "NodeNotReadyError", "RequestTimedOutError", "KafkaTimeoutError"}
)
_LEADERSHIP = frozenset(
    {"NotLeaderForPartitionError", "LeaderNotAvailableError", "UnknownTopicOrPartitionError"}
)
_COORDINATOR = frozenset(
    {"GroupCoordinatorNotAvailableError", "GroupLoadInProgressError", "NotCoordinatorForGroupError"}
)
_GROUP = "aiokafka.consumer.group_coordinator"
_FETCHER = "aiokafka.consumer.fetcher"
_CLIENT = "aiokafka"  # aiokafka/client.py logs as "aiokafka", not under its module name
_ANY: frozenset[str] = frozenset()  # the line is passing whatever the error

KAFKA_TRANSIENT_STATES: tuple[KafkaState, ...] = (
    KafkaState(
        _GROUP,
        "Group Coordinator Request failed: %s",
        frozenset({"GroupCoordinatorNotAvailableError", "GroupLoadInProgressError"}),
        logging.INFO,
        "the group coordinator is starting (on a new cluster, the offsets topic is being "
        "created); the consumer asks again and joins once it answers",
    ),
    KafkaState(
        _GROUP,
        "Group Coordinator Request failed: %s",
        frozenset({"NotCoordinatorForGroupError"}) | _CONNECTION,
        logging.WARNING,
        "the group coordinator moved or is unreachable; the consumer looks it up again",
    ),
    KafkaState(
        _GROUP,
        "Error sending %s to node %s [%s] -- marking coordinator dead",
        _CONNECTION | _COORDINATOR,
        logging.WARNING,
        "the group coordinator is unreachable or moved; the consumer finds it again and "
        "rejoins, its partitions wait meanwhile",
    ),
    KafkaState(
        _GROUP,
        "Heartbeat send request failed: %s. Will retry.",
        _CONNECTION | _COORDINATOR,
        logging.WARNING,
        "a heartbeat did not get through; the consumer retries and finds the coordinator again",
    ),
    KafkaState(
        _GROUP,
        "Heartbeat session expired - marking coordinator dead",
        _ANY,
        logging.WARNING,
        "no heartbeat got through for a session timeout; the consumer finds the coordinator "
        "again and rejoins, and the group reassigns the partitions",
    ),
    KafkaState(
        _GROUP,
        "LeaveGroup request failed: %s",
        _CONNECTION | _COORDINATOR,
        logging.WARNING,
        "the group notices this member left after the session timeout instead of at once",
    ),
    KafkaState(
        _FETCHER,
        "Failed fetch offsets from %s: %s",
        _LEADERSHIP | _CONNECTION,
        logging.WARNING,
        "a partition's leader is being elected (or its topic was just created); the "
        "consumer refreshes metadata and asks again",
    ),
    KafkaState(
        _FETCHER,
        "Failed fetch messages from %s: %s",
        _LEADERSHIP | _CONNECTION,
        logging.WARNING,
        "a partition's leader is being elected or unreachable; the consumer refreshes "
        "metadata and fetches again",
    ),
    KafkaState(
        "aiokafka.producer.sender",
        "Got error produce response on topic-partition %s, retrying. Error: %s",
        _LEADERSHIP
        | {"RequestTimedOutError", "NotEnoughReplicasError", "NotEnoughReplicasAfterAppendError"},
        logging.WARNING,
        "the broker cannot take the write yet (replicas catching up, a leader election, a "
        "transaction being verified); the producer retries, and the append or commit waits "
        "for it (ingest spools after GATEWAY_KAFKA_APPEND_TIMEOUT_S)",
    ),
    KafkaState(
        _CLIENT,
        'Unable connect to "%s:%s": %s',
        _ANY,
        logging.WARNING,
        "a bootstrap server is unreachable; the client tries the others and again later, "
        "and ingest spools meanwhile",
    ),
    KafkaState(
        _CLIENT,
        "Unable connect to node with id %s: %s",
        _ANY,
        logging.WARNING,
        "a broker is unreachable; the client refreshes metadata and reconnects, and ingest "
        "spools meanwhile",
    ),
    KafkaState(
        _CLIENT,
        "Unable to update metadata from %s",
        _ANY,
        logging.WARNING,
        "no broker answered a metadata request; the client tries again",
    ),
)


def _error_names(args: Sequence[object]) -> set[str]:
    """Class names of the errors among a log line's arguments (instances or classes)."""
    names = set()
    for arg in args:
        if isinstance(arg, BaseException):
            names.add(type(arg).__name__)
        elif isinstance(arg, type) and issubclass(arg, BaseException):
            names.add(arg.__name__)
    return names


def kafka_state(logger: str, message: str, args: Sequence[object]) -> KafkaState | None:
    """The transient state an aiokafka line reports, or None (the line keeps its level)."""
    errors = _error_names(args)
    for state in KAFKA_TRANSIENT_STATES:
        same_line = state.logger == logger and state.message == message
        if same_line and (not state.errors or state.errors & errors):
            return state
    return None


TRANSIENT_EVERY_S = 1.0


class KafkaStateFilter(logging.Filter):
    """Writes aiokafka's lines about transient states at their level from the table, each
    state at most once every `TRANSIENT_EVERY_S` (the next one says how many it held back)."""

    def __init__(self, threshold: int, clock: Clock = SYSTEM_CLOCK) -> None:
        super().__init__()
        self._threshold = threshold
        self._clock = clock
        self._last: dict[KafkaState, tuple[float, int]] = {}  # written at, held back

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.name.startswith("aiokafka"):
            return True
        args = record.args if isinstance(record.args, tuple) else ()
        state = kafka_state(record.name, str(record.msg), args)
        if state is None:
            return True
        if state.level < self._threshold:
            return False
        now = self._clock.monotonic()
        written, held = self._last.get(state, (float("-inf"), 0))
        if now - written < TRANSIENT_EVERY_S:
            self._last[state] = (written, held + 1)
            return False
        self._last[state] = (now, 0)
        record.levelno, record.levelname = state.level, logging.getLevelName(state.level)
        record.transient = state.transient
        if held:
            record.repeated = held
        return True


def configure_logging(level: str = "info", stream: TextIO | None = None) -> None:
    """Send every log line to `stream` (stdout) as one JSON object."""
    out = stream or sys.stdout
    numeric = logging.getLevelName(level.upper())
    structlog.configure(
        processors=[
            *_SHARED,
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(),
        ],
        logger_factory=NamedWriterFactory(out),
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        cache_logger_on_first_use=True,
    )
    handler = _TurnHandler(out)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[
                *_SHARED,
                structlog.stdlib.ExtraAdder(allow=("transient", "repeated")),
            ],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                structlog.processors.JSONRenderer(),
            ],
        )
    )
    handler.addFilter(KafkaStateFilter(numeric))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # One canonical line per callback replaces the access log.
    logging.getLogger("uvicorn.access").disabled = True
    for noisy in ("aiokafka", "kafka", "httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    # Typed as the stdlib flavour the callers were written against; at run time it is
    # structlog's filtering bound logger, which has the same level methods.
    logger: structlog.stdlib.BoundLogger = structlog.get_logger(name)
    return logger


class CallbackLine:
    """The one line per callback, on ingest's hot path: the same JSON object as
    structlog writes for `logger.info("callback", kind=..., ...)` (same keys, order,
    escaping and timestamp), rendered directly, without the processor chain, which costs
    three times as much. Values are escaped as JSON strings: they come from callers."""

    def __init__(self, logger_name: str, level: str = "info", file: TextIO | None = None) -> None:
        self._file = file
        self._enabled = logging.getLevelName(level.upper()) <= logging.INFO
        name = encode_basestring_ascii(logger_name)
        self._tail = f', "event": "callback", "level": "info", "logger": {name}, "timestamp": "'

    def write(
        self, kind: str, outcome: str, delivery_id: str, entity_keys: str, latency_ms: float
    ) -> None:
        if not self._enabled:
            return
        stamp = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        LINES.write(
            self._file or sys.stdout,
            f'{{"kind": {encode_basestring_ascii(kind)}, '
            f'"outcome": {encode_basestring_ascii(outcome)}, '
            f'"delivery_id": {encode_basestring_ascii(delivery_id)}, '
            f'"entity_keys": {encode_basestring_ascii(entity_keys)}, '
            f'"latency_ms": {latency_ms!r}{self._tail}{stamp}"}}\n',
        )
