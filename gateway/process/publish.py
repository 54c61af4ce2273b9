"""Typed events -> the Kafka records that carry them (topic, key, CloudEvents headers)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Literal

from pydantic import BaseModel

from gateway.ingest.record import Kind
from gateway.log.base import Record
from gateway.process import mapping
from gateway.process.cloudevents import event_id, to_record
from gateway.settings import Settings
from schemas.events import INVENTORY_LEVEL, InventoryLevel, StockLevel

LevelSource = Literal["stock_snapshot", "return_stock_snapshot", "inventory_callback"]


class Publisher:
    def __init__(self, settings: Settings) -> None:
        self._topics: dict[Kind, str] = {
            "outbound": settings.topic_outbound,
            "return": settings.topic_returns,
            "inventory": settings.topic_inventory,
        }

    def topic_for(self, kind: Kind) -> str:
        return self._topics[kind]

    def event_record(
        self,
        event: BaseModel,
        event_type: str,
        ce_id: str,
        kind: Kind,
        key: str,
        occurred_at: datetime,
        *,
        reconciled: bool = False,
    ) -> Record:
        """One event on its kind's topic, keyed and CloudEvents-headed by its entity.
        A change found by reconciliation carries the `reconciled` extension attribute."""
        return to_record(
            event,
            event_type=event_type,
            ce_id=ce_id,
            topic=self._topics[kind],
            key=key,
            source=f"/oc-gateway/{kind}",
            subject=key,
            time=occurred_at,
            extensions={"reconciled": "true"} if reconciled else None,
        )

    def level_records(
        self,
        levels: Sequence[StockLevel],
        identity: str,
        observed: datetime,
        source: LevelSource,
    ) -> list[Record]:
        """Inventory-level events (compacted topic, latest wins) for stock OC reported."""
        records = []
        for level in levels:
            key = mapping.level_key(level)
            ce_id = event_id(INVENTORY_LEVEL, f"{identity}|{key}")
            event = InventoryLevel(event_id=ce_id, observed_at=observed, source=source, level=level)
            records.append(
                self.event_record(event, INVENTORY_LEVEL, ce_id, "inventory", key, observed)
            )
        return records
