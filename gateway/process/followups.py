"""Follow-up enrichment: what an event could not carry in time, published once OC answers.

An entity's state lists the follow-ups it is owed (written in the same transaction as
the event that needed them), so they survive restarts and rebalances. Each batch, the
processor tries the ones that are due (at most `MAX_PER_BATCH`, all in one enrichment),
and `decide.follow_up_step` says what then: when OC answered, an `*.enriched` event
carries what was missing; otherwise the follow-up is tried again later, with the shared
retry policy's backoff (from `enrich_followup_delay_s`, capped at five minutes). After
`enrich_followup_max_age_s` the gateway stops waiting: it publishes what it has, saying
it is final, and dead-letters a record of the given-up follow-up with the reason, so
nothing is dropped silently and nothing waits forever.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any, Final

from gateway.clock import Clock
from gateway.ingest.record import Kind
from gateway.log.base import Record
from gateway.ops.metrics import Metrics
from gateway.process.decide import FollowUpStep, follow_up_step, settle
from gateway.process.dlq import given_up
from gateway.process.enrich import Enriched, Enricher
from gateway.process.kinds import EntityKind
from gateway.process.publish import Publisher, fresh_levels
from gateway.process.state import FollowUp, StateKey, StateView
from gateway.retry import RetryPolicy
from gateway.settings import Settings

MAX_PER_BATCH: Final = 50
BACKOFF_CAP_S: Final = 300.0


class FollowUps:
    """Tries the follow-ups that are due; handed what it needs, it owns nothing else."""

    def __init__(
        self,
        settings: Settings,
        enricher: Enricher,
        kinds: Mapping[Kind, EntityKind[Any]],
        publisher: Publisher,
        metrics: Metrics,
        clock: Clock,
        rng: random.Random | None = None,
    ) -> None:
        self._settings = settings
        self._enricher = enricher
        self._kinds = kinds
        self._publisher = publisher
        self._metrics = metrics
        self._clock = clock
        self._rng = rng or random.Random()
        self._policy = RetryPolicy(
            max_retries=0, base_s=settings.enrich_followup_delay_s, cap_s=BACKOFF_CAP_S
        )

    def _backoff_s(self, attempts: int) -> float:
        return self._policy.backoff(attempts, self._rng)

    async def run(self, view: StateView, now_ms: int) -> dict[int, list[Record]]:
        due: list[tuple[int, StateKey, FollowUp]] = []
        for partition, key in view.pending():
            state = view.get(partition, key)
            due.extend((partition, key, f) for f in state.followups if f.next_ms <= now_ms)
            if len(due) >= MAX_PER_BATCH:
                break
        if not due:
            return {}
        needs = {
            id(f): self._kinds[key.kind].need(key.entity, f.skus, f.region) for _, key, f in due
        }
        answers = await self._enricher.enrich(
            list(dict.fromkeys(needs.values())), self._settings.enrich_timeout_s
        )
        max_age_ms = int(self._settings.enrich_followup_max_age_s * 1000)
        outputs: dict[int, list[Record]] = {}
        for partition, key, follow_up in due:
            need = needs[id(follow_up)]
            done = answers.get(need) or Enriched(missing=need.parts)
            still_missing = bool(set(done.missing) & set(follow_up.missing))
            step = follow_up_step(follow_up, still_missing, now_ms, max_age_ms, self._backoff_s)
            outputs.setdefault(partition, []).extend(self._outputs(view, key, step, done))
            state = view.get(partition, key)
            view.put(partition, key, settle(state, follow_up.event_id, step))
        return outputs

    def _outputs(
        self, view: StateView, key: StateKey, step: FollowUpStep, done: Enriched
    ) -> list[Record]:
        if step.action == "retry":
            self._metrics.retries.labels("follow_up").inc()
            return []
        kind = self._kinds[key.kind]
        final = step.action == "give_up"
        events = kind.enriched_events(step.follow_up, key.entity, done, final)
        status = "partial" if done.missing else "complete"
        self._metrics.enrichment.labels(f"follow_up_{status}").inc()
        levels: dict[str, tuple[int | None, ...]] = {}
        events = fresh_levels(events, view, levels)
        view.levels_published(levels.items())
        records = [self._publisher.record(e) for e in events]
        if final:
            self._metrics.dlq_records.labels("follow_up_expired").inc()
            records.append(
                given_up(
                    step.follow_up, key, self._settings.topic_dlq, step.reason, self._clock.now()
                )
            )
        return records
