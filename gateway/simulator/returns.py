"""Returns (RMAs) in the simulated world: creation, status changes, the returns warehouse.

A return is created for a delivered order; from RECEIVED its quantities are held in the
region's returns warehouse (`reservedHold`) until RESTOCKED (sellable lines become
`available`) or DISPOSED. All choices come from the world's seeded RNG.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Final

from gateway.simulator.entities import (
    REGIONS,
    RETURN_FLOW,
    Order,
    ReturnLine,
    ReturnOrder,
    ReturnStockCell,
)

if TYPE_CHECKING:
    from gateway.simulator.data import World

RETURN_REASONS: Final = ("NOT_AS_DESCRIBED", "CHANGED_MIND", "DAMAGED_IN_TRANSIT", "WRONG_ITEM")


def create_return(world: World, order: Order, at: datetime) -> ReturnOrder:
    rng = world.rng
    region = REGIONS[order.region]
    number = world.next_number("return")
    lines = [
        ReturnLine(
            line.mf_sku_id, world.skus[line.mf_sku_id].seller_sku_id, rng.randint(1, line.quantity)
        )
        for line in rng.sample(order.lines, k=rng.randint(1, len(order.lines)))
    ]
    ret = ReturnOrder(
        return_number=f"RMA{3000000000000 + number:013d}{region.order_suffix}",
        order_number=order.order_number,
        region=order.region,
        warehouse_code=region.return_warehouse,
        created_at=at,
        status="CREATED",
        status_time=at,
        reason=rng.choice(RETURN_REASONS),
        lines=lines,
    )
    world.returns[ret.return_number] = ret
    if order.order_number in world.returnable:
        world.returnable.remove(order.order_number)
    world.open_returns.append(ret.return_number)
    return ret


def _hold(world: World, ret: ReturnOrder) -> list[ReturnStockCell]:
    return [
        world.return_stock.setdefault((line.mf_sku_id, ret.warehouse_code), ReturnStockCell())
        for line in ret.lines
    ]


def advance_return(world: World, ret: ReturnOrder, at: datetime) -> None:
    """Move an open return one status on, with its effect on the returns warehouse."""
    rng = world.rng
    if ret.status == "CREATED" and rng.random() < 0.05:
        status = "CANCELLED"
    elif ret.status == "INSPECTED":
        sellable = any(line.condition != "DAMAGED" for line in ret.lines)
        status = "RESTOCKED" if sellable else "DISPOSED"
    else:
        status = RETURN_FLOW[ret.status]
    if status == "IN_TRANSIT":
        ret.carrier_code = rng.choice(REGIONS[ret.region].carriers)
        ret.tracking_number = f"RT{rng.randint(10**11, 10**12 - 1)}"
    elif status == "RECEIVED":
        for line, cell in zip(ret.lines, _hold(world, ret), strict=True):
            cell.reserved_hold += line.quantity
    elif status == "INSPECTED":
        for line in ret.lines:
            line.condition = "NEW" if rng.random() < 0.75 else "DAMAGED"
    elif status in ("RESTOCKED", "DISPOSED"):
        for line, cell in zip(ret.lines, _hold(world, ret), strict=True):
            cell.reserved_hold -= line.quantity
            if line.condition != "DAMAGED":
                cell.available += line.quantity
                cell.put_away_time = at
    ret.status, ret.status_time = status, at
    if ret.is_final and ret.return_number in world.open_returns:
        world.open_returns.remove(ret.return_number)
