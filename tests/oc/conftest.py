"""Fixtures of the OC client tests: the OC simulator on a real 127.0.0.1 socket, its
control API (faults, counters) over HTTP, and a started `OcClient` pointed at it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from gateway.clock import SYSTEM_CLOCK, Clock
from gateway.oc.client import OcClient
from gateway.ops.metrics import Metrics
from gateway.process import mapping
from gateway.process.enrich import Enriched, Enricher
from gateway.process.kinds import OUTBOUND, RETURN
from gateway.settings import Settings
from gateway.simulator.app import create_app
from gateway.simulator.data import WorldSize
from gateway.simulator.state import SimulatorConfig
from schemas.callbacks import parse_outbound_callback, parse_return_callback
from tests.conftest import SettingsFactory
from tests.simulation import Sim, oc_client_settings, serving

CLIENT_KEY = "oc-client-test-key"
SECRET_KEY = "oc-client-test-secret"


@dataclass(frozen=True)
class OutboundEvent:
    order_number: str
    region: str | None
    skus: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ReturnEvent:
    return_number: str
    skus: list[str] = field(default_factory=list)


async def outbound_events(sim: Sim, count: int, *, with_skus: bool = False) -> list[OutboundEvent]:
    """What `count` fresh outbound callbacks from the simulator ask to enrich; with
    `with_skus`, only callbacks that name SKUs (orders with parcels) are kept."""
    events: list[OutboundEvent] = []
    for _ in range(100):
        for body in await sim.callbacks(count, "outbound"):
            for item in parse_outbound_callback(body).data:
                skus = mapping.order_skus(item)
                if skus or not with_skus:
                    events.append(OutboundEvent(item.order_number, item.service_region, skus))
        if len(events) >= count:
            return events[:count]
    raise AssertionError("the simulator sent no callback of that kind")


async def return_events(sim: Sim, count: int) -> list[ReturnEvent]:
    events = []
    for body in await sim.callbacks(count, "return"):
        for item in parse_return_callback(body).data:
            skus = [line.mf_sku_id for line in item.item_list if line.mf_sku_id]
            events.append(ReturnEvent(item.return_number or "", skus))
    return events


async def enrich_outbound(
    enricher: Enricher, order: str, skus: list[str], region: str | None, deadline_s: float
) -> Enriched:
    """What the enricher answers for one outbound order asked on its own."""
    need = OUTBOUND.need(order, skus, region)
    return (await enricher.enrich([need], deadline_s))[need]


async def enrich_return(
    enricher: Enricher, return_number: str, skus: list[str], deadline_s: float
) -> Enriched:
    need = RETURN.need(return_number, skus, None)
    return (await enricher.enrich([need], deadline_s))[need]


def sample(metrics: Metrics, name: str, **labels: str) -> float:
    return metrics.registry.get_sample_value(name, labels) or 0.0


def world_config(**size: int) -> SimulatorConfig:
    return SimulatorConfig(
        seed=7,
        client_key=CLIENT_KEY,
        secret_key=SECRET_KEY,
        world_size=WorldSize(**{"skus": 80, "orders": 200, "returns": 30, **size}),
    )


@pytest.fixture(scope="module")
async def sim_url() -> AsyncIterator[str]:
    async with serving(create_app(world_config())) as url:
        yield url


@pytest.fixture
async def sim(sim_url: str) -> AsyncIterator[Sim]:
    """The module's simulator with default faults and zeroed counters."""
    async with httpx.AsyncClient(base_url=sim_url, timeout=10) as control:
        running = Sim(sim_url, control)
        await running.reset()
        try:
            yield running
        finally:
            await running.reset()


OcSettingsFactory = Callable[..., Settings]


@pytest.fixture
def oc_settings(make_settings: SettingsFactory, sim: Sim) -> OcSettingsFactory:
    """Settings for a client of `sim`; fast retries and a short budget for tests."""

    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            **oc_client_settings(sim, CLIENT_KEY, SECRET_KEY),
            "oc_timeout_s": 5.0,
            "oc_total_timeout_s": 10.0,
            "oc_rate_limit_per_s": 1000.0,
            "oc_max_concurrency": 8,
            **overrides,
        }
        return make_settings(**values)

    return make


ClientFactory = Callable[..., AbstractAsyncContextManager[OcClient]]


@pytest.fixture
def oc_client(oc_settings: OcSettingsFactory) -> ClientFactory:
    """`async with oc_client(metrics=..., clock=..., **settings) as client`."""

    @asynccontextmanager
    async def open_client(
        *, metrics: Metrics | None = None, clock: Clock = SYSTEM_CLOCK, **overrides: Any
    ) -> AsyncIterator[OcClient]:
        client = OcClient(oc_settings(**overrides), metrics or Metrics(), clock=clock)
        await client.start()
        try:
            yield client
        finally:
            await client.close()

    return open_client
