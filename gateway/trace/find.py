"""`trace`: read what the keys give for one entity, then tell its story.

Two rounds of reads, each round's reads at once:

1. the raw topic's partition for the key (from `--since`, or the start), the DLQ's
   partition for the key (dead letters keep the raw key; given-up follow-ups are keyed by
   the entity too), and the quarantine (keyed by delivery, small: matched on the body);
2. once the processor's decisions for those raw records are worked out again, the events
   they imply, each in its own window of the typed topic's partition for the key
   (search.py); with `with_state`, the state changelog's entry too (on the raw record's
   partition, from the entity's last raw record on).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from gateway.ingest.record import Kind
from gateway.log.base import LogRecord
from gateway.process.pii import PiiPolicy
from gateway.process.state import EntityState, StateKey
from gateway.settings import Settings
from gateway.trace.found import DeadLetter
from gateway.trace.mask import BodyMask
from gateway.trace.recompute import Recomputed, recompute
from gateway.trace.search import CLOCK_SKEW_MS, Wanted, find_events
from gateway.trace.source import Source
from gateway.trace.story import Searched, Story, tell


@dataclass(frozen=True, slots=True)
class Topics:
    raw: str
    dlq: str
    quarantine: str
    state: str
    typed: Mapping[Kind, str]

    @classmethod
    def of(cls, settings: Settings) -> Topics:
        return cls(
            settings.topic_raw,
            settings.topic_dlq,
            settings.topic_quarantine,
            settings.topic_state,
            {
                "outbound": settings.topic_outbound,
                "return": settings.topic_returns,
                "inventory": settings.topic_inventory,
            },
        )


def body_mask(settings: Settings) -> BodyMask:
    key = settings.pii_hmac_key.get_secret_value()
    return BodyMask(PiiPolicy(settings.pii_policy, key), key)


def wanted_by_kind(recomputed: Recomputed) -> dict[Kind, list[Wanted]]:
    """Per kind, each delivery's implied events with its raw record's time, in raw order."""
    wanted: dict[Kind, list[Wanted]] = {}
    for record in recomputed.records:
        if record.kind is None:
            continue
        ids = frozenset(e.event_id for item in record.items for e in item.events)
        wanted.setdefault(record.kind, []).append(Wanted(record.record.timestamp_ms, ids))
    return wanted


async def trace(
    source: Source,
    settings: Settings,
    entity: str,
    since_ms: int | None = None,
    *,
    with_state: bool = False,
    sources: Mapping[str, str] | None = None,
) -> Story:
    """Everything the logs say about `entity` (an order number, a return number or an
    inventory key `mfSkuId:place`)."""
    started = time.perf_counter()
    topics = Topics.of(settings)
    key = entity.encode()
    raw, dead, held = await asyncio.gather(
        source.keyed(topics.raw, key, since_ms),
        source.keyed(topics.dlq, key, since_ms),
        source.containing(topics.quarantine, key, since_ms),
    )
    letters = [DeadLetter.of(r) for r in dead]
    failed = {(r.partition, r.offset) for r in raw if any(d.of_raw(r) for d in letters)}
    recomputed = recompute(raw, failed)
    given_up = frozenset(d.event_id for d in letters if d.follow_up and d.event_id)
    wanted = wanted_by_kind(recomputed)
    kinds = sorted(wanted)
    typed = await asyncio.gather(
        *(find_events(source, topics.typed[k], key, wanted[k], given_up) for k in kinds)
    )
    searched = [
        Searched(
            "raw deliveries",
            topics.raw,
            await source.partition_of(topics.raw, key),
            since_ms,
            len(raw),
        ),
        Searched(
            "dead letters",
            topics.dlq,
            await source.partition_of(topics.dlq, key),
            since_ms,
            len(dead),
        ),
        Searched("quarantine", topics.quarantine, None, since_ms, len(held)),
    ]
    for kind, (found, from_ms) in zip(kinds, typed, strict=True):
        if from_ms is not None:
            topic = topics.typed[kind]
            partition = await source.partition_of(topic, key)
            searched.append(Searched(f"{kind} events", topic, partition, from_ms, len(found)))
    changelog = None
    if with_state:
        changelog = await _changelog(source, topics, raw, kinds, entity)
        searched.append(
            Searched(
                "state", topics.state, raw[-1].partition if raw else None, None, len(changelog)
            )
        )
    story = tell(
        entity,
        source.name,
        since_ms,
        recomputed,
        events=[r for found, _ in typed for r in found],
        dead=dead,
        quarantine=held,
        mask=body_mask(settings),
        topic_for={str(k): v for k, v in topics.typed.items()},
        changelog=changelog,
        sources=sources,
    )
    story.searched = searched
    story.elapsed_s = round(time.perf_counter() - started, 3)
    return story


async def _changelog(
    source: Source, topics: Topics, raw: Sequence[LogRecord], kinds: Sequence[Kind], entity: str
) -> dict[StateKey, EntityState | None]:
    """The processor's stored state of each of the entity's kinds: the last changelog
    record of `kind:entity` on the raw record's partition (empty value: forgotten)."""
    if not raw:
        return {}
    partition, last_ms = raw[-1].partition, max(r.timestamp_ms for r in raw) - CLOCK_SKEW_MS
    keys = [StateKey(kind, entity) for kind in kinds]
    found = await asyncio.gather(
        *(source.keyed(topics.state, k.encode(), last_ms, partition=partition) for k in keys)
    )
    states: dict[StateKey, EntityState | None] = {}
    for state_key, records in zip(keys, found, strict=True):
        if records:
            value = records[-1].value
            states[state_key] = EntityState.decode(value) if value else None
    return states
