"""The seeded world: reproducible, internally consistent, and its callbacks parse."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from gateway.simulator.data import World, WorldSize
from gateway.simulator.entities import HELD_RETURN_STATUSES, RESERVING_STATUSES
from schemas.callbacks import parse_callback

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
    assert {"CREATED", "ALLOCATED", "PACKED", "SHIPPED", "DELIVERED"} <= statuses
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
        if item["status"] != "SHIPPED":
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
