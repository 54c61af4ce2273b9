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
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass

from bench.stats import Percentiles, percentiles
from bench.topics import Seen, callback_change

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

    def as_dict(self) -> dict[str, int]:
        return asdict(self)

    @property
    def clean(self) -> bool:
        return self.missing == 0 and self.missing_raw == 0 and self.duplicates == 0


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
) -> Audit:
    """`accepted` are delivery ids; `bodies` every sent callback by delivery id;
    `records` what the reader saw."""
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
    )


_OWED = frozenset({"partial", "unavailable"})


def end_to_end(sent_at: Mapping[str, float], records: Iterable[Seen]) -> Percentiles:
    """Send (load tool) -> status event visible to the reader, per accepted delivery."""
    statuses = status_events(records)
    return percentiles(statuses[d].at - at for d, at in sent_at.items() if d in statuses)


def enrichment_mix(records: Iterable[Seen]) -> dict[str, int]:
    counted = Counter(r.enrichment or "none" for r in records if r.ce_type in STATUS_TYPES)
    return dict(sorted(counted.items()))
