"""Reconciliation: ask OC what changed, and make up for callbacks that never came.

Webhooks get lost. Every `reconcile_interval_s`, one replica (the lease holder) reads the
outbound orders and returns OC created in the last `reconcile_lookback_s` (OC's queries
select by creation time), newest first, within a budget of `reconcile_max_calls` query
calls. For each entity whose OC status differs from the last one seen, it appends an
observation to the raw log: OC's record of the entity in the callback shape, keyed by the
entity, with `gw-source: reconcile`. The processor that owns the entity's partition then
decides with the entity's state, exactly as for a callback: an observation ahead of what
was published becomes the same typed event a callback would have produced, marked
reconciled; anything else is absorbed (see handler.py). So reconciliation goes through the
same deduplication, ordering and transactions as callbacks.

Reconciliation is OC's lowest priority: the client gives its calls a small share of the
concurrency and rate, and after a failed run the interval doubles (up to 8x).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from gateway.aio import wait_set
from gateway.clock import SYSTEM_CLOCK, Clock
from gateway.errors import LogUnavailable, OcError
from gateway.ingest.record import (
    H_ENTITY_INDEX,
    H_SOURCE,
    SOURCE_RECONCILE,
    Kind,
    Received,
)
from gateway.log.base import Lease, Log, Record
from gateway.oc.client import BudgetSpent, CallBudget, OcClient
from gateway.ops.logs import get_logger
from gateway.ops.metrics import Metrics
from gateway.process.decide import same_status
from gateway.process.state import EntityState, StateKey, Status
from gateway.settings import Settings
from schemas.oc_entities import OcOutboundOrder, OcReturnOrder

logger = get_logger("gateway.reconcile")

_CHUNK = timedelta(days=1)
_MAX_BACKOFF = 8


@dataclass(frozen=True, slots=True)
class Found:
    kind: Kind
    key: str
    status: str
    known: str | None
    oc_status: str | None = None
    known_oc_status: str | None = None


Seen = tuple[Status, str | None]
"""An entity's status as last seen: ours, and OC's own value when known."""


@dataclass
class RunReport:
    since: datetime
    until: datetime
    observed: int = 0
    changes: list[Found] = field(default_factory=list)
    calls: int = 0
    covered_from: datetime | None = None  # the oldest creation time fully covered
    baseline: bool = False  # record OC's statuses, publish nothing (fresh deployment)
    baselined: int = 0

    @property
    def uncovered_s(self) -> float:
        if self.covered_from is None:
            return (self.until - self.since).total_seconds()
        return max(0.0, (self.covered_from - self.since).total_seconds())


def observation(kind: Kind, key: str, item: dict[str, Any], raw_topic: str, now: float) -> Record:
    """The raw record for OC's current state of one entity, in the callback shape."""
    body = json.dumps(
        {"messageId": f"reconcile-{int(now)}", "timestamp": int(now * 1000), "data": [item]},
        separators=(",", ":"),
    ).encode()
    digest = hashlib.sha256(json.dumps(item, sort_keys=True).encode()).hexdigest()[:24]
    received = Received(
        kind=kind,
        body=body,
        delivery_id=f"reconcile:{kind}:{key}:{digest}",
        received_at=datetime.fromtimestamp(now, UTC),
        verified=(SOURCE_RECONCILE,),
        content_type="application/json",
    )
    headers = received.headers(**{H_ENTITY_INDEX: "0", H_SOURCE: SOURCE_RECONCILE})
    return Record(raw_topic, body, key.encode(), headers, timestamp_ms=int(now * 1000))


async def published_statuses(log: Log, state_topic: str) -> dict[StateKey, Seen]:
    """Each entity's last status the processor published, from its changelog."""
    known: dict[StateKey, Seen] = {}
    async for record in log.read(state_topic):
        try:
            key = StateKey.parse((record.key or b"").decode())
        except ValueError:
            continue
        if not record.value:
            known.pop(key, None)
            continue
        state = EntityState.decode(record.value)
        if state.status is not None:
            known[key] = (state.status, state.oc_status)
    return known


class Reconciler:
    def __init__(
        self,
        settings: Settings,
        log: Log,
        client: OcClient,
        metrics: Metrics,
        lease: Lease,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self._settings = settings
        self._log = log
        self._client = client
        self._metrics = metrics
        self._lease = lease
        self._clock = clock
        self._known: dict[StateKey, Seen] | None = None  # seeded when the lease is first held
        self._stopping = asyncio.Event()

    async def run(self) -> None:
        """Reconcile every interval while holding the lease; back off when OC strains."""
        factor = 1
        while True:
            try:
                await self._lease.start()
                break
            except LogUnavailable as exc:
                logger.warning("reconciliation lease unavailable", error=str(exc))
                await self._pause(self._settings.reconcile_interval_s)
                if self._stopping.is_set():
                    return
        try:
            while not self._stopping.is_set():
                if not self._lease.held():
                    self._known = None  # another replica's view may differ when we return
                else:
                    factor = await self._one_run(factor)
                await self._pause(self._settings.reconcile_interval_s * factor)
        finally:
            await self._lease.stop()

    async def _one_run(self, factor: int) -> int:
        now = self._clock.now()
        since = now - timedelta(seconds=self._settings.reconcile_lookback_s)
        try:
            report = await self.run_once(since, now, baseline=self._settings.reconcile_baseline)
        except (OcError, LogUnavailable) as exc:
            logger.warning("reconciliation failed; backing off", error=str(exc), factor=factor)
            return min(factor * 2, _MAX_BACKOFF)
        self._metrics.reconcile_last_success.set(self._clock.time())
        self._metrics.reconcile_window_lag.set(report.uncovered_s)
        logger.info(
            "reconciliation run",
            observed=report.observed,
            changes=len(report.changes),
            baselined=report.baselined,
            calls=report.calls,
            uncovered_s=round(report.uncovered_s),
        )
        return 1

    async def stop(self) -> None:
        self._stopping.set()

    async def _pause(self, seconds: float) -> None:
        await wait_set(self._stopping, seconds)

    async def run_once(
        self, since: datetime, until: datetime, dry_run: bool = False, baseline: bool = False
    ) -> RunReport:
        """Compare OC's entities created in [since, until] with what was last seen, and
        (unless `dry_run`) append an observation for each difference. With `baseline`,
        a first run that finds no processor state at all (a fresh deployment) only
        records OC's statuses: it does not announce every recent entity as missed."""
        fresh = False
        if self._known is None:
            self._known = await published_statuses(self._log, self._settings.topic_state)
            fresh = baseline and not self._known
        report = RunReport(since, until, baseline=fresh)
        budget = CallBudget(self._settings.reconcile_max_calls)
        try:
            for start, end in _newest_first(since, until):
                async for kind, key, seen, item in self._entities(start, end, budget):
                    report.observed += 1
                    await self._compare(report, kind, key, seen, item, dry_run)
                report.covered_from = start
        except BudgetSpent:
            logger.warning("reconciliation budget spent", calls=budget.spent)
        report.calls = budget.spent
        return report

    async def _entities(
        self, start: datetime, end: datetime, budget: CallBudget
    ) -> AsyncIterator[tuple[Kind, str, Seen, dict[str, Any]]]:
        order: OcOutboundOrder
        async for order in self._client.iter_outbound_orders(start, end, budget=budget):
            seen = (order.normalized_status(), order.raw_status())
            yield "outbound", order.order_number, seen, _wire(order)
        rma: OcReturnOrder
        async for rma in self._client.iter_return_orders(start, end, budget=budget):
            if rma.return_number:
                yield (
                    "return",
                    rma.return_number,
                    (rma.normalized_status(), rma.raw_status()),
                    _wire(rma),
                )

    async def _compare(
        self,
        report: RunReport,
        kind: Kind,
        key: str,
        seen: Seen,
        item: dict[str, Any],
        dry_run: bool,
    ) -> None:
        assert self._known is not None
        state_key = StateKey(kind, key)
        known = self._known.get(state_key)
        if known is not None and same_status(*seen, *known):
            return
        if report.baseline:
            self._known[state_key] = seen
            report.baselined += 1
            return
        before, before_oc = known if known is not None else (None, None)
        report.changes.append(Found(kind, key, seen[0], before, seen[1], before_oc))
        if dry_run:
            return
        await self._log.append(
            [observation(kind, key, item, self._settings.topic_raw, self._clock.time())]
        )
        self._known[state_key] = seen


def _wire(entity: OcOutboundOrder | OcReturnOrder) -> dict[str, Any]:
    """The entity as OC spelled it (aliases, OC's time format, unknown keys kept)."""
    wire: dict[str, Any] = entity.model_dump(mode="json", by_alias=True, exclude_none=True)
    return wire


def _newest_first(since: datetime, until: datetime) -> list[tuple[datetime, datetime]]:
    """[since, until] cut into day-long windows, the most recent first: recent entities
    change most, so they are compared first when the budget runs short."""
    windows = []
    end = until
    while end > since:
        start = max(since, end - _CHUNK)
        windows.append((start, end))
        end = start
    return windows
