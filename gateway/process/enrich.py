"""The enrichment port: what the processor asks of OC's API, and what comes back.

A batch of records asks once: each entity that needs enrichment is a `Need` (its entity
look-up and its stock look-up, as its kind says), and the `Enricher` answers all of them
within one deadline with whatever it got. The parts it could not fetch are listed in
`missing`, and the processor owes a follow-up event for them. It never raises for OC's
failures: a slow or broken OC degrades events, it does not stop them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from schemas.events import EnrichmentPart, OcOrderState, OcReturnState, StockLevel


@dataclass(frozen=True, slots=True)
class Need:
    """One entity to enrich: `entity_part` is the look-up of the entity itself (`order`,
    `return_order`), `stock_part` that of its SKUs' stock (`stock`, `return_stock`).
    With no `skus`, the stock is that of the SKUs the entity look-up returns."""

    key: str
    entity_part: EnrichmentPart
    stock_part: EnrichmentPart
    skus: tuple[str, ...] = ()
    region: str | None = None

    @property
    def parts(self) -> tuple[EnrichmentPart, EnrichmentPart]:
        return (self.entity_part, self.stock_part)


@dataclass(frozen=True, slots=True)
class Enriched:
    """What OC answered for one `Need`."""

    entity: OcOrderState | OcReturnState | None = None
    stock: tuple[StockLevel, ...] = ()
    missing: tuple[EnrichmentPart, ...] = ()


class Enricher(Protocol):
    @property
    def enabled(self) -> bool: ...

    async def enrich(self, needs: Sequence[Need], deadline_s: float) -> Mapping[Need, Enriched]:
        """Every need's entity and stock, as far as OC answered within `deadline_s`."""
        ...

    async def ready(self) -> None:
        """Return once look-ups asked now would go out at once (OC's budget has room and
        none are waiting for it); at once when enrichment is off."""
        ...


class NoEnrichment:
    """Enrichment switched off (no OC base URL): events say `not_requested`."""

    @property
    def enabled(self) -> bool:
        return False

    async def enrich(self, needs: Sequence[Need], deadline_s: float) -> Mapping[Need, Enriched]:
        return {}

    async def ready(self) -> None:
        return None
