"""The enrichment port: what the processor asks of OC's API, and what comes back.

An `Enricher` answers within its deadline with whatever it got; the parts it could not
fetch are listed in `missing`, and the processor owes a follow-up event for them. It
never raises for OC's failures: a slow or broken OC degrades events, it does not stop them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from schemas.events import EnrichmentPart, OcOrderState, OcReturnState, StockLevel


@dataclass(frozen=True, slots=True)
class OutboundEnrichment:
    order: OcOrderState | None = None
    stock: list[StockLevel] = field(default_factory=list)
    missing: tuple[EnrichmentPart, ...] = ()


@dataclass(frozen=True, slots=True)
class ReturnEnrichment:
    return_order: OcReturnState | None = None
    stock: list[StockLevel] = field(default_factory=list)
    missing: tuple[EnrichmentPart, ...] = ()


class Enricher(Protocol):
    @property
    def enabled(self) -> bool: ...

    async def outbound(
        self, order_number: str, skus: Sequence[str], region: str | None, deadline_s: float
    ) -> OutboundEnrichment:
        """The order's current OC state and the stock of its SKUs, as far as OC answered."""
        ...

    async def returns(
        self, return_number: str, sku_ids: Sequence[str], deadline_s: float
    ) -> ReturnEnrichment:
        """The return order and its return stock, as far as OC answered."""
        ...


class NoEnrichment:
    """Enrichment switched off (no OC base URL): events say `not_requested`."""

    @property
    def enabled(self) -> bool:
        return False

    async def outbound(
        self, order_number: str, skus: Sequence[str], region: str | None, deadline_s: float
    ) -> OutboundEnrichment:
        return OutboundEnrichment()

    async def returns(
        self, return_number: str, sku_ids: Sequence[str], deadline_s: float
    ) -> ReturnEnrichment:
        return ReturnEnrichment()
