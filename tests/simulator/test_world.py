"""The seeded world: reproducible, internally consistent, and its callbacks parse."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from gateway.simulator.data import World, WorldSize
from gateway.simulator.entities import (
    HELD_RETURN_STATUSES,
    ORDER_EXITS,
    ORDER_FLOW,
    ORDER_LIFE,
    ORDER_STATUSES,
    RESERVING_STATUSES,
)
from gateway.simulator.orders import advance_order, create_order, move_order, route
from schemas.callbacks import parse_callback, parse_outbound_callback
from schemas.oc_status import OC_ORDER_STATUSES

EPOCH = datetime(2026, 11, 1, 12, tzinfo=UTC)


class StepClock:
    """A clock that moves on a minute each time it is read."""

    def __init__(self) -> None:
        self.now = EPOCH

    def __call__(self) -> datetime:
        self.now += timedelta(minutes=1)
        return self.now


def _world(seed: int = 3) -> World:
    return World(
        seed, size=WorldSize(skus=40, orders=150, returns=20), epoch=EPOCH, clock=StepClock()
    )


def _reserved_by_orders(world: World) -> Counter[tuple[str, str]]:
    reserved: Counter[tuple[str, str]] = Counter()
    for order in world.orders.values():
        if order.status in RESERVING_STATUSES:
            for line in order.lines:
                reserved[(line.mf_sku_id, order.region)] += line.quantity
    return reserved


def _held_by_returns(world: World) -> Counter[tuple[str, str]]:
    held: Counter[tuple[str, str]] = Counter()
    for ret in world.returns.values():
        if ret.status in HELD_RETURN_STATUSES:
            for line in ret.lines:
                held[(line.mf_sku_id, ret.warehouse_code)] += line.quantity
    return held


def _assert_consistent(world: World) -> None:
    reserved = _reserved_by_orders(world)
    for key, cell in world.stock.items():
        assert cell.reserved_allocated == reserved[key], key
        assert cell.available >= 0, key
    held = _held_by_returns(world)
    for key, ret_cell in world.return_stock.items():
        assert ret_cell.reserved_hold == held[key], key
    balances: dict[tuple[str, str, str], int] = {}
    for m in world.movements:
        balances[(m.mf_sku_id, m.region, m.bucket)] = m.actual_count
    for (sku, region, bucket), balance in balances.items():
        cell = world.stock[(sku, region)]
        expected = {"AVL": cell.available, "RSV": cell.reserved_allocated}.get(
            bucket, cell.unfulfillable
        )
        assert balance == expected, (sku, region, bucket)


def test_the_same_seed_builds_the_same_world_and_callbacks() -> None:
    first, second = _world(), _world()
    assert first.summary() == second.summary()
    assert first.next_callbacks(300) == second.next_callbacks(300)
    assert first.summary() == second.summary()


def test_different_seeds_build_different_worlds() -> None:
    assert _world(3).next_callbacks(20) != _world(4).next_callbacks(20)


def test_the_initial_world_has_orders_at_every_stage_and_returns() -> None:
    world = _world()
    statuses = {o.status for o in world.orders.values()}
    assert set(ORDER_LIFE) - {"Draft"} <= statuses  # Draft only when asked for
    assert world.returns
    assert all(o.created_at < EPOCH for o in world.orders.values())
    _assert_consistent(world)


@pytest.mark.parametrize("kind", ["outbound", "return", "inventory", None])
def test_stock_stays_consistent_as_the_world_moves(kind: str | None) -> None:
    world = _world()
    world.next_callbacks(400, kind)  # type: ignore[arg-type]
    _assert_consistent(world)


def test_callbacks_parse_with_the_schemas_and_name_their_entity() -> None:
    world = _world()
    kinds: Counter[str] = Counter()
    for callback in world.next_callbacks(300):
        parsed = parse_callback(callback.kind, callback.body)
        assert [key for key, _ in parsed.entities()] == [callback.entity_key]
        assert parsed.message_id == callback.message_id
        kinds[callback.kind] += 1
    assert set(kinds) == {"outbound", "return", "inventory"}


def test_a_callback_describes_its_entity_as_it_now_is() -> None:
    world = _world()
    for _ in range(200):
        [callback] = world.next_callbacks(1)
        item = json.loads(callback.body)["data"][0]
        if callback.kind == "outbound":
            order = world.orders[callback.entity_key]
            assert (item["status"], _iso(item["statusTime"])) == (
                order.status,
                order.status_time.isoformat(),
            )
            assert item["consigneeName"] == order.consignee.name
        elif callback.kind == "return":
            assert item["status"] == world.returns[callback.entity_key].status
        else:
            sku, region = callback.entity_key.split(":")
            assert item["available"] == world.stock[(sku, region)].available


def test_shipping_consumes_the_reservation() -> None:
    world = _world()
    shipped = 0
    for callback in world.next_callbacks(600, "outbound"):
        item = json.loads(callback.body)["data"][0]
        if item["status"] != "Outbound":
            continue
        order = world.orders[callback.entity_key]
        assert item["trackingNumberList"][0]["trackingNumber"]
        reasons = {m.reason for m in world.movements if m.order_number == order.order_number}
        assert {"ALC", "OEH"} <= reasons
        shipped += 1
    assert shipped > 0
    _assert_consistent(world)


def test_returns_run_to_the_end_and_restock() -> None:
    world = _world()
    statuses = Counter(
        json.loads(c.body)["data"][0]["status"] for c in world.next_callbacks(800, "return")
    )
    assert {"CREATED", "IN_TRANSIT", "RECEIVED", "INSPECTED"} <= set(statuses)
    assert statuses["RESTOCKED"] + statuses["DISPOSED"] > 0
    assert any(cell.available > 0 for cell in world.return_stock.values())
    _assert_consistent(world)


def test_times_move_forward_per_entity() -> None:
    world = World(
        5, size=WorldSize(skus=20, orders=30, returns=5), epoch=EPOCH, clock=lambda: EPOCH
    )
    last: dict[str, str] = {}
    for callback in world.next_callbacks(200, "outbound"):
        time = _iso(json.loads(callback.body)["data"][0]["statusTime"])
        assert time > last.get(callback.entity_key, ""), callback.entity_key
        last[callback.entity_key] = time


def _iso(oc_time: str) -> str:
    return datetime.strptime(oc_time, "%Y-%m-%dT%H:%M:%S%z").astimezone(UTC).isoformat()


def _allowed(before: str, after: str) -> bool:
    return ORDER_FLOW.get(before) == after or after in dict(ORDER_EXITS.get(before, ()))


def test_outbound_callbacks_move_through_oc_s_statuses_in_oc_s_order() -> None:
    assert list(ORDER_STATUSES) == list(OC_ORDER_STATUSES)  # exactly OC's, in OC's order
    world = _world()
    seen: Counter[str] = Counter()
    for _ in range(3000):
        orders_before = {n: o.status for n, o in world.orders.items()}
        [callback] = world.next_callbacks(1, "outbound")
        status = json.loads(callback.body)["data"][0]["status"]
        before = orders_before.get(callback.entity_key)
        if before is None:
            assert status == "Submitted"  # a new order
        else:
            assert _allowed(before, status), (callback.entity_key, before, status)
        seen[status] += 1
    assert set(ORDER_LIFE) - {"Draft"} <= set(seen)
    assert {"Cancelled", "failed", "Exception"} <= set(seen)


def test_orders_end_delivered_or_in_a_side_exit() -> None:
    world = _world()
    ends: Counter[str] = Counter()
    for _ in range(400):
        order = create_order(world, world.now())
        visited = [order.status]
        while not order.is_final:
            advance_order(world, order, world.now_after(order.status_time))
            assert _allowed(visited[-1], order.status)
            visited.append(order.status)
        ends[order.status] += 1
    assert set(ends) == {"Delivered", "Cancelled", "failed", "Undeliverable return"}
    assert ends["Delivered"] > sum(ends.values()) * 0.8
    _assert_consistent(world)


@pytest.mark.parametrize(
    ("target", "steps"),
    [
        ("Submitted", []),
        ("Picked", ["Accepted", "Create picking task", "Picked"]),
        ("Cancelled", ["Cancelled"]),
        ("failed", ["failed"]),
        (
            "Undeliverable return",
            [*ORDER_LIFE[2:8], "Exception", "Undeliverable return"],
        ),
    ],
)
def test_an_order_reaches_any_status_the_shortest_way(target: str, steps: list[str]) -> None:
    assert route(target) == steps


def test_draft_is_reached_only_by_starting_there() -> None:
    assert route("Draft", start="Draft") == []
    with pytest.raises(ValueError, match="cannot get"):
        route("Draft")


@pytest.mark.parametrize("status", ORDER_STATUSES)
def test_a_callback_can_be_asked_for_in_any_of_oc_s_statuses(status: str) -> None:
    world = _world()
    before = set(world.orders)
    callbacks = world.next_callbacks(3, status=status)
    for callback in callbacks:
        assert callback.kind == "outbound"
        assert callback.entity_key not in before  # a new order each time
        [item] = json.loads(callback.body)["data"]
        assert item["status"] == status
        assert world.orders[callback.entity_key].status == status
        [order] = parse_outbound_callback(callback.body).data
        assert order.normalized_status() == OC_ORDER_STATUSES[status]
    _assert_consistent(world)


def test_asking_for_a_status_oc_does_not_show_changes_nothing() -> None:
    world = _world()
    summary = world.summary()
    with pytest.raises(ValueError, match="not one of OC"):
        world.next_callbacks(1, status="SHIPPED")
    with pytest.raises(ValueError, match="outbound"):
        world.next_callbacks(1, "return", status="Packed")
    assert world.summary() == summary


def test_a_draft_reserves_nothing_until_submitted_and_fails_if_its_stock_went() -> None:
    world = _world()
    [callback] = world.next_callbacks(1, status="Draft")
    draft = world.orders[callback.entity_key]
    assert not [m for m in world.movements if m.order_number == draft.order_number]
    for line in draft.lines:  # its stock goes meanwhile
        cell = world.cell(line.mf_sku_id, draft.region)
        world.move_stock(
            line.mf_sku_id,
            draft.region,
            available=-cell.available,
            reason="ADJ",
            order_number=None,
            at=world.now(),
        )
    move_order(world, draft, "Submitted", world.now_after(draft.status_time))
    assert draft.status == "failed"
    assert draft.is_final
    [callback] = world.next_callbacks(1, status="Draft")
    stocked = world.orders[callback.entity_key]
    move_order(world, stocked, "Submitted", world.now_after(stocked.status_time))
    assert stocked.status == "Submitted"
    assert {m.reason for m in world.movements if m.order_number == stocked.order_number} == {"ALC"}
    _assert_consistent(world)


def test_orders_asked_by_number_are_those_a_scan_finds_oldest_first() -> None:
    world = _world()
    numbers = list(world.orders)
    asked = [numbers[7], numbers[3], "OCO9999999999999GB", numbers[120], numbers[3]]
    scanned = [o for o in world.orders.values() if o.order_number in set(asked)]
    oldest_first = sorted(scanned, key=lambda o: (o.created_at, o.order_number))
    assert world.orders_matching(asked) == oldest_first
    window = world.orders_matching(asked, start=oldest_first[1].created_at)
    assert window == oldest_first[1:]
    assert world.orders_matching(["OCO9999999999999GB"]) == []
