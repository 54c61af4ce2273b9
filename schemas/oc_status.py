"""OC's status strings mapped onto our known statuses (pure functions).

OC's docs do not publish the status field or its values; the outbound order values OC
shows are known from a third-party system's UI (oc-api README §3.1) and listed, in OC's
order of an order's life, in `OC_ORDER_STATUSES`. Statuses stay open strings on the wire:
these functions map OC's values and every other plausible spelling onto the closed sets in
`schemas.events`; anything else is "unknown" (counted by the gateway, never rejected).
Matching ignores case, spaces, `-`, `.` and `/`, and common prefixes such as `OUTBOUND_`,
`ORDER_`, `RETURN_` and `RMA_`, and a `_STATUS` suffix.

To map a new spelling, add it to `_ORDER_SPELLINGS` or `_RETURN_SPELLINGS` (a value OC
is known to send goes into `OC_ORDER_STATUSES` too) and to tests/schemas/test_status.py.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import lru_cache
from typing import Final, Literal, TypeVar

from schemas.events import OrderStatus, ReturnStatus

S = TypeVar("S", bound=str)
Unknown = Literal["unknown"]

_SEPARATORS = re.compile(r"[\s\-./]+")
_ORDER_PREFIXES: Final = ("outbound_order_", "outbound_", "order_", "status_", "oc_")
_RETURN_PREFIXES: Final = ("return_order_", "returns_", "return_", "rma_", "status_", "oc_")

OC_ORDER_STATUSES: Final[Mapping[str, OrderStatus]] = {
    # An order's life, in OC's order: the rank never goes down along it.
    "Draft": "created",
    "Submitted": "created",
    "Accepted": "allocated",
    "Create picking task": "picking",
    "Picked": "picking",
    "Packed": "packed",
    "Outbound": "shipped",
    "In-delivery": "shipped",
    "Delivered": "delivered",
    # Side exits.
    "Exception": "exception",
    "Undeliverable return": "exception",
    "failed": "exception",
    "Cancelled": "cancelled",
}
"""The outbound order status values OC shows (oc-api README §3.1), exactly as OC spells
them, and the status each one is published as. The README's event contract lists it."""

_ORDER_SPELLINGS: Final[Mapping[OrderStatus, str]] = {
    "created": """created create new init initial initialized submitted submit placed
        draft drafted open pending received confirmed wait_allocate awaiting_allocation
        to_be_allocated unallocated 已创建 新建 待处理 已下单""",
    "allocated": """allocated allocate allocation accepted accept assigned reserved
        stock_allocated waved released released_to_warehouse wait_pick awaiting_pick
        已分配 已分仓""",
    "picking": """picking pick picked create_picking_task picking_task picking_task_created
        in_picking pick_in_progress processing in_process in_progress fulfilling packing
        in_packing 拣货中 已拣货 处理中 打包中""",
    "packed": """packed pack packaged ready_to_ship ready_for_shipment awaiting_pickup
        awaiting_collection label_printed labelled labeled weighed 已打包 待发货""",
    "shipped": """shipped ship shipping dispatched despatched outbound outbounded
        shipped_out departed handed_over handover collected picked_up in_transit transit
        in_delivery delivering out_for_delivery fulfilled completed complete finished done
        已发货 已出库 运输中 已完成""",
    "delivered": "delivered signed signed_for pod 已签收 已妥投 妥投",
    "on_hold": """on_hold hold held suspended suspend paused blocked intercepted backorder
        backordered out_of_stock awaiting_stock stock_shortage 挂起 暂停 缺货 拦截""",
    "exception": """exception error failed fail failure problem abnormal delivery_failed
        undeliverable undeliverable_return returned_to_sender return_to_sender lost damaged
        rejected refused 异常 失败""",
    "cancelled": """cancelled canceled cancel cancellation void voided deleted
        已取消 取消""",
}

_RETURN_SPELLINGS: Final[Mapping[ReturnStatus, str]] = {
    "created": """created create new init initial submitted submit open pending approved
        authorized authorised rma_created awaiting_return awaiting_shipment label_created
        label_generated wait_ship 已创建 待退货 新建""",
    "in_transit": """in_transit transit shipped dispatched returning on_the_way picked_up
        collected tracking_updated shipping 运输中 退货中""",
    "received": """received receive arrived delivered signed checked_in inbound inbounded
        warehouse_received 已签收 已收货 已入库""",
    "inspected": """inspected inspecting inspection qc qc_done qc_completed quality_checked
        checked graded processed 已质检 质检中""",
    "restocked": """restocked restock put_away putaway put_away_complete putaway_complete
        pac shelved relisted resold sellable 已上架 已重新入库""",
    "disposed": """disposed dispose destroyed scrapped discarded recycled liquidated
        written_off 已销毁 已报废""",
    "cancelled": """cancelled canceled cancel cancellation void voided deleted rejected
        已取消 取消""",
}


def _spelling(raw: object) -> str:
    """`raw` casefolded, separators as `_`: the form the tables are keyed by."""
    text = "" if raw is None else str(raw).strip().casefold()
    return _SEPARATORS.sub("_", text).strip("_")


def _table(spellings: Mapping[S, str], known: Mapping[str, S] | None = None) -> dict[str, S]:
    table: dict[str, S] = {}
    for value, status in (known or {}).items():  # OC's own values come first
        table[_spelling(value)] = status
        table[_spelling(value).replace("_", "")] = status
    for status, words in spellings.items():
        for word in words.split():
            table.setdefault(word, status)
            table.setdefault(word.replace("_", ""), status)
    return table


_ORDER: Final = _table(_ORDER_SPELLINGS, OC_ORDER_STATUSES)
_RETURN: Final = _table(_RETURN_SPELLINGS)


def _candidates(raw: object, prefixes: tuple[str, ...]) -> list[str]:
    spelling = _spelling(raw)
    if not spelling:
        return []
    found = [spelling]
    for candidate in found:  # grows while prefixes peel off: ORDER_STATUS_SHIPPED -> SHIPPED
        found += [candidate.removeprefix(p) for p in prefixes if candidate.startswith(p)]
    found += [c.removesuffix("_status") for c in list(found) if c.endswith("_status")]
    found += [c.replace("_", "") for c in list(found)]
    return [c for c in found if c]


def normalize_order_status(raw: object) -> OrderStatus:
    """Our outbound-order status for OC's `raw` status ("In-delivery", "SHIPPED"...).

    Returns "unknown" for an empty or unrecognised value; never raises.
    """
    return _order_status(raw) if isinstance(raw, str) else _lookup(raw, _ORDER_PREFIXES, _ORDER)


def normalize_return_status(raw: object) -> ReturnStatus:
    """Our return status for OC's `raw` status ("RECEIVED", "rma_in_transit"...).

    Returns "unknown" for an empty or unrecognised value; never raises.
    """
    if isinstance(raw, str):
        return _return_status(raw)
    return _lookup(raw, _RETURN_PREFIXES, _RETURN)


def _lookup(raw: object, prefixes: tuple[str, ...], table: Mapping[str, S]) -> S | Unknown:
    for candidate in _candidates(raw, prefixes):
        if candidate in table:
            return table[candidate]
    return "unknown"


# The same few strings come with every callback: each is worked out once (bounded, as
# the strings come from OC).
@lru_cache(maxsize=4096)
def _order_status(raw: str) -> OrderStatus:
    return _lookup(raw, _ORDER_PREFIXES, _ORDER)


@lru_cache(maxsize=4096)
def _return_status(raw: str) -> ReturnStatus:
    return _lookup(raw, _RETURN_PREFIXES, _RETURN)
