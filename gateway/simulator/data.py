"""The simulator's seeded, consistent world: SKUs, regions, stock, orders and returns.

`World(seed=...)` builds the same world for the same seed, epoch and size: SKUs stocked
per service region, outbound orders at every stage of their life, and returns. Stock is
kept consistent with orders at all times: an order reserves its quantities when submitted
(`available` -> `reservedAllocated`), releases them when cancelled or failed and consumes
them when it goes Outbound; every change is a ledger line for GetStockMovement. Returned
goods are held in the region's returns warehouse (`reservedHold`) until restocked or
disposed. OC's documented examples are there too (documented.py).

`next_callbacks()` advances the world and returns the callbacks OC would send for it;
the look-up APIs (see app.py) read the same state, so a callback always agrees with what
a query returns afterwards.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from gateway.simulator import lifecycle
from gateway.simulator.entities import (
    REGIONS,
    RETURN_WAREHOUSES,
    Movement,
    Order,
    ReturnedItem,
    ReturnOrder,
    ReturnStockCell,
    SimCallback,
    Sku,
    StockCell,
)
from schemas.callbacks import CallbackKind

Clock = Callable[[], datetime]
ReturnStockRow = tuple[str, str, str, ReturnStockCell, Sku | ReturnedItem]
"""(unique id asked for, mfSkuId, returns warehouse, stock, what measures it)"""


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class WorldSize:
    skus: int = 120
    orders: int = 300
    returns: int = 40


class Picks:
    """Numbers to pick from at random (open orders, open returns): a list's `append`,
    `remove`, `in`, `len` and indexing for `random.choice`, each in constant time.

    A long run opens hundreds of thousands of orders; `list.remove` scanned all of them
    every time one closed. Removing swaps the last number into the gap, so the order of
    the numbers is not kept (a pick is at random anyway), and a number appended twice is
    held once (a list would hold it twice; the world never appends one twice)."""

    __slots__ = ("_items", "_where")

    def __init__(self) -> None:
        self._items: list[str] = []
        self._where: dict[str, int] = {}

    def append(self, number: str) -> None:
        if number not in self._where:
            self._where[number] = len(self._items)
            self._items.append(number)

    def remove(self, number: str) -> None:
        index = self._where.pop(number, None)
        if index is None:
            raise ValueError(f"{number!r} is not among the picks")
        last = self._items.pop()
        if index < len(self._items):
            self._items[index] = last
            self._where[last] = index

    def __contains__(self, number: object) -> bool:
        return number in self._where

    def __len__(self) -> int:
        return len(self._items)

    def __getitem__(self, index: int) -> str:
        return self._items[index]


class World:
    """All of the simulated OC account's state, and the look-ups over it."""

    def __init__(
        self,
        seed: int = 1,
        *,
        size: WorldSize | None = None,
        clock: Clock = utc_now,
        epoch: datetime | None = None,
    ) -> None:
        self.seed = seed
        self.rng = random.Random(seed)
        self.clock = clock
        self.epoch = (epoch or clock()).astimezone(UTC).replace(microsecond=0)
        self.size = size or WorldSize()
        self.skus: dict[str, Sku] = {}
        self.seller_skus: dict[str, str] = {}
        self.stock: dict[tuple[str, str], StockCell] = {}
        self.region_skus: dict[str, list[str]] = {}  # SKUs with a stock cell, per region
        self._cell_order: list[tuple[str, str]] = []  # stock keys, sorted (for paging)
        self.movements: list[Movement] = []
        self.orders: dict[str, Order] = {}
        self.returns: dict[str, ReturnOrder] = {}
        self.return_stock: dict[tuple[str, str], ReturnStockCell] = {}
        self.returned_items: dict[str, ReturnedItem] = {}  # by unique id
        self.open_orders = Picks()
        self.open_returns = Picks()
        self.returnable = Picks()  # delivered orders without a return yet
        self.counters: dict[str, int] = {}
        lifecycle.populate(self)

    # --- identities ---------------------------------------------------------------------
    def next_number(self, name: str) -> int:
        self.counters[name] = self.counters.get(name, 0) + 1
        return self.counters[name]

    def now(self) -> datetime:
        """The clock in whole seconds (OC's time format has no fractions)."""
        return self.clock().astimezone(UTC).replace(microsecond=0)

    def now_after(self, earlier: datetime) -> datetime:
        """The clock, but never before one second after `earlier` (times only move on)."""
        return max(self.now(), earlier + timedelta(seconds=1))

    # --- stock --------------------------------------------------------------------------
    def cell(self, mf_sku_id: str, region: str) -> StockCell:
        key = (mf_sku_id, region)
        found = self.stock.get(key)
        if found is None:
            found = self.stock[key] = StockCell()
            self.region_skus.setdefault(region, []).append(mf_sku_id)
            self._cell_order.clear()
        return found

    def move_stock(
        self,
        mf_sku_id: str,
        region: str,
        *,
        available: int = 0,
        reserved: int = 0,
        unfulfillable: int = 0,
        reason: str,
        order_number: str | None,
        at: datetime,
    ) -> None:
        """Change one stock cell and write the ledger lines for it."""
        cell = self.cell(mf_sku_id, region)
        cell.available += available
        cell.reserved_allocated += reserved
        cell.unfulfillable += unfulfillable
        for bucket, delta, balance in (
            ("AVL", available, cell.available),
            ("RSV", reserved, cell.reserved_allocated),
            ("UNF", unfulfillable, cell.unfulfillable),
        ):
            if delta:
                number = self.next_number("movement")
                self.movements.append(
                    Movement(
                        f"MV{number:010d}",
                        mf_sku_id,
                        region,
                        bucket,
                        delta,
                        balance,
                        reason,
                        order_number,
                        at,
                    )
                )

    # --- look-ups -----------------------------------------------------------------------
    def orders_matching(
        self,
        numbers: Iterable[str] = (),
        references: Iterable[str] = (),
        ebay_order_ids: Iterable[str] = (),
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> list[Order]:
        """Orders named by any list (or all, when none is given) created within the window."""
        wanted = (set(numbers), set(references), set(ebay_order_ids))
        if wanted[0] and not (wanted[1] or wanted[2]):
            # By order number (what the gateway asks): the world's index, not a scan of
            # every order, so an answer does not slow down as a long run adds orders
            # (a whole `make bench` adds about 300,000). Oldest first.
            found = [o for n in wanted[0] if (o := self.orders.get(n)) is not None]
            found.sort(key=lambda o: (o.created_at, o.order_number))
        elif any(wanted):
            found = [
                o
                for o in self.orders.values()
                if o.order_number in wanted[0]
                or o.reference_number in wanted[1]
                or o.ebay_order_id in wanted[2]
            ]
        else:
            found = list(self.orders.values())
        return [
            o
            for o in found
            if (start is None or o.created_at >= start) and (end is None or o.created_at <= end)
        ]

    def stock_rows(
        self, skus: Iterable[str] = (), regions: Iterable[str] = ()
    ) -> list[tuple[str, str, StockCell]]:
        """(SKU, region, cell) rows in a stable order, filtered when filters are given."""
        sku_filter, region_filter = set(skus), {r.casefold() for r in regions}
        if not self._cell_order:
            self._cell_order.extend(sorted(self.stock))
        return [
            (sku, region, self.stock[(sku, region)])
            for sku, region in self._cell_order
            if (not sku_filter or sku in sku_filter)
            and (not region_filter or region.casefold() in region_filter)
        ]

    def movements_in(
        self, start: datetime, end: datetime, skus: Iterable[str] = ()
    ) -> list[Movement]:
        sku_filter = set(skus)
        return [
            m
            for m in self.movements
            if start <= m.at <= end and (not sku_filter or m.mf_sku_id in sku_filter)
        ]

    def returns_matching(
        self,
        numbers: Iterable[str] = (),
        order_number: str | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> list[ReturnOrder]:
        wanted = set(numbers)
        return [
            r
            for r in sorted(self.returns.values(), key=lambda r: r.return_number)
            if (not wanted or r.return_number in wanted)
            and (order_number is None or r.order_number == order_number)
            and (start is None or r.created_at >= start)
            and (end is None or r.created_at <= end)
        ]

    def return_stock_rows(
        self, unique_ids: Iterable[str]
    ) -> tuple[list[ReturnStockRow], list[str]]:
        """Rows for ids that are a returned item's unique id (its own row), or an mfSkuId or
        seller SKU with returned stock (a row per returns warehouse); and the ids that are
        none of these."""
        rows: list[ReturnStockRow] = []
        failed: list[str] = []
        for unique_id in unique_ids:
            item = self.returned_items.get(unique_id)
            if item is not None:
                rows.append((unique_id, item.mf_sku_id, item.warehouse_code, item.stock, item))
                continue
            sku = unique_id if unique_id in self.skus else self.seller_skus.get(unique_id)
            found: list[ReturnStockRow] = [
                (unique_id, s, warehouse, cell, self.skus[s])
                for (s, warehouse), cell in sorted(self.return_stock.items())
                if s == sku
            ]
            if found:
                rows += found
            else:
                failed.append(unique_id)
        return rows, failed

    def summary(self) -> dict[str, Any]:
        statuses: dict[str, int] = {}
        for order in self.orders.values():
            statuses[order.status] = statuses.get(order.status, 0) + 1
        returns: dict[str, int] = {}
        for ret in self.returns.values():
            returns[ret.status] = returns.get(ret.status, 0) + 1
        return {
            "seed": self.seed,
            "epoch": self.epoch.isoformat(),
            "skus": len(self.skus),
            "stockCells": len(self.stock),
            "orders": statuses,
            "returns": returns,
            "movements": len(self.movements),
            "callbacks": self.counters.get("message", 0),
        }

    # --- callbacks ----------------------------------------------------------------------
    def next_callbacks(
        self, count: int, kind: CallbackKind | None = None, status: str | None = None
    ) -> list[SimCallback]:
        """Advance the world `count` times; the callbacks OC would send for each change.
        With `status`, each is about a new outbound order just taken to OC's `status`."""
        return [lifecycle.step(self, kind, status) for _ in range(count)]


__all__ = [
    "REGIONS",
    "RETURN_WAREHOUSES",
    "Clock",
    "Picks",
    "SimCallback",
    "World",
    "WorldSize",
    "utc_now",
]
