"""Optional tracing: a span per callback, per processed record and per OC call, one
trace from OC's request to the typed event, with traceparent in the Kafka headers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from gateway.lifespan import Gateway
from gateway.ops.tracing import Tracing
from gateway.simulator.data import WorldSize
from gateway.simulator.state import SimulatorConfig
from tests.conftest import SettingsFactory
from tests.helpers import TOKEN_PATH, read_topic, running_app, wait_for
from tests.simulation import Sim, oc_client_settings, running_simulator

CLIENT_KEY = "trace-client-key"
SECRET_KEY = "trace-secret-key"
TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"


@pytest.fixture
async def sim() -> AsyncIterator[Sim]:
    config = SimulatorConfig(
        seed=3, client_key=CLIENT_KEY, secret_key=SECRET_KEY, world_size=WorldSize(orders=5)
    )
    async with running_simulator(config) as running:
        yield running


def trace_of(headers: Any) -> str:
    traceparent = dict(headers)["traceparent"].decode()
    return str(traceparent.split("-")[1])


async def test_one_trace_from_callback_to_typed_event(
    make_settings: SettingsFactory, sim: Sim
) -> None:
    exporter = InMemorySpanExporter()
    settings = make_settings(
        tracing_enabled=True,
        **oc_client_settings(sim, CLIENT_KEY, SECRET_KEY),
        verify_oc_signature=False,
        reconcile_enabled=False,
    )
    tracing = Tracing(settings, SimpleSpanProcessor(exporter))
    [body] = await sim.callbacks(1, "outbound")
    async with running_app(settings, tracing=tracing) as (client, gateway):
        response = await client.post(
            f"{TOKEN_PATH}/outbound",
            content=body,
            headers={"content-type": "application/json", "traceparent": TRACEPARENT},
        )
        assert response.status_code == 200

        async def published() -> bool:
            return len(await read_topic(gateway, settings.topic_outbound)) == 1

        await wait_for(published)
        raw = await read_topic(gateway, settings.topic_raw)
        typed = await read_topic(gateway, settings.topic_outbound)

    spans = {span.name: span for span in exporter.get_finished_spans()}
    assert {"callback outbound", "process outbound"} <= set(spans)
    assert any(name.startswith("oc ") for name in spans)  # the enrichment's OC calls
    # OC's trace context is continued, through the raw record, to the typed event.
    assert {format(s.context.trace_id, "032x") for s in spans.values()} == {TRACE_ID}
    assert trace_of(raw[0].headers) == TRACE_ID
    assert trace_of(typed[0].headers) == TRACE_ID
    process = spans["process outbound"]
    assert process.parent is not None
    assert process.parent.span_id == spans["callback outbound"].context.span_id


async def test_tracing_off_adds_no_header(make_settings: SettingsFactory) -> None:
    settings = make_settings()
    gateway = Gateway(settings)
    assert gateway.tracing is not None
    assert not gateway.tracing.enabled
    assert gateway.tracing.headers() == ()
