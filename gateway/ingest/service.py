"""Accept one callback: verify the raw bytes, check them, store them, then say so.

No HTTP here (routes.py does that) and nothing slow: no OC call, no enrichment. The
answer to OC is produced only after the log confirmed the raw record(s).
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from gateway.errors import (
    MalformedBody,
    Overloaded,
    RateLimited,
    SourceNotAllowed,
    VerificationFailed,
)
from gateway.ingest.limits import BadBody, RateLimiter, decode_json
from gateway.ingest.record import (
    Kind,
    Received,
    UnknownShape,
    delivery_id,
    entity_keys,
    quarantine_record,
    raw_records,
)
from gateway.ingest.verify import Delivery, Verifier
from gateway.log.base import Log
from gateway.ops.metrics import Metrics
from gateway.ops.tracing import Tracing
from gateway.settings import Settings

_OVERLOAD_RETRY_S = 1.0


@dataclass(frozen=True, slots=True)
class Accepted:
    """A stored callback: what to answer and what to log."""

    body: bytes
    delivery_id: str
    entity_keys: tuple[str, ...]
    quarantined: bool


class SuccessAnswer:
    """The envelope OC expects on success, with its messageId echoed when it sent one."""

    def __init__(self, template: str) -> None:
        self._template: dict[str, Any] = json.loads(template)
        self._plain = json.dumps(self._template, separators=(",", ":")).encode()
        # The echoed id goes last, so the answer is the template's bytes with the id
        # spliced in before the closing brace (unless the template has one to replace).
        self._head: bytes | None = None
        if (
            isinstance(self._template, dict)
            and self._template
            and "messageId" not in self._template
        ):
            self._head = self._plain[:-1] + b',"messageId":'

    def render(self, document: Any) -> bytes:
        message_id = document.get("messageId") if isinstance(document, dict) else None
        if not isinstance(message_id, str | int):
            return self._plain
        if self._head is not None:
            return self._head + json.dumps(message_id).encode() + b"}"
        return json.dumps(
            {**self._template, "messageId": message_id}, separators=(",", ":")
        ).encode()


class IngestService:
    def __init__(
        self,
        settings: Settings,
        log: Log,
        verifier: Verifier,
        metrics: Metrics,
        tracing: Tracing,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.tracing = tracing
        self._settings = settings
        self._log = log
        self._verifier = verifier
        self._metrics = metrics
        self._clock = clock
        self._limiter = RateLimiter(settings.rate_limit_per_source, settings.rate_limit_burst)
        self._answer = SuccessAnswer(settings.oc_success_response)
        self._in_flight = 0

    @property
    def verifier(self) -> Verifier:
        return self._verifier

    def admit(self, source_ip: str) -> None:
        """Cheap checks before the body is read: source allow-list and rate limit."""
        if not self._verifier.source_allowed(source_ip):
            self._metrics.verification_failures.labels("source_ip").inc()
            raise SourceNotAllowed("source address not allowed")
        wait_s = self._limiter.acquire(source_ip, time.monotonic())
        if wait_s > 0:
            raise RateLimited("too many callbacks from this source", retry_after_s=wait_s)

    @contextlib.contextmanager
    def in_flight(self) -> Iterator[None]:
        """Hold one of the `max_callbacks_in_flight` places while a callback is read,
        verified and stored; with none free, Overloaded at once (answered 503)."""
        if self._in_flight >= self._settings.max_callbacks_in_flight:
            raise Overloaded(
                "too many callbacks in flight; retry shortly", retry_after_s=_OVERLOAD_RETRY_S
            )
        self._in_flight += 1
        self._metrics.callbacks_in_flight.inc()
        try:
            yield
        finally:
            self._in_flight -= 1
            self._metrics.callbacks_in_flight.dec()

    async def accept(self, kind: Kind, delivery: Delivery, content_type: str) -> Accepted:
        verdict = self._verifier.verify(delivery)
        if not verdict.ok:
            self._metrics.verification_failures.labels(verdict.failed_method).inc()
            raise VerificationFailed(verdict.reason)
        try:
            document = decode_json(delivery.body, self._settings.max_json_depth)
        except BadBody as exc:
            raise MalformedBody(str(exc)) from exc
        received = Received(
            kind=kind,
            body=delivery.body,
            delivery_id=delivery_id(delivery.headers, delivery.body),
            received_at=datetime.fromtimestamp(self._clock(), UTC),
            verified=verdict.methods,
            content_type=content_type,
            trace=self.tracing.headers(),
        )
        try:
            keys = entity_keys(kind, document)
        except UnknownShape as exc:
            record = quarantine_record(received, str(exc), self._settings.topic_quarantine)
            await self._append([record])
            self._metrics.callbacks_quarantined.labels("unknown_shape").inc()
            quarantined = True
            keys = []
        else:
            await self._append(raw_records(received, keys, self._settings.topic_raw))
            quarantined = False
        self._verifier.accepted(delivery)
        self._metrics.callbacks_accepted.labels(kind, self._log.name).inc()
        return Accepted(
            self._answer.render(document), received.delivery_id, tuple(keys), quarantined
        )

    async def _append(self, records: list[Any]) -> None:
        started = time.perf_counter()
        await self._log.append(records)
        self._metrics.log_append_duration.labels(self._log.name).observe(
            time.perf_counter() - started
        )
