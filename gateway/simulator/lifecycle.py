"""How the simulated world changes: orders and returns move through their statuses, stock
follows them, and each change becomes the callback OC would send.

Every random choice comes from the world's seeded RNG, so the same seed, epoch and clock
replay the same changes. Stock rules: submitting an order reserves its quantities
(ALC), cancelling or failing releases them (CAN), going Outbound consumes them (OEH);
inventory changes are receipts (PAC), damage (DMG) and count adjustments (ADJ). Returns
are held in the returns warehouse from RECEIVED until RESTOCKED (sellable lines become
available) or DISPOSED.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Final

from gateway.simulator import documented
from gateway.simulator.entities import (
    DELIVERED,
    ORDER_STATUSES,
    REGIONS,
    Order,
    ReturnOrder,
    SimCallback,
    Sku,
)
from gateway.simulator.orders import (
    advance_order,
    create_order,
    deliver_new_order,
    order_in_status,
)
from gateway.simulator.payloads import (
    callback_body,
    inventory_item_json,
    order_json,
    return_json,
)
from gateway.simulator.returns import advance_return, create_return
from schemas.callbacks import CallbackKind

if TYPE_CHECKING:
    from gateway.simulator.data import World

KIND_WEIGHTS: Final[dict[CallbackKind, int]] = {"outbound": 75, "return": 15, "inventory": 10}


# --- the initial world -------------------------------------------------------------------
def populate(world: World) -> None:
    rng = world.rng
    for i in range(world.size.skus):
        sku = Sku(
            mf_sku_id=f"OC{675549 + i * 17:013d}",
            seller_sku_id=f"SELLER-{i + 1:05d}",
            length_cm=rng.randint(5, 60),
            width_cm=rng.randint(5, 40),
            height_cm=rng.randint(2, 30),
            weight_g=rng.randint(50, 5000),
        )
        world.skus[sku.mf_sku_id] = sku
        world.seller_skus[sku.seller_sku_id] = sku.mf_sku_id
    for sku_id in world.skus:
        for region in REGIONS:
            if rng.random() < 0.6:
                at = world.epoch - timedelta(seconds=round(rng.uniform(1, 60) * 86400))
                world.move_stock(
                    sku_id,
                    region,
                    available=rng.randint(20, 400),
                    reason="PAC",
                    order_number=None,
                    at=at,
                )
                cell = world.cell(sku_id, region)
                cell.in_transit = rng.choice((0, 0, 0, rng.randint(1, 50)))
                cell.reserved_vas = rng.choice((0, 0, 0, 1, 2))
    for _ in range(world.size.orders):
        at = world.epoch - timedelta(seconds=round(rng.uniform(60, 3 * 86400)))
        order = create_order(world, at)
        for _ in range(rng.choices(range(9), weights=(2, 1, 1, 1, 1, 2, 2, 3, 6))[0]):
            at += timedelta(seconds=round(rng.uniform(600, 4 * 3600)))
            if at >= world.epoch or order.is_final:
                break
            advance_order(world, order, at)
    delivered = [o for o in world.orders.values() if o.status == DELIVERED]
    for order in delivered[: world.size.returns]:
        at = order.status_time + timedelta(seconds=round(rng.uniform(3600, 2 * 86400)))
        if at >= world.epoch:
            continue
        ret = create_return(world, order, at)
        for _ in range(rng.randint(0, 4)):
            at += timedelta(seconds=round(rng.uniform(3600, 86400)))
            if at >= world.epoch or ret.is_final:
                break
            advance_return(world, ret, at)
    documented.add_documented_examples(world)


# --- changes -----------------------------------------------------------------------------
def _outbound_change(world: World, status: str | None) -> Order:
    if status is not None:
        return order_in_status(world, status)
    if not world.open_orders or world.rng.random() < 0.3:
        return create_order(world, world.now())
    order = world.orders[world.rng.choice(world.open_orders)]
    advance_order(world, order, world.now_after(order.status_time))
    return order


def _return_change(world: World) -> ReturnOrder:
    rng = world.rng
    if world.open_returns and rng.random() < 0.7:
        ret = world.returns[rng.choice(world.open_returns)]
        advance_return(world, ret, world.now_after(ret.status_time))
        return ret
    returnable = world.returnable
    order = world.orders[rng.choice(returnable)] if returnable else deliver_new_order(world)
    return create_return(world, order, world.now_after(order.status_time))


# --- inventory ---------------------------------------------------------------------------
def _inventory_change(world: World) -> tuple[str, str, str, int, datetime]:
    rng = world.rng
    sku_id, region = rng.choice(list(world.stock))
    at = world.now()
    cell = world.cell(sku_id, region)
    roll = rng.random()
    if roll < 0.2 and cell.available > 0:
        world.move_stock(
            sku_id, region, available=-1, unfulfillable=1, reason="DMG", order_number=None, at=at
        )
        return sku_id, region, "DMG", -1, at
    if roll < 0.3 and cell.available > 3:
        delta = -rng.randint(1, 3)
        world.move_stock(sku_id, region, available=delta, reason="ADJ", order_number=None, at=at)
        return sku_id, region, "ADJ", delta, at
    received = rng.randint(10, 100)
    world.move_stock(sku_id, region, available=received, reason="PAC", order_number=None, at=at)
    return sku_id, region, "PAC", received, at


# --- one step ----------------------------------------------------------------------------
def _pick_kind(world: World) -> CallbackKind:
    kinds = list(KIND_WEIGHTS)
    return world.rng.choices(kinds, weights=[KIND_WEIGHTS[k] for k in kinds])[0]


def step(world: World, kind: CallbackKind | None = None, status: str | None = None) -> SimCallback:
    """Change one entity of the world and return OC's callback about it. With `status`
    (one of OC's outbound order statuses), a new order is taken to that status.

    Raises ValueError for a status with another kind, or a status OC does not show.
    """
    if status is not None and kind not in (None, "outbound"):
        raise ValueError(f"a status picks an outbound order, not a {kind} callback")
    if status is not None and status not in ORDER_STATUSES:
        raise ValueError(f"{status!r} is not one of OC's order statuses")
    kind = "outbound" if status is not None else kind or _pick_kind(world)
    message_id = f"sim-{world.seed}-{world.next_number('message'):08d}"
    if kind == "outbound":
        order = _outbound_change(world, status)
        body = callback_body(
            message_id, order.status_time, [order_json(order, with_consignee=True)]
        )
        return SimCallback(kind, order.order_number, message_id, body)
    if kind == "return":
        ret = _return_change(world)
        body = callback_body(message_id, ret.status_time, [return_json(ret, world.skus)])
        return SimCallback(kind, ret.return_number, message_id, body)
    sku_id, region, reason, quantity, at = _inventory_change(world)
    item = inventory_item_json(
        sku_id,
        region,
        world.cell(sku_id, region),
        reason=reason,
        quantity=quantity,
        order_number=None,
        at=at,
    )
    return SimCallback(
        kind, f"{sku_id}:{region}", message_id, callback_body(message_id, at, [item])
    )
