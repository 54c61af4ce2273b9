"""Compare what OC was told was accepted with what an independent reader found in the topics.

- accepted: callbacks answered 200 (from the load tool's own results).
- present: accepted callbacks whose status event is in the typed topic.
- reconciled: accepted callbacks whose change reconciliation (polling OC) published
  first; the gateway then drops the callback as the same change, by design.
- missing: accepted callbacks with neither a status event nor a reconciled event for
  the same change (must be 0), and with no raw record.
- duplicates: typed records seen more than once under the same `ce_id` (must be 0 for a
  read_committed consumer); raw duplicates are reported too (the spool may re-send a raw
  record after a crash; the processor absorbs them).
- extra: status events for callbacks not answered 200 (stored, but the answer was lost:
  OC retries those and the gateway deduplicates them). Harmless, reported.
- enrichment: status events not fully enriched, and whether each got its follow-up.
- order: callbacks of one entity that OC sent one after the other (the second sent only
  after the first was answered 200) must have their raw records and their status events
  in that order; `order_violations` counts those that came before one they followed
  (must be 0). Callbacks that were in flight together may land either way.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, NamedTuple

from bench.stats import Percentiles, percentiles
from bench.topics import Seen, callback_change
from bench.vegeta import Answer

STATUS_TYPES = frozenset({"oc.outbound.order.status_changed.v1", "oc.return.updated.v1"})
ENRICHED_TYPES = frozenset({"oc.outbound.order.enriched.v1", "oc.return.enriched.v1"})


@dataclass(frozen=True, slots=True)
class Audit:
    accepted: int
    present: int
    reconciled: int
    missing: int
    missing_raw: int
    duplicates: int
    duplicates_raw: int
    extra: int
    not_enriched: int
    follow_ups: int
    follow_ups_missing: int
    order_checked: int = 0  # accepted callbacks sent after another of their entity's
    order_violations: int = 0
    order_violations_raw: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)

    @property
    def clean(self) -> bool:
        return (
            self.missing == 0
            and self.missing_raw == 0
            and self.duplicates == 0
            and self.order_violations == 0
            and self.order_violations_raw == 0
        )


class Sent(NamedTuple):
    """When an accepted callback was sent and answered, and the entity it is about."""

    key: str
    sent_at: float
    answered_at: float


def sent_timing(
    answers: Iterable[Answer], delivery: Mapping[str, str], keys: Mapping[str, str]
) -> dict[str, Sent]:
    """The accepted callbacks' timing by delivery id, from the load tool's answers
    (`delivery`: message id -> delivery id; `keys`: delivery id -> entity key)."""
    timing = {}
    for answer in answers:
        found = delivery.get(answer.message_id or "")
        if answer.code == 200 and found is not None:
            timing[found] = Sent(keys[found], answer.sent_at, answer.sent_at + answer.latency_s)
    return timing


def order_violations(sent: Mapping[str, Sent], position: Mapping[str, int]) -> tuple[int, int]:
    """(callbacks checked, violations): a callback sent after another callback of its
    entity had been answered must come after it (`position`: where each delivery's record
    is in its topic, in the order the reader saw them; one entity is one partition). A
    callback counts once however many of its predecessors it overtook."""
    by_key: dict[str, list[tuple[str, Sent]]] = {}
    for delivery, item in sent.items():
        if delivery in position:
            by_key.setdefault(item.key, []).append((delivery, item))
    checked = violations = 0
    for items in by_key.values():
        answered = sorted(items, key=lambda i: i[1].answered_at)
        done = 0  # answered[:done] were answered before the current one was sent
        latest = -1  # the highest position among them
        for delivery, item in sorted(items, key=lambda i: i[1].sent_at):
            while done < len(answered) and answered[done][1].answered_at < item.sent_at:
                latest = max(latest, position[answered[done][0]])
                done += 1
            if latest >= 0:
                checked += 1
                violations += latest > position[delivery]
    return checked, violations


def status_events(records: Iterable[Seen]) -> dict[str, Seen]:
    """The first status event seen for each delivery id."""
    first: dict[str, Seen] = {}
    for r in records:
        if r.ce_type in STATUS_TYPES and r.delivery_id is not None:
            first.setdefault(r.delivery_id, r)
    return first


def audit(
    accepted: Iterable[str],
    bodies: Mapping[str, bytes],
    records: list[Seen],
    raw_topic: str,
    timing: Mapping[str, Sent] | None = None,
) -> Audit:
    """`accepted` are delivery ids; `bodies` every sent callback by delivery id;
    `records` what the reader saw; `timing`, when given, the accepted callbacks' timing and
    entity, for the order check."""
    accepted_ids = set(accepted)
    typed = [r for r in records if r.ce_id is not None]
    raw = Counter(r.delivery_id for r in records if r.topic == raw_topic and r.ce_id is None)
    ce_ids = Counter(r.ce_id for r in typed)
    statuses = status_events(typed)
    unmatched = set(statuses) - accepted_ids
    sent = set(bodies)
    changes = {r.change for r in typed if r.change is not None}
    without = accepted_ids - set(statuses)
    reconciled = {d for d in without if callback_change(bodies.get(d, b"")) in changes}
    owed = {r.event_id for r in typed if r.ce_type in STATUS_TYPES and r.enrichment in _OWED}
    followed = {r.enriches for r in typed if r.ce_type in ENRICHED_TYPES}
    checked, violations, violations_raw = 0, 0, 0
    if timing is not None:
        status_at = _first_positions(r.delivery_id for r in typed if r.ce_type in STATUS_TYPES)
        raw_at = _first_positions(r.delivery_id for r in records if r.topic == raw_topic)
        checked, violations = order_violations(timing, status_at)
        _, violations_raw = order_violations(timing, raw_at)
    return Audit(
        accepted=len(accepted_ids),
        present=len(accepted_ids & set(statuses)),
        reconciled=len(reconciled),
        missing=len(without - reconciled),
        missing_raw=len(accepted_ids - set(raw)),
        duplicates=sum(n - 1 for n in ce_ids.values() if n > 1),
        duplicates_raw=sum(n - 1 for n in raw.values() if n > 1),
        extra=len(unmatched & sent),
        not_enriched=len(owed),
        follow_ups=len(owed & followed),
        follow_ups_missing=len(owed - followed),
        order_checked=checked,
        order_violations=violations,
        order_violations_raw=violations_raw,
    )


def _first_positions(deliveries: Iterable[str | None]) -> dict[str, int]:
    """Where each delivery id first appears (later copies are duplicates, counted apart)."""
    found: dict[str, int] = {}
    for index, delivery in enumerate(deliveries):
        if delivery is not None:
            found.setdefault(delivery, index)
    return found


def followed_up(records: Iterable[Seen]) -> bool:
    """Every status event published not (fully) enriched has its `*.enriched` follow-up."""
    seen = list(records)
    owed = {r.event_id for r in seen if r.ce_type in STATUS_TYPES and r.enrichment in _OWED}
    return owed <= {r.enriches for r in seen if r.ce_type in ENRICHED_TYPES}


_OWED = frozenset({"partial", "unavailable"})


def end_to_end(sent_at: Mapping[str, float], records: Iterable[Seen]) -> Percentiles:
    """Send (load tool) -> status event visible to the reader, per accepted delivery."""
    statuses = status_events(records)
    return percentiles(statuses[d].at - at for d, at in sent_at.items() if d in statuses)


def enrichment_mix(records: Iterable[Seen]) -> dict[str, int]:
    counted = Counter(r.enrichment or "none" for r in records if r.ce_type in STATUS_TYPES)
    return dict(sorted(counted.items()))


def duplicate_copies(
    records: Iterable[Seen], origin: float, limit: int = 10
) -> list[dict[str, Any]]:
    """The first `limit` typed events seen more than once: their type, when each copy
    became visible (seconds since `origin`) and where it is (partition@offset), so a
    failed audit says which events to look at."""
    copies: dict[str, list[Seen]] = {}
    for record in records:
        if record.ce_id is not None:
            copies.setdefault(record.ce_id, []).append(record)
    found = [seen for seen in copies.values() if len(seen) > 1][:limit]
    return [
        {
            "ce_id": seen[0].ce_id,
            "ce_type": seen[0].ce_type,
            "topic": seen[0].topic,
            "copies": [{"at_s": round(s.at - origin, 3), "where": s.where} for s in seen],
        }
        for seen in found
    ]


def log_findings(path: Path) -> dict[str, int]:
    """`Unclosed` warnings, and ERROR (or CRITICAL, or non-JSON) lines, in a gateway's output."""
    unclosed = errors = 0
    for text in path.read_text(errors="replace").splitlines():
        unclosed += "Unclosed" in text
        try:
            level = json.loads(text).get("level")
        except ValueError:
            level = "error"  # a traceback or warning printed outside the JSON log
        errors += level in ("error", "critical")
    return {"unclosed": unclosed, "error_lines": errors}
