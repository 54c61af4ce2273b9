"""The decision core as tables: skip, absorb or publish; the state it leaves; follow-ups
and retention. No Kafka, no app, no clock but the numbers passed in."""

from __future__ import annotations

from dataclasses import replace

import pytest

from gateway.process.decide import (
    Decision,
    Observation,
    Outcome,
    decide,
    follow_up_step,
    forgettable,
    owe,
    remember,
    settle,
)
from gateway.process.kinds import OUTBOUND, RETURN
from gateway.process.state import RECENT, EntityState, FollowUp, Status

RANKS = OUTBOUND.ranks
T0 = 1_800_000_000_000  # OC's event times, ms


def seen(
    status: Status | None,
    at_ms: int = T0,
    *,
    delivery: str = "d1#K#0",
    reconciled: bool = False,
    fingerprint: str | None = None,
) -> Observation:
    return Observation(
        identity=delivery,
        fingerprint=fingerprint or f"{status}|{status}|{at_ms}",
        occurred_ms=at_ms,
        status=status,
        reconciled=reconciled,
    )


def state(
    status: Status | None = None,
    at_ms: int | None = None,
    *,
    deliveries: tuple[str, ...] = (),
    fingerprints: tuple[str, ...] = (),
    reconciled_status: Status | None = None,
) -> EntityState:
    return EntityState(
        status=status,
        occurred_at_ms=at_ms,
        deliveries=deliveries,
        fingerprints=fingerprints,
        reconciled_status=reconciled_status,
    )


P, D, A = Outcome.PUBLISHED, Outcome.DUPLICATE, Outcome.ABSORBED


@pytest.mark.parametrize(
    ("before", "observed", "outcome", "reason", "previous", "regressed"),
    [
        # first sight of an entity
        (state(), seen("created"), P, "change", None, False),
        # the same delivery again (OC retried it), or the same change in a new delivery
        (
            state("shipped", T0, deliveries=("d1#K#0",)),
            seen("shipped"),
            D,
            "same delivery",
            None,
            False,
        ),
        (
            state("shipped", T0, fingerprints=("shipped|shipped|1",)),
            seen("shipped", delivery="d2#K#0", fingerprint="shipped|shipped|1"),
            D,
            "same change",
            None,
            False,
        ),
        # forwards
        (state("packed", T0), seen("shipped", T0 + 60_000), P, "change", "packed", False),
        # delivered out of order: ranks below what was published ...
        (state("shipped", T0), seen("packed", T0 + 60_000), P, "change", "shipped", True),
        # ... or same rank but OC dated it earlier
        (state("picking", T0), seen("picking", T0 - 1_000), P, "change", "picking", True),
        # statuses without a rank never regress by rank
        (state("shipped", T0), seen("on_hold", T0 + 1), P, "change", "shipped", False),
        (state("on_hold", T0), seen("created", T0 + 1), P, "change", "on_hold", False),
        (state("shipped", T0), seen("unknown", T0 + 1), P, "change", "shipped", False),
        (state("unknown", T0), seen("created", T0 + 1), P, "change", "unknown", False),
        # ... but an earlier OC time still is a regression
        (state("shipped", T0), seen("unknown", T0 - 1), P, "change", "shipped", True),
        # reconciliation: OC's current state is news only when ahead of what was published
        (
            state("packed", T0),
            seen("shipped", reconciled=True),
            P,
            "reconciled change",
            "packed",
            False,
        ),
        (
            state("shipped", T0),
            seen("shipped", reconciled=True),
            A,
            "reconciled status already published",
            None,
            False,
        ),
        (
            state("shipped", T0),
            seen("packed", reconciled=True),
            A,
            "reconciled status behind what was published",
            None,
            False,
        ),
        (state(), seen("created", reconciled=True), P, "reconciled change", None, False),
        # the late callback of a change reconciliation already published
        (
            state("shipped", T0, reconciled_status="shipped"),
            seen("shipped", T0 - 5_000),
            A,
            "reconciliation published this change first",
            None,
            False,
        ),
        # a callback for another status after a reconciled one is news
        (
            state("shipped", T0, reconciled_status="shipped"),
            seen("delivered", T0 + 5_000),
            P,
            "change",
            "shipped",
            False,
        ),
    ],
)
def test_decide(
    before: EntityState,
    observed: Observation,
    outcome: Outcome,
    reason: str,
    previous: Status | None,
    regressed: bool,
) -> None:
    assert decide(before, observed, RANKS) == Decision(outcome, reason, previous, regressed)


def test_returns_rank_their_own_statuses() -> None:
    decision = decide(state("restocked", T0), seen("in_transit", T0 + 1), RETURN.ranks)
    assert decision.regressed
    assert not decide(state("received", T0), seen("inspected", T0 + 1), RETURN.ranks).regressed


def test_a_published_change_moves_the_state_forwards() -> None:
    after = remember(
        state("packed", T0),
        seen("shipped", T0 + 5),
        decide_(state("packed", T0), seen("shipped", T0 + 5)),
        77,
    )
    assert (after.status, after.occurred_at_ms, after.updated_ms) == ("shipped", T0 + 5, 77)
    assert after.deliveries == ("d1#K#0",)
    assert after.fingerprints == (f"shipped|shipped|{T0 + 5}",)
    assert after.reconciled_status is None


def decide_(before: EntityState, observed: Observation) -> Decision:
    return decide(before, observed, RANKS)


def test_a_regression_is_remembered_but_does_not_move_the_status_back() -> None:
    before = state("shipped", T0)
    late = seen("packed", T0 - 10)
    after = remember(before, late, decide_(before, late), 5)
    assert (after.status, after.occurred_at_ms) == ("shipped", T0)
    assert after.deliveries == ("d1#K#0",)
    assert decide_(after, late).outcome is D  # and it is a duplicate from then on


def test_a_duplicate_changes_nothing() -> None:
    before = state("shipped", T0, deliveries=("d1#K#0",))
    again = seen("shipped")
    assert remember(before, again, decide_(before, again), 9) is before


def test_a_callback_carrying_the_very_change_reconciliation_published_settles_it() -> None:
    found = seen("shipped", T0, delivery="reconcile:1#K#0", reconciled=True)
    after = remember(state("packed", T0 - 10), found, decide_(state("packed", T0 - 10), found), 1)
    same = seen("shipped", T0, delivery="d7#K#0")  # same fingerprint: OC's own time
    decision = decide_(after, same)
    assert decision.outcome is D
    assert remember(after, same, decision, 2).reconciled_status is None


def test_reconciled_then_late_callback_then_news_again() -> None:
    found = seen("shipped", T0, delivery="reconcile:1#K#0", reconciled=True)
    first = remember(state("packed", T0 - 10), found, decide_(state("packed", T0 - 10), found), 1)
    assert (first.status, first.reconciled_status) == ("shipped", "shipped")
    late = seen("shipped", T0 - 5, delivery="d9#K#0")
    decision = decide_(first, late)
    assert decision.outcome is A
    settled = remember(first, late, decision, 2)
    assert settled.reconciled_status is None
    assert "d9#K#0" in settled.deliveries
    # a second callback of the same status (another shipment event) is news again
    assert decide_(settled, seen("shipped", T0 + 1, delivery="d10#K#0")).outcome is P


def test_an_absorbed_reconciliation_keeps_the_reconciled_mark() -> None:
    before = state("shipped", T0, reconciled_status="shipped")
    again = seen("shipped", reconciled=True, delivery="reconcile:2#K#0")
    after = remember(before, again, decide_(before, again), 3)
    assert after.reconciled_status == "shipped"


def test_only_the_recent_deliveries_and_changes_are_remembered() -> None:
    current = state()
    for n in range(RECENT + 5):
        item = seen("shipped", T0 + n, delivery=f"d{n}#K#0")
        current = remember(current, item, decide_(current, item), n)
    assert len(current.deliveries) == len(current.fingerprints) == RECENT
    assert current.deliveries[0] == "d5#K#0"


def owed(first_ms: int = 0, attempts: int = 0) -> FollowUp:
    return FollowUp(
        event_id="e1",
        event_type=OUTBOUND.change_event,
        missing=("order", "stock"),
        delivery_id="d1",
        identity="d1#K#0",
        occurred_at_ms=T0,
        received_at_ms=T0,
        first_ms=first_ms,
        next_ms=first_ms,
        attempts=attempts,
    )


MAX_AGE_MS = 86_400_000


@pytest.mark.parametrize(
    ("still_missing", "now_ms", "attempts", "action", "next_ms"),
    [
        (False, 1_000, 0, "complete", 0),
        (False, MAX_AGE_MS * 2, 7, "complete", 0),  # OC answered at last: done, not given up
        (True, 1_000, 0, "retry", 1_000 + 5_000),
        (True, 60_000, 3, "retry", 60_000 + 5_000 * 4),
        (True, MAX_AGE_MS, 20, "retry", MAX_AGE_MS + 5_000 * 21),  # at the max age: once more
        (True, MAX_AGE_MS + 1, 20, "give_up", 0),
    ],
)
def test_follow_up_steps(
    still_missing: bool, now_ms: int, attempts: int, action: str, next_ms: int
) -> None:
    step = follow_up_step(
        owed(attempts=attempts), still_missing, now_ms, MAX_AGE_MS, lambda n: 5.0 * n
    )
    assert step.action == action
    if action == "retry":
        assert (step.follow_up.next_ms, step.follow_up.attempts) == (next_ms, attempts + 1)
    if action == "give_up":
        assert step.reason == (
            "follow_up_expired: OC did not answer order, stock within 86400 s (21 attempts)"
        )


def test_settling_a_follow_up() -> None:
    other = replace(owed(), event_id="e2")
    with_two = owe(owe(state("shipped"), owed()), other)
    retry = follow_up_step(owed(), True, 10, MAX_AGE_MS, lambda n: 1.0)
    assert [f.event_id for f in settle(with_two, "e1", retry).followups] == ["e2", "e1"]
    done = follow_up_step(owed(), False, 10, MAX_AGE_MS, lambda n: 1.0)
    assert [f.event_id for f in settle(with_two, "e1", done).followups] == ["e2"]
    given_up = follow_up_step(owed(), True, MAX_AGE_MS + 1, MAX_AGE_MS, lambda n: 1.0)
    assert [f.event_id for f in settle(with_two, "e1", given_up).followups] == ["e2"]


@pytest.mark.parametrize(
    ("updated_ms", "owes", "now_ms", "expected"),
    [
        (1_000, False, 10_000, True),  # quiet for longer than the retention
        (6_000, False, 10_000, False),  # changed within it
        (5_000, False, 10_000, False),  # exactly at the edge: kept
        (1_000, True, 10_000, False),  # owes a follow-up: kept whatever its age
    ],
)
def test_retention(updated_ms: int, owes: bool, now_ms: int, expected: bool) -> None:
    entity = EntityState(updated_ms=updated_ms, followups=(owed(),) if owes else ())
    assert forgettable(entity, now_ms, retention_ms=5_000) is expected


def oc_seen(oc_status: str, *, reconciled: bool, delivery: str = "d1#K#0") -> Observation:
    return replace(seen("shipped", reconciled=reconciled, delivery=delivery), oc_status=oc_status)


@pytest.mark.parametrize(
    ("before", "observed", "outcome"),
    [
        # OC's own value tells changes apart that share one of our statuses
        (
            replace(state("shipped", T0), oc_status="Outbound"),
            oc_seen("In-delivery", reconciled=True),
            P,
        ),
        (
            replace(state("shipped", T0), oc_status="Outbound"),
            oc_seen("Outbound", reconciled=True),
            A,
        ),
        # a state written before OC's value was kept: compared by our status alone
        (state("shipped", T0), oc_seen("In-delivery", reconciled=True), A),
        # the late callback of another OC value than the one reconciled is news
        (
            replace(
                state("shipped", T0, reconciled_status="shipped"),
                reconciled_oc_status="In-delivery",
            ),
            oc_seen("Outbound", reconciled=False),
            P,
        ),
        (
            replace(
                state("shipped", T0, reconciled_status="shipped"),
                reconciled_oc_status="In-delivery",
            ),
            oc_seen("In-delivery", reconciled=False),
            A,
        ),
    ],
)
def test_oc_values_that_share_a_status(
    before: EntityState, observed: Observation, outcome: Outcome
) -> None:
    assert decide(before, observed, RANKS).outcome is outcome


def test_oc_s_own_value_is_remembered_with_the_status() -> None:
    found = oc_seen("In-delivery", reconciled=True)
    after = remember(state("packed", T0), found, decide_(state("packed", T0), found), 1)
    assert (after.oc_status, after.reconciled_oc_status) == ("In-delivery", "In-delivery")
    late = replace(
        oc_seen("In-delivery", reconciled=False, delivery="d2#K#0"), fingerprint="callback"
    )
    settled = remember(after, late, decide_(after, late), 2)
    assert (settled.reconciled_status, settled.reconciled_oc_status) == (None, None)
