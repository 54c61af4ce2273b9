"""Outbound orders in the simulated world: creation, status changes and their stock effects.

Orders live OC's statuses in OC's order (Submitted -> Accepted -> Create picking task ->
Picked -> Packed -> Outbound -> In-delivery -> Delivered), with the side exits of
`entities.ORDER_EXITS` (Cancelled, failed, Exception, Undeliverable return). Submitting an
order reserves its quantities (`available` -> `reservedAllocated`, reason ALC); cancelling
or failing releases them (CAN); going Outbound consumes the reservation (OEH). A Draft
reserves nothing; if its stock is gone when it is submitted, it fails. All choices come
from the world's seeded RNG.
"""

from __future__ import annotations

from collections import deque
from datetime import datetime
from typing import TYPE_CHECKING

from gateway.simulator import people
from gateway.simulator.entities import (
    CANCELLED,
    DELIVERED,
    DRAFT,
    FAILED,
    ORDER_EXITS,
    ORDER_FLOW,
    OUTBOUND,
    PACKED,
    REGIONS,
    RESERVING_STATUSES,
    SUBMITTED,
    Order,
    OrderLine,
    Parcel,
)

if TYPE_CHECKING:
    from gateway.simulator.data import World


def _stocked(world: World, region: str, wanted: int) -> list[str]:
    """Up to `wanted` distinct SKUs with available stock in `region`, picked at random
    (a few random probes first, so big worlds stay fast; a full scan only if they miss)."""
    skus = world.region_skus.get(region, [])
    picked: list[str] = []
    for _ in range(min(len(skus), 4 * wanted + 8)):
        sku = skus[world.rng.randrange(len(skus))]
        if sku not in picked and world.stock[(sku, region)].available > 0:
            picked.append(sku)
            if len(picked) == wanted:
                return picked
    if not picked:
        stocked = [sku for sku in skus if world.stock[(sku, region)].available > 0]
        picked = world.rng.sample(stocked, k=min(wanted, len(stocked)))
    return picked


def create_order(world: World, at: datetime, status: str = SUBMITTED) -> Order:
    """A new order, Submitted (its stock reserved) or, when asked, a Draft."""
    rng = world.rng
    region = REGIONS[rng.choice(sorted(REGIONS))]
    candidates = _stocked(world, region.name, rng.choice((1, 1, 1, 2, 3)))
    if not candidates:  # restock one SKU so the order can be reserved
        sku_id = rng.choice(sorted(world.skus))
        world.move_stock(
            sku_id,
            region.name,
            available=rng.randint(50, 200),
            reason="PAC",
            order_number=None,
            at=at,
        )
        candidates = [sku_id]
    number = world.next_number("order")
    order_number = f"OCO{2000000000000 + number:013d}{region.order_suffix}"
    lines = []
    for sku_id in candidates:
        quantity = rng.randint(1, min(3, world.cell(sku_id, region.name).available))
        serials = [f"SN{number:06d}{i}" for i in range(quantity)] if rng.random() < 0.2 else []
        lines.append(OrderLine(sku_id, quantity, serials))
    ebay_order_id = f"{rng.randint(10, 99)}-{rng.randint(10000, 99999)}-{rng.randint(10000, 99999)}"
    order = Order(
        order_number=order_number,
        reference_number=f"REF-{world.seed}-{number:07d}",
        ebay_id=f"buyer_{rng.randint(1000, 99999)}",
        ebay_order_id=ebay_order_id,
        region=region.name,
        shipping_service_code=f"{region.country}Dom_{rng.choice(region.carriers)}",
        created_at=at,
        status=DRAFT if status == DRAFT else SUBMITTED,
        status_time=at,
        lines=lines,
        consignee=people.consignee(rng, region.country),
        auto_fulfillment_ef=rng.random() < 0.3,
    )
    if order.status == SUBMITTED:
        _reserve(world, order, at)  # always enough: the quantities came from `available`
    world.orders[order_number] = order
    world.open_orders.append(order_number)
    return order


def _reserve(world: World, order: Order, at: datetime) -> bool:
    """Reserve the order's quantities; False (nothing reserved) when stock is short."""
    if any(
        world.cell(line.mf_sku_id, order.region).available < line.quantity for line in order.lines
    ):
        return False
    for line in order.lines:
        world.move_stock(
            line.mf_sku_id,
            order.region,
            available=-line.quantity,
            reserved=line.quantity,
            reason="ALC",
            order_number=order.order_number,
            at=at,
        )
    return True


def _release(world: World, order: Order, at: datetime) -> None:
    for line in order.lines:
        world.move_stock(
            line.mf_sku_id,
            order.region,
            available=line.quantity,
            reserved=-line.quantity,
            reason="CAN",
            order_number=order.order_number,
            at=at,
        )


def _pack(world: World, order: Order) -> Parcel:
    rng = world.rng
    region = REGIONS[order.region]
    carrier = order.shipping_service_code.rsplit("_", 1)[-1]
    weight = sum(world.skus[line.mf_sku_id].weight_g * line.quantity for line in order.lines)
    digits = "".join(rng.choice("0123456789") for _ in range(12))
    fee = f"{rng.uniform(2.5, 25):.2f}"
    return Parcel(
        f"{carrier[:2]}{digits}{region.order_suffix}", carrier, weight + 80, fee, region.currency
    )


def _next_order_status(world: World, order: Order) -> str:
    roll = world.rng.random()
    for status, share in ORDER_EXITS.get(order.status, ()):
        if roll < share:
            return status
        roll -= share
    return ORDER_FLOW[order.status]


def move_order(world: World, order: Order, status: str, at: datetime) -> None:
    """Put an open order in `status` (the next one in OC's order, or a side exit), with
    its stock effects."""
    if order.status == DRAFT and status == SUBMITTED and not _reserve(world, order, at):
        status = FAILED  # its stock went while it was a draft
    elif status in (CANCELLED, FAILED) and order.status in RESERVING_STATUSES:
        _release(world, order, at)
    elif status == PACKED:
        order.parcel = _pack(world, order)
    elif status == OUTBOUND:
        for line in order.lines:
            world.move_stock(
                line.mf_sku_id,
                order.region,
                reserved=-line.quantity,
                reason="OEH",
                order_number=order.order_number,
                at=at,
            )
    order.status, order.status_time = status, at
    if status == DELIVERED:
        world.returnable.append(order.order_number)
    if order.is_final and order.order_number in world.open_orders:
        world.open_orders.remove(order.order_number)


def advance_order(world: World, order: Order, at: datetime) -> None:
    """Move an open order one status on, usually the next in OC's order."""
    move_order(world, order, _next_order_status(world, order), at)


def route(target: str, start: str = SUBMITTED) -> list[str]:
    """The statuses an order goes through from `start` to `target` (inclusive), the
    shortest way along OC's order and its side exits; [] when `target` is `start`.
    Raises ValueError for a status the order cannot reach from `start`."""
    paths: deque[list[str]] = deque([[start]])
    seen = {start}
    while paths:
        path = paths.popleft()
        if path[-1] == target:
            return path[1:]
        nexts = [s for s, _ in ORDER_EXITS.get(path[-1], ())]
        if path[-1] in ORDER_FLOW:
            nexts.insert(0, ORDER_FLOW[path[-1]])
        for status in nexts:
            if status not in seen:
                seen.add(status)
                paths.append([*path, status])
    raise ValueError(f"an order cannot get from {start!r} to {target!r}")


def order_in_status(world: World, status: str) -> Order:
    """A new order taken to `status` along OC's order (one second a step when the clock
    stands still): the order a callback in that status is about."""
    start = DRAFT if status == DRAFT else SUBMITTED
    steps = route(status, start)  # before the world changes: ValueError for a bad status
    order = create_order(world, world.now(), start)
    for step in steps:
        move_order(world, order, step, world.now_after(order.status_time))
    return order


def deliver_new_order(world: World) -> Order:
    """A new order taken straight to Delivered (when a return needs one)."""
    order = create_order(world, world.now())
    while order.status != DELIVERED:
        if order.is_final:  # cancelled on the way: try another
            order = create_order(world, world.now())
            continue
        advance_order(world, order, world.now_after(order.status_time))
    return order
