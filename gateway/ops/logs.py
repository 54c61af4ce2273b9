"""Structured JSON logs on stdout: structlog for our lines, stdlib logging (uvicorn,
aiokafka, httpx) rendered through the same JSON formatter.

Our own lines (one per callback, so on the hot path) go from structlog straight to stdout:
a level-filtering bound logger and a JSON renderer, with no stdlib `LogRecord`, handler
or formatter in between. The lines look exactly as the stdlib ones do.

Never log bodies, headers or OC payloads: they carry consignees' personal data. Log ids
(delivery id, entity key, event id), outcomes and durations only.
"""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime
from json.encoder import encode_basestring_ascii
from typing import Any, TextIO

import structlog

_SHARED: list[structlog.typing.Processor] = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
]


class _NamedWriter(structlog.WriteLogger):
    """Writes rendered lines to a stream; carries its name for `add_logger_name`."""

    def __init__(self, file: TextIO, name: str) -> None:
        super().__init__(file)
        self.name = name


class NamedWriterFactory:
    def __init__(self, file: TextIO) -> None:
        self._file = file

    def __call__(self, *args: Any) -> _NamedWriter:
        return _NamedWriter(self._file, str(args[0]) if args else "")


def configure_logging(level: str = "info") -> None:
    """Send every log line to stdout as one JSON object."""
    numeric = logging.getLevelName(level.upper())
    structlog.configure(
        processors=[
            *_SHARED,
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(),
        ],
        logger_factory=NamedWriterFactory(sys.stdout),
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=_SHARED,
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                structlog.processors.JSONRenderer(),
            ],
        )
    )
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
        file = self._file or sys.stdout
        stamp = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        file.write(
            f'{{"kind": {encode_basestring_ascii(kind)}, '
            f'"outcome": {encode_basestring_ascii(outcome)}, '
            f'"delivery_id": {encode_basestring_ascii(delivery_id)}, '
            f'"entity_keys": {encode_basestring_ascii(entity_keys)}, '
            f'"latency_ms": {latency_ms!r}{self._tail}{stamp}"}}\n'
        )
        file.flush()
