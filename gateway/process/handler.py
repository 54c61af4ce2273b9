"""A batch of raw records -> their outputs: read, decide, enrich, build, remember.

The thin I/O loop around the pure core, in three passes over the batch:

1. read each record (its kind, delivery and entity from the headers, its body parsed
   once) into the items of its kind (kinds.py);
2. enrich, once for the whole batch: every item that may be news asks for its entity
   and stock, and the enricher answers them all within one deadline;
3. in input order, decide each item against its entity's state (decide.py), build the
   events of what is news (mapping.py through the kind), and remember it; enrichment
   that did not come in time is owed as a follow-up (followups.py).

The processor calls `begin` (passes 1 and 2 under way) as soon as it has fetched a
batch, and `finish` (pass 3) when that batch's turn comes: a batch is read and its
look-ups sent while the one before it still waits for OC.

A record's state changes are kept only when the whole record succeeded. A record that
fails is reported, not raised: a `ProcessingError` is permanent (the processor
dead-letters it), anything else is a surprise the processor retries, and later records
of the same entity in the batch wait for it (`DEFERRED`), so each entity's events stay
in order. CPU work is done in short slices, so callbacks arriving on the same event loop
are answered between them.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import partial
from typing import Any, Final

from gateway.clock import SYSTEM_CLOCK, Clock
from gateway.errors import ProcessingError
from gateway.ingest.record import Kind
from gateway.log.base import LogRecord, Record
from gateway.ops.logs import get_logger
from gateway.ops.metrics import Children, Metrics
from gateway.ops.tracing import Tracing
from gateway.process import mapping
from gateway.process.decide import Decision, Outcome, decide, owe, remember
from gateway.process.enrich import Enriched, Enricher, Need, NoEnrichment
from gateway.process.followups import FollowUps
from gateway.process.kinds import KINDS, Context, EntityKind, Item, Pii
from gateway.process.pii import PiiPolicy
from gateway.process.publish import Outgoing, Publisher, fresh_levels
from gateway.process.raw import record_context
from gateway.process.state import FollowUp, StateKey, StateView
from gateway.settings import Settings

logger = get_logger("gateway.process")

SLICE_S: Final = 0.002
"""Longest stretch of CPU work before the handler lets the event loop run others."""


@dataclass(frozen=True, slots=True)
class Done:
    """A record handled: its outputs, and the events among them (type, OC time)."""

    outputs: list[Record]
    published: list[tuple[str, datetime]] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Failed:
    """A record that could not be handled; its state was left as it was."""

    error: BaseException

    @property
    def permanent(self) -> bool:
        return isinstance(self.error, ProcessingError)


@dataclass(frozen=True, slots=True)
class Deferred:
    """Not handled: an earlier record of the same entity failed and will be retried."""


DEFERRED: Final = Deferred()
Handled = Done | Failed | Deferred


@dataclass(frozen=True, slots=True)
class Begun:
    """A batch read, its enrichment under way (`RecordHandler.begin`)."""

    records: Sequence[LogRecord]
    read: list[list[Item[Any]] | BaseException]
    enriching: asyncio.Future[Mapping[Need, Enriched] | None]

    async def enriched(self) -> None:
        """Wait until its look-ups are answered or their deadline passed; never raises."""
        await asyncio.wait([self.enriching])

    def cancel(self) -> None:
        """The batch will not be finished: stop waiting for its look-ups (they are
        shared and go on, filling the cache)."""
        self.enriching.cancel()


class WholeBatch:
    """Base of a handler whose work all happens in `handle`: nothing of a batch runs
    ahead of the batch before it, and it needs no budget to begin."""

    async def handle(self, records: Sequence[LogRecord], view: StateView) -> list[Handled]:
        raise NotImplementedError

    async def begin(self, records: Sequence[LogRecord], view: StateView) -> Begun:
        nothing: asyncio.Future[Mapping[Need, Enriched] | None] = (
            asyncio.get_running_loop().create_future()
        )
        nothing.set_result(None)
        return Begun(records, [], nothing)

    async def finish(self, begun: Begun, view: StateView) -> list[Handled]:
        return await self.handle(begun.records, view)

    async def ready(self) -> None:
        return None


class Pacer:
    """Lets the event loop run other work at least every `SLICE_S` of CPU work."""

    def __init__(self, slice_s: float = SLICE_S) -> None:
        self._slice_s = slice_s
        self._since = time.perf_counter()

    async def tick(self) -> None:
        now = time.perf_counter()
        if now - self._since >= self._slice_s:
            await asyncio.sleep(0)
            self._since = time.perf_counter()


class RecordHandler:
    def __init__(
        self,
        settings: Settings,
        metrics: Metrics,
        enricher: Enricher | None = None,
        clock: Clock = SYSTEM_CLOCK,
        tracing: Tracing | None = None,
        kinds: Mapping[Kind, EntityKind[Any]] = KINDS,
    ) -> None:
        self._settings = settings
        self._metrics = metrics
        self._enricher: Enricher = enricher or NoEnrichment()
        self._clock = clock
        self._tracing = tracing
        self._kinds = kinds
        self._publisher = Publisher(settings)
        policy = PiiPolicy(settings.pii_policy, settings.pii_hmac_key.get_secret_value())
        self._pii: dict[Kind, Pii | None] = {}
        for name in kinds:
            topic = self._publisher.topic_for(name)
            self._pii[name] = partial(policy.apply, topic) if policy.publishes_any(topic) else None
        self._decisions = Children(metrics.decisions)
        self._duplicates = Children(metrics.duplicates)
        self._enrichment = Children(metrics.enrichment)
        self._followups = FollowUps(
            settings, self._enricher, kinds, self._publisher, metrics, clock
        )

    async def handle(self, records: Sequence[LogRecord], view: StateView) -> list[Handled]:
        """One result per record, in input order (see the module docstring)."""
        return await self.finish(await self.begin(records, view), view)

    async def begin(self, records: Sequence[LogRecord], view: StateView) -> Begun:
        """Passes 1 and 2 started: the records read, and their enrichment asked for. The
        processor begins a batch while the one before it still waits for OC; `view` may
        not hold that one's changes yet, which only makes its items ask for look-ups they
        turn out not to need."""
        pacer = Pacer()
        read: list[list[Item[Any]] | BaseException] = []
        for record in records:
            read.append(self._read(record))
            await pacer.tick()
        enriching = asyncio.ensure_future(self._traced_enrich(records, read, view))
        return Begun(records, read, enriching)

    async def finish(self, begun: Begun, view: StateView) -> list[Handled]:
        """Pass 3, once the batch's enrichment is in: one result per record, in input order."""
        records, read = begun.records, begun.read
        enriched = await begun.enriching
        pacer = Pacer()
        results: list[Handled] = []
        blocked: set[tuple[int, bytes | None]] = set()
        for record, items in zip(records, read, strict=True):
            lane = (record.partition, record.key)
            result: Handled
            if lane in blocked:
                result = DEFERRED
            elif isinstance(items, BaseException):
                result = Failed(items)
            else:
                try:
                    result = self._traced(record, items, view, enriched)
                except Exception as exc:  # a bug or a surprise: the processor retries
                    result = Failed(exc)
            if isinstance(result, Failed) and not result.permanent:
                blocked.add(lane)
            results.append(result)
            await pacer.tick()
        return results

    async def ready(self) -> None:
        """Return once a batch begun now would have its look-ups sent at once."""
        await self._enricher.ready()

    async def follow_ups(self, view: StateView, now_ms: int) -> dict[int, list[Record]]:
        """Outputs for follow-up enrichments that are due, by raw partition."""
        if not self._enricher.enabled:
            return {}
        return await self._followups.run(view, now_ms)

    # --- 1. read --------------------------------------------------------------------------
    def _read(self, record: LogRecord) -> list[Item[Any]] | BaseException:
        try:
            kind, delivery_id, received_at, reconciled = record_context(record)
            if record.key is None:
                raise ProcessingError("raw record has no key")
            ctx = Context(
                kind, record.key.decode(), record.partition, delivery_id, received_at, reconciled
            )
            return self._kinds[kind].items(ctx, record.value)
        except Exception as exc:
            return exc

    # --- 2. enrich ------------------------------------------------------------------------
    async def _traced_enrich(
        self,
        records: Sequence[LogRecord],
        read: Sequence[list[Item[Any]] | BaseException],
        view: StateView,
    ) -> Mapping[Need, Enriched] | None:
        """The batch's enrichment; with tracing on, in a span continuing the first
        record's trace and linked to the others' (the OC calls serve all of them)."""
        tracing = self._tracing
        traced = [r.headers for r in records if r.header("traceparent") is not None]
        if tracing is None or not tracing.enabled or not traced:
            return await self._enrich(read, view)
        with tracing.span("enrich batch", parent=traced[0], links=traced[1:]):
            return await self._enrich(read, view)

    async def _enrich(
        self, read: Sequence[list[Item[Any]] | BaseException], view: StateView
    ) -> Mapping[Need, Enriched] | None:
        """What OC answered for the batch's items that may be news; None when enrichment
        is off. Items already handled (by their state) ask for nothing."""
        if not self._enricher.enabled:
            return None
        needs: dict[Need, None] = {}
        for items in read:
            if isinstance(items, BaseException):
                continue
            for item in items:
                seen = item.observation
                state = view.get(item.ctx.partition, StateKey(item.ctx.kind, item.ctx.key))
                if item.need is not None and state.saw(seen.identity, seen.fingerprint) is None:
                    needs[item.need] = None
        if not needs:
            return {}
        try:
            return await self._enricher.enrich(list(needs), self._settings.enrich_timeout_s)
        except Exception as exc:
            # Enrichment must never stop events: a bug in it counts as OC not answering
            # (the follow-up tries again), and is logged as the bug it is.
            logger.error("enrichment failed unexpectedly", error=f"{type(exc).__name__}: {exc}")
            return {}

    # --- 3. decide, build, remember -------------------------------------------------------
    def _traced(
        self,
        record: LogRecord,
        items: list[Item[Any]],
        view: StateView,
        enriched: Mapping[Need, Enriched] | None,
    ) -> Done:
        tracing = self._tracing
        if tracing is None or not tracing.enabled:
            return self._apply(items, view, enriched)
        kind = (record.header("gw-kind") or b"record").decode()
        with tracing.span(f"process {kind}", parent=record.headers, kind="consumer"):
            done = self._apply(items, view, enriched)
            trace = tracing.headers()
        outputs = [replace(r, headers=r.headers + trace) for r in done.outputs]
        return Done(outputs, done.published)

    def _apply(
        self,
        items: list[Item[Any]],
        view: StateView,
        enriched: Mapping[Need, Enriched] | None,
    ) -> Done:
        """Decide each item of one record in order and build what is news; the entity's
        new state goes into the view only once all of them are built."""
        if not items:
            return Done([])
        ctx = items[0].ctx
        state_key = StateKey(ctx.kind, ctx.key)
        state = view.get(ctx.partition, state_key)
        kind = self._kinds[ctx.kind]
        now_ms = int(self._clock.time() * 1000)
        out: list[Outgoing] = []
        levels: dict[str, tuple[int | None, ...]] = {}
        for item in items:
            decision = decide(state, item.observation, kind.ranks)
            self._count(kind, item, decision)
            state = remember(state, item.observation, decision, now_ms)
            if not decision.publish:
                continue
            found = self._found(item, enriched)
            produced = kind.events(item, decision, found, self._pii[kind.name])
            out += fresh_levels(produced, view, levels)
            if item.need is not None:
                missing = found.missing if found is not None else ()
                status = mapping.enrichment_status(found is not None, missing, 2).status
                self._enrichment(status).inc()
            if found is not None and found.missing:
                state = owe(state, self._owed(item, produced[0], found, now_ms))
        view.put(ctx.partition, state_key, state)
        view.levels_published(levels.items())
        records = [self._publisher.record(o) for o in out]
        return Done(records, [(o.event_type, o.time) for o in out])

    def _found(self, item: Item[Any], enriched: Mapping[Need, Enriched] | None) -> Enriched | None:
        if enriched is None or item.need is None:
            return None
        found = enriched.get(item.need)
        # Not asked (the item looked like a duplicate before the batch decided) or not
        # answered: all of it is missing, and owed.
        return found if found is not None else Enriched(missing=item.need.parts)

    def _owed(self, item: Item[Any], event: Outgoing, found: Enriched, now_ms: int) -> FollowUp:
        assert item.need is not None
        return FollowUp(
            event_id=event.event_id,
            event_type=event.event_type,
            missing=found.missing,
            delivery_id=item.ctx.delivery_id,
            identity=item.observation.identity,
            occurred_at_ms=item.observation.occurred_ms,
            received_at_ms=int(item.ctx.received_at.timestamp() * 1000),
            first_ms=now_ms,
            next_ms=now_ms + int(self._settings.enrich_followup_delay_s * 1000),
            skus=item.need.skus,
            region=item.need.region,
        )

    def _count(self, kind: EntityKind[Any], item: Item[Any], decision: Decision) -> None:
        name = kind.name
        self._decisions(name, decision.outcome.value).inc()
        if decision.outcome is Outcome.DUPLICATE or decision.reason.startswith("reconciliation"):
            self._duplicates(name).inc()
        if not decision.publish:
            return
        if item.observation.status == "unknown":
            self._metrics.unknown_status.labels(name).inc()
            self._metrics.count_unknown_status(name, item.observation.oc_status)
        if decision.regressed:
            self._metrics.status_regressions.labels(name).inc()
        if item.observation.reconciled:
            self._metrics.reconcile_changes.labels(name).inc()
