"""Accept one callback: verify the raw bytes, check them, store them, then say so.

No HTTP here (endpoint.py does that) and nothing slow: no OC call, no enrichment. The
answer to OC is produced only after the log confirmed the raw record(s).
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from gateway.clock import SYSTEM_CLOCK, Clock
from gateway.errors import (
    MalformedBody,
    RateLimited,
    SourceNotAllowed,
    VerificationFailed,
)
from gateway.ingest.admission import AdaptiveLimit, Admission
from gateway.ingest.limits import BadBody, RateLimiter, decode_json
from gateway.ingest.record import (
    KINDS,
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
from gateway.ops.logs import CallbackLine
from gateway.ops.metrics import Children, Metrics
from gateway.ops.tracing import Tracing
from gateway.settings import Settings

_PLAIN_TEXT = re.compile(r"[\w .:+/-]*", re.ASCII)
"""Text that is its own JSON string body (no quote, backslash or control character)."""


LOAD_WINDOW_S: Final = 0.1
"""How often the admission limit adapts."""
LAG_PROBE_S: Final = 0.01
"""The timer whose lateness measures the event loop's lag."""
MIN_LAG_SAMPLES: Final = 3
"""Lag samples a window needs: a loop too busy for them gets a longer window."""
GIVE_WAY_MAX_S: Final = 1.0
"""Longest a processor in the same process waits for ingest to stop refusing callbacks
before it begins its next batch anyway (it then reads a bigger one)."""


async def wait_while_overloaded(
    overloaded: Callable[[], bool], clock: Clock, max_s: float = GIVE_WAY_MAX_S
) -> None:
    """Return once `overloaded()` (ingest's last admission window refused callbacks) is
    false, or after `max_s`."""
    deadline = clock.monotonic() + max_s
    while overloaded() and (left := deadline - clock.monotonic()) > 0:
        await clock.sleep(min(LOAD_WINDOW_S, left))


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
            if isinstance(message_id, str) and _PLAIN_TEXT.fullmatch(message_id):
                return self._head + b'"' + message_id.encode() + b'"}'  # nothing to escape
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
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.tracing = tracing
        self._settings = settings
        self._log = log
        self._verifier = verifier
        self._metrics = metrics
        self._clock = clock
        self._limiter = RateLimiter(settings.rate_limit_per_source, settings.rate_limit_burst)
        self._answer = SuccessAnswer(settings.oc_success_response)
        cap = settings.max_callbacks_in_flight
        self.admission = Admission(
            AdaptiveLimit(
                target_lag_s=settings.admission_lag_target_ms / 1000,
                min_limit=min(8, cap),
                max_limit=cap,
                initial=min(64, cap),
            )
        )
        self.on_overloaded: Callable[[bool], None] | None = None
        """Told when ingest starts and stops refusing callbacks (an ingest worker tells
        its primary, whose processor then gives way: gateway/workers.py)."""
        self._line = CallbackLine("gateway.ingest", settings.log_level)
        self._received = Children(metrics.callbacks_received)
        self._rejected = Children(metrics.callbacks_rejected)
        self._accepted = Children(metrics.callbacks_accepted)
        self._append_duration = metrics.log_append_duration.labels(log.name)

    @property
    def verifier(self) -> Verifier:
        return self._verifier

    def received(self, kind: Kind) -> None:
        self._received(kind).inc()

    def refused(self, path: bytes) -> None:
        """A callback refused at admission (over the limit), before it was read."""
        kind = KINDS.get(path.rstrip(b"/").rsplit(b"/", 1)[-1].decode("latin-1"))
        if kind is not None:
            self._received(kind).inc()
        self._rejected("overloaded").inc()

    async def watch_load(self, clock: Clock) -> None:
        """Measure the event loop's lag (how late a short timer fires) and adapt the
        admission limit to the least lag of each window, one window after another,
        until cancelled."""
        metrics, admission = self._metrics, self.admission
        while True:
            window_end = clock.monotonic() + LOAD_WINDOW_S
            least, samples = math.inf, 0
            while (started := clock.monotonic()) < window_end or samples < MIN_LAG_SAMPLES:
                await clock.sleep(LAG_PROBE_S)
                least = min(least, max(0.0, clock.monotonic() - started - LAG_PROBE_S))
                samples += 1
            was_overloaded = admission.overloaded
            admission.window(least)
            if admission.overloaded != was_overloaded and self.on_overloaded is not None:
                self.on_overloaded(admission.overloaded)
            metrics.event_loop_lag.set(least)
            metrics.callbacks_in_flight.set(admission.in_flight)
            metrics.admission_limit.set(admission.limit.value)

    async def give_way(self) -> None:
        """Return once ingest is not refusing callbacks, or after `GIVE_WAY_MAX_S`: a
        processor sharing the process waits on this before each batch. Under overload a
        callback taken is stored for good while one refused comes back later, so the
        CPU goes to taking callbacks; the processor keeps reading a batch at least every
        `GIVE_WAY_MAX_S`, bigger for the wait, and catches up once the load eases."""
        await wait_while_overloaded(lambda: self.admission.overloaded, self._clock)

    def rejected(self, code: str) -> None:
        self._rejected(code).inc()

    def answered(
        self, kind: str, outcome: str, delivery_id: str, entity_keys: str, elapsed_s: float
    ) -> None:
        """A callback was answered: its ack latency and its one canonical log line."""
        self._metrics.ack_duration.observe(elapsed_s)
        self._line.write(kind, outcome, delivery_id, entity_keys, round(elapsed_s * 1000, 3))

    def admit(self, source_ip: str) -> None:
        """Cheap checks before the body is read: source allow-list and rate limit."""
        if not self._verifier.source_allowed(source_ip):
            self._metrics.verification_failures.labels("source_ip").inc()
            raise SourceNotAllowed("source address not allowed")
        wait_s = self._limiter.acquire(source_ip, self._clock.monotonic())
        if wait_s > 0:
            raise RateLimited("too many callbacks from this source", retry_after_s=wait_s)

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
            received_at=self._clock.now(),
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
        self._accepted(kind, self._log.name).inc()
        return Accepted(
            self._answer.render(document), received.delivery_id, tuple(keys), quarantined
        )

    async def _append(self, records: list[Any]) -> None:
        started = time.perf_counter()
        await self._log.append(records)
        self._append_duration.observe(time.perf_counter() - started)
