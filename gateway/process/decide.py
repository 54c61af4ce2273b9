"""The decision core: what one observation of an entity means, given what was published.

Pure functions of values: an entity's state, one observation (a callback item, or OC's
current state found by reconciliation) and the time passed in. No I/O, no clock.

- `decide` says whether an observation is a duplicate (skip), no news (absorb) or a
  change to publish, with the previous status and whether it goes backwards.
- `remember` is the state after the observation was handled.
- `owe`, `follow_up_step` and `forgettable` decide the rest of an entity's life: the
  enrichment it is owed, when a follow-up is retried, given up or done, and when a quiet
  entity may be forgotten.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from enum import StrEnum

from gateway.process.state import RECENT, EntityState, FollowUp, Status


class Outcome(StrEnum):
    PUBLISHED = "published"
    DUPLICATE = "duplicate"
    ABSORBED = "absorbed"


@dataclass(frozen=True, slots=True)
class Observation:
    """One thing seen about an entity: a callback item, or a reconciled state."""

    identity: str
    """The item's own id: delivery, entity and position (`delivery#key#index`)."""
    fingerprint: str
    """What changed, independent of the delivery: a re-sent change has the same one."""
    occurred_ms: int
    """When OC says it happened."""
    status: Status | None = None
    """Our status for it; None for kinds without one (inventory levels)."""
    reconciled: bool = False
    """Found by polling OC (its current state), not reported by a callback."""
    oc_status: str | None = None
    """OC's status exactly as sent."""


@dataclass(frozen=True, slots=True)
class Decision:
    outcome: Outcome
    reason: str
    previous: Status | None = None
    regressed: bool = False

    @property
    def publish(self) -> bool:
        return self.outcome is Outcome.PUBLISHED


def behind(ranks: Mapping[str, int], previous: str | None, status: str | None) -> bool:
    """Whether `status` ranks below `previous` (both ranked). Statuses without a rank (on
    hold, exception, unknown) can come and go at any point and are never behind."""
    if previous is None or status is None:
        return False
    before, now = ranks.get(previous), ranks.get(status)
    return before is not None and now is not None and now < before


def regressed(ranks: Mapping[str, int], state: EntityState, seen: Observation) -> bool:
    """True when a change is earlier than one already published: its status ranks below
    the last one, or OC dated it before the last one (delivered out of order)."""
    if state.status is None:
        return False
    if behind(ranks, state.status, seen.status):
        return True
    return state.occurred_at_ms is not None and seen.occurred_ms < state.occurred_at_ms


def same_status(
    status: Status | None, oc_status: str | None, other: Status | None, other_oc: str | None
) -> bool:
    """Whether two statuses are the same: our status, and OC's own value when both sides
    know it (several of OC's values share one of ours: Outbound and In-delivery are both
    shipped, and going from one to the other is news)."""
    if status != other:
        return False
    return oc_status is None or other_oc is None or oc_status == other_oc


def decide(state: EntityState, seen: Observation, ranks: Mapping[str, int]) -> Decision:
    """Skip, absorb or publish `seen`, given the entity's `state`."""
    duplicate = state.saw(seen.identity, seen.fingerprint)
    if duplicate is not None:
        return Decision(Outcome.DUPLICATE, duplicate)
    if seen.reconciled:
        # OC's current state, found by polling: news when it differs from what was
        # published and is not behind it (OC's query can lag its own callbacks).
        if same_status(seen.status, seen.oc_status, state.status, state.oc_status):
            return Decision(Outcome.ABSORBED, "reconciled status already published")
        if behind(ranks, state.status, seen.status):
            return Decision(Outcome.ABSORBED, "reconciled status behind what was published")
    elif state.reconciled_status is not None and same_status(
        seen.status, seen.oc_status, state.reconciled_status, state.reconciled_oc_status
    ):
        return Decision(Outcome.ABSORBED, "reconciliation published this change first")
    return Decision(
        Outcome.PUBLISHED,
        "reconciled change" if seen.reconciled else "change",
        previous=state.status,
        regressed=regressed(ranks, state, seen),
    )


def _recent(items: tuple[str, ...], item: str) -> tuple[str, ...]:
    return (*items, item)[-RECENT:]


def remember(state: EntityState, seen: Observation, decision: Decision, now_ms: int) -> EntityState:
    """The entity's state once `seen` was handled as `decision` said."""
    if decision.outcome is Outcome.DUPLICATE:
        # The callback of a reconciled change may carry the very same change: it settles
        # the reconciled mark as a late callback would.
        if not seen.reconciled and state.reconciled_status is not None:
            return replace(state, reconciled_status=None, reconciled_oc_status=None)
        return state
    deliveries = _recent(state.deliveries, seen.identity)
    fingerprints = _recent(state.fingerprints, seen.fingerprint)
    if decision.outcome is Outcome.ABSORBED:
        # A late callback of a reconciled change settles it: the next one is news again.
        if seen.reconciled:
            return replace(state, deliveries=deliveries, fingerprints=fingerprints)
        return replace(
            state,
            deliveries=deliveries,
            fingerprints=fingerprints,
            reconciled_status=None,
            reconciled_oc_status=None,
        )
    advanced = not decision.regressed and seen.status is not None
    return replace(
        state,
        deliveries=deliveries,
        fingerprints=fingerprints,
        status=seen.status if advanced else state.status,
        oc_status=seen.oc_status if advanced else state.oc_status,
        occurred_at_ms=seen.occurred_ms if advanced else state.occurred_at_ms,
        reconciled_status=seen.status if seen.reconciled else None,
        reconciled_oc_status=seen.oc_status if seen.reconciled else None,
        updated_ms=now_ms,
    )


def owe(state: EntityState, follow_up: FollowUp) -> EntityState:
    """The state with one more enrichment owed."""
    return replace(state, followups=(*state.followups, follow_up))


@dataclass(frozen=True, slots=True)
class FollowUpStep:
    """What to do with a follow-up after one more try."""

    action: str  # "complete" | "retry" | "give_up"
    follow_up: FollowUp
    reason: str = ""


def follow_up_step(
    follow_up: FollowUp,
    still_missing: bool,
    now_ms: int,
    max_age_ms: int,
    backoff_s: Callable[[int], float],
) -> FollowUpStep:
    """After a try at a follow-up's enrichment: done when nothing is missing any more;
    given up when it has been owed longer than `max_age_ms`; else retried after
    `backoff_s(attempts)` seconds."""
    if not still_missing:
        return FollowUpStep("complete", follow_up)
    age_ms = now_ms - follow_up.first_ms
    if age_ms > max_age_ms:
        parts = ", ".join(follow_up.missing)
        reason = (
            f"follow_up_expired: OC did not answer {parts} within {max_age_ms / 1000:.0f} s "
            f"({follow_up.attempts + 1} attempts)"
        )
        return FollowUpStep("give_up", follow_up, reason)
    attempts = follow_up.attempts + 1
    next_ms = now_ms + int(backoff_s(attempts) * 1000)
    return FollowUpStep("retry", replace(follow_up, attempts=attempts, next_ms=next_ms))


def settle(state: EntityState, event_id: str, step: FollowUpStep) -> EntityState:
    """The state once a follow-up step was taken: a retried follow-up stays owed (with
    its next time), a completed or given-up one is no longer owed."""
    others = tuple(f for f in state.followups if f.event_id != event_id)
    if step.action == "retry":
        others = (*others, step.follow_up)
    return replace(state, followups=others)


def forgettable(state: EntityState, now_ms: int, retention_ms: int) -> bool:
    """Whether an entity quiet for longer than the retention, and owing nothing, may be
    forgotten (its dedup memory dropped)."""
    return not state.followups and state.updated_ms < now_ms - retention_ms
