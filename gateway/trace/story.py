"""One entity's story, put together from what a trace found (pure).

Given the entity's raw records, the processor's decisions for them worked out again
(recompute.py), and the typed events, dead letters and quarantined deliveries found,
`tell` lines them up: each delivery with its decisions and the events each decision
implies, found or not; each event with what followed it (its `*.enriched` follow-up,
given up or still owed); and the problems a person should look at first, above all a
change decided as published whose event is on no topic.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from gateway.ingest.record import H_ENTITY_INDEX, H_SOURCE, H_VERIFIED
from gateway.log.base import LogRecord
from gateway.process.decide import Outcome
from gateway.process.state import EntityState, StateKey
from gateway.trace.found import DeadLetter, Event, Where, at_ms, quarantined, text
from gateway.trace.mask import BodyMask, safe_headers
from gateway.trace.recompute import Expected, ItemDecision, Recomputed, RecordDecision

DEAD_LETTERED = "dead_lettered"


@dataclass(frozen=True, slots=True)
class Searched:
    """One read the trace made: which topic, which partition (None: all), from when."""

    what: str
    topic: str
    partition: int | None
    since_ms: int | None
    found: int

    def to_json(self) -> dict[str, Any]:
        return {
            "what": self.what,
            "topic": self.topic,
            "partition": self.partition,
            "since": None if self.since_ms is None else at_ms(self.since_ms).isoformat(),
            "found": self.found,
        }


@dataclass
class Story:
    entity: str
    log: str
    since_ms: int | None
    deliveries: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    quarantined: list[dict[str, Any]] = field(default_factory=list)
    state: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    searched: list[Searched] = field(default_factory=list)
    elapsed_s: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "entity": self.entity,
            "log": self.log,
            "since": None if self.since_ms is None else at_ms(self.since_ms).isoformat(),
            "history": "from the start of the raw topic (as far as retention keeps it)"
            if self.since_ms is None
            else "from --since: decisions assume no earlier state",
            "problems": self.problems,
            "deliveries": self.deliveries,
            "events": self.events,
            "quarantined": self.quarantined,
            "state": self.state,
            "searched": [s.to_json() for s in self.searched],
            "elapsed_s": self.elapsed_s,
        }


def _outcome(record: RecordDecision, dead: Sequence[DeadLetter]) -> str:
    if record.error is not None or dead:
        return DEAD_LETTERED
    outcomes = {item.decision.outcome for item in record.items}
    for outcome in (Outcome.PUBLISHED, Outcome.ABSORBED, Outcome.DUPLICATE):
        if outcome in outcomes:
            return outcome.value
    return "nothing"


class _Teller:
    def __init__(
        self,
        entity: str,
        mask: BodyMask,
        topic_for: Mapping[str, str],
        events: Sequence[LogRecord],
        dead: Sequence[LogRecord],
        sources: Mapping[str, str],
    ) -> None:
        self.entity = entity
        self.sources = sources
        self.mask = mask
        self.topic_for = topic_for
        self.events = [Event.of(r) for r in events]
        self.by_id: dict[str, list[Event]] = {}
        for event in self.events:
            self.by_id.setdefault(event.ce_id, []).append(event)
        self.dead = [DeadLetter.of(r) for r in dead]
        self.explained: set[str] = set()
        self.problems: list[str] = []

    def expected(self, expected: Expected, decision: RecordDecision) -> dict[str, Any]:
        found = self.by_id.get(expected.event_id, [])
        self.explained.add(expected.event_id)
        topic = self.topic_for[expected.kind]
        if not found:
            raw = decision.record
            self.problems.append(
                f"delivery {decision.delivery_id}: decided published, but no {expected.event_type} "
                f"with ce_id {expected.event_id} is on {topic}: the event never reached the "
                f"topic, or the processor has not reached raw partition {raw.partition} "
                f"offset {raw.offset} yet (see its lag)"
            )
        return {
            "type": expected.event_type,
            "ce_id": expected.event_id,
            "topic": topic,
            "key": expected.key,
            "found": [e.where.to_json() for e in found],
        }

    def item(self, item: ItemDecision, record: RecordDecision, failed: bool) -> dict[str, Any]:
        """One item's decision; a record that failed (dead-lettered) published nothing,
        so its decisions are what would have been, and nothing is looked for."""
        d = item.decision
        return {
            "index": item.index,
            "identity": item.identity,
            "status": item.status,
            "oc_status": item.oc_status,
            "occurred_at": item.occurred_at.isoformat(),
            "reconciled": item.reconciled,
            "outcome": d.outcome.value,
            "reason": d.reason,
            "previous_status": d.previous,
            "regressed": d.regressed,
            "events": [] if failed else [self.expected(e, record) for e in item.events],
        }

    def delivery(self, record: RecordDecision) -> dict[str, Any]:
        raw = record.record
        dead = [d for d in self.dead if not d.follow_up and d.of_raw(raw)]
        outcome = _outcome(record, dead)
        if outcome == DEAD_LETTERED and not dead:
            self.problems.append(
                f"delivery {record.delivery_id}: cannot be processed ({record.error}), and "
                "no dead letter of it was found: the processor has not reached it yet, "
                "or it is still retrying"
            )
        for letter in dead:
            self.problems.append(f"delivery {record.delivery_id}: dead-lettered: {letter.reason}")
        topic = self.topic_for.get(record.kind or "", "")
        verified = text(raw, H_VERIFIED)
        return {
            "received_at": record.received_at.isoformat() if record.received_at else None,
            "delivery_id": record.delivery_id,
            "kind": record.kind,
            "source": "reconciliation" if record.reconciled else "callback",
            "verified": verified.split(",") if verified else [],
            "source_address": self.sources.get(record.delivery_id or ""),
            "entity_index": text(raw, H_ENTITY_INDEX),
            "written_by": text(raw, H_SOURCE) or "ingest",
            "at": Where.of(raw).to_json(),
            "headers": safe_headers(raw.headers),
            "body": self.mask.body(topic, raw.value) if topic else {"not_shown": "unknown kind"},
            "outcome": outcome,
            "error": record.error,
            "items": [self.item(item, record, bool(dead)) for item in record.items],
            "dead_letters": [d.to_json() for d in dead],
        }

    def event(self, event: Event) -> dict[str, Any]:
        follow: dict[str, Any] | None = None
        if event.follow_up:
            done = [e for e in self.events if e.enriches == event.ce_id]
            gave_up = [d for d in self.dead if d.follow_up and d.event_id == event.ce_id]
            if done:
                follow = {"state": "completed", "by": done[0].ce_id}
            elif gave_up:
                follow = {"state": "given_up", "reason": gave_up[0].reason}
                self.problems.append(
                    f"event {event.ce_id}: its enrichment was given up: {gave_up[0].reason}"
                )
            else:
                missing = event.enrichment.get("missing") or []
                follow = {"state": "owed", "missing": missing}
        explained = event.ce_id in self.explained or event.enriches in self.explained
        return {
            **event.summary(),
            "at": event.where.to_json(),
            "explained": explained,
            "follow_up": follow,
            "stock_levels": event.stock_keys(),
            "data": event.data,
        }

    def unexplained(self, records: Sequence[RecordDecision]) -> None:
        """Events that no published decision asked for: a sign that the state the
        processor had differs from the one worked out (history before the window)."""
        identities = {
            item.identity: item for r in records for item in r.items if not item.decision.publish
        }
        for event in self.events:
            if event.ce_id in self.explained or event.enriches in self.explained:
                continue
            delivery = event.data.get("deliveryId")
            near = [i for ident, i in identities.items() if ident.startswith(f"{delivery}#")]
            why = (
                f"recomputed as {near[0].decision.outcome.value} ({near[0].decision.reason})"
                if near
                else "from a raw record outside the searched window"
            )
            self.problems.append(
                f"event {event.ce_id} ({event.ce_type}) was published, but {why}: the "
                "processor's state then differed from the one worked out here"
            )


def state_json(
    key: StateKey, state: EntityState, owed: Sequence[Mapping[str, Any]] | None = None
) -> dict[str, Any]:
    """A state as the trace shows it; `owed` replaces the state's follow-ups (a state
    worked out from the raw records knows its follow-ups only from the events found)."""
    occurred = None if state.occurred_at_ms is None else at_ms(state.occurred_at_ms).isoformat()
    return {
        "kind": key.kind,
        "status": state.status,
        "oc_status": state.oc_status,
        "occurred_at": occurred,
        "reconciled_status": state.reconciled_status,
        "recent_deliveries": list(state.deliveries),
        "follow_ups": list(owed) if owed is not None else [f.encode() for f in state.followups],
    }


def _owed(events: Sequence[Mapping[str, Any]], topic: str) -> list[dict[str, Any]]:
    return [
        {"event_id": e["ce_id"], "missing": (e["follow_up"] or {}).get("missing", [])}
        for e in events
        if e["at"]["topic"] == topic and (e["follow_up"] or {}).get("state") == "owed"
    ]


def tell(
    entity: str,
    log: str,
    since_ms: int | None,
    recomputed: Recomputed,
    *,
    events: Sequence[LogRecord],
    dead: Sequence[LogRecord],
    quarantine: Sequence[LogRecord],
    mask: BodyMask,
    topic_for: Mapping[str, str],
    changelog: Mapping[StateKey, EntityState | None] | None = None,
    sources: Mapping[str, str] | None = None,
) -> Story:
    """The story; `sources` are source addresses by delivery id, where known (the raw
    record does not carry them; the console remembers its latest deliveries')."""
    teller = _Teller(entity, mask, topic_for, events, dead, sources or {})
    story = Story(entity, log, since_ms)
    story.deliveries = [teller.delivery(r) for r in recomputed.records]
    story.events = [
        teller.event(e) for e in sorted(teller.events, key=lambda e: e.where.timestamp_ms)
    ]
    teller.unexplained(recomputed.records)
    for letter in teller.dead:
        if not letter.follow_up and not any(letter.of_raw(r.record) for r in recomputed.records):
            teller.problems.append(
                f"dead letter at {letter.where.topic}/{letter.where.partition}/"
                f"{letter.where.offset} (delivery {letter.delivery_id}): {letter.reason}"
            )
    for record in quarantine:
        topic = topic_for.get(text(record, "gw-kind") or "", "")
        body = mask.body(topic, record.value) if topic else {"not_shown": "unknown kind"}
        held = quarantined(record, body)
        story.quarantined.append(held.to_json())
        teller.problems.append(
            f"delivery {held.delivery_id} was quarantined ({held.reason}): nothing was "
            "published from it"
        )
    story.state = {
        "worked_out": [
            state_json(k, s, _owed(story.events, topic_for.get(k.kind, "")))
            for k, s in sorted(recomputed.states.items())
        ],
        "changelog": None
        if changelog is None
        else [
            {"kind": k.kind, "forgotten": True} if s is None else state_json(k, s)
            for k, s in sorted(changelog.items())
        ],
    }
    story.problems = teller.problems
    return story
