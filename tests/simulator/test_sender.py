"""The callback sender against a scriptable receiver on a real socket."""

from __future__ import annotations

import json
import socket
from collections import Counter

import httpx
import pytest

from gateway.ingest.standard_webhooks import signature_matches
from gateway.oc.signing import oc_signature_matches
from gateway.simulator.data import World, WorldSize
from gateway.simulator.report import SendReport, latency_summary, percentile
from gateway.simulator.sender import (
    SendConfig,
    SimulatorSource,
    WorldSource,
    send_callbacks,
    target_for,
)
from gateway.simulator.signing import CallbackSigner

from .conftest import Receiver, RunningSimulator

WHSEC = "whsec_c2VjcmV0LWZvci10aGUtc2VuZGVyLXRlc3Rz"
SIGNER = CallbackSigner(client_key="ck", secret_key="sk", sign_oc=True, webhook_secret=WHSEC)


def _world() -> World:
    return World(11, size=WorldSize(skus=30, orders=80, returns=10))


async def _send(
    config: SendConfig, signer: CallbackSigner = SIGNER, world: World | None = None
) -> SendReport:
    async with httpx.AsyncClient(timeout=5) as client:
        return await send_callbacks(config, WorldSource(world or _world()), client, signer)


@pytest.mark.parametrize(
    ("target", "kind", "expected"),
    [
        ("http://gw/webhooks/oc/outbound", "return", "http://gw/webhooks/oc/returns"),
        ("http://gw/webhooks/oc/tok/inventory", "outbound", "http://gw/webhooks/oc/tok/outbound"),
        ("http://gw/webhooks/oc/returns/", "inventory", "http://gw/webhooks/oc/inventory"),
        ("http://gw/hooks/{kind}?x=1", "return", "http://gw/hooks/returns?x=1"),
        ("http://gw/anything", "return", "http://gw/anything"),
    ],
)
def test_target_per_kind(target: str, kind: str, expected: str) -> None:
    assert target_for(target, kind) == expected  # type: ignore[arg-type]


def test_percentiles_use_the_nearest_rank() -> None:
    values = [float(v) for v in range(1, 1001)]
    assert percentile(values, 50) == 500.0
    assert percentile(values, 99.9) == 999.0
    assert percentile([], 50) == 0.0
    summary = latency_summary([3.0, 1.0, 2.0])
    assert (summary["p50"], summary["max"], summary["mean"]) == (2.0, 3.0, 2.0)


async def test_every_callback_arrives_signed_at_its_kinds_route(receiver: Receiver) -> None:
    target = f"{receiver.url}/webhooks/oc/tok/outbound"
    report = await _send(SendConfig(target=target, count=40, rate=0, seed=2))
    assert (report.accepted, report.rejected, report.failed, report.sent) == (40, 0, 0, 40)
    assert len(receiver.requests) == 40
    paths = Counter(path for path, _, _ in receiver.requests)
    assert set(paths) <= {f"/webhooks/oc/tok/{k}" for k in ("outbound", "returns", "inventory")}
    assert paths["/webhooks/oc/tok/outbound"] > 0
    for path, headers, body in receiver.requests:
        assert headers["content-type"] == "application/json"
        assert oc_signature_matches(headers["vauthorization"], path, body, "ck", ["sk"])
        assert headers["clientkey"] == "ck"
        webhook_id = headers["webhook-id"]
        assert webhook_id == json.loads(body)["messageId"]
        timestamp = int(headers["webhook-timestamp"])
        assert signature_matches(headers["webhook-signature"], [WHSEC], webhook_id, timestamp, body)
    assert report.to_json()["signing"] == ["oc_signature", "standard_webhooks"]


async def test_unsigned_when_nothing_is_configured(receiver: Receiver) -> None:
    report = await _send(SendConfig(target=receiver.url + "/x", count=3, rate=0), CallbackSigner())
    assert report.accepted == 3
    for _, headers, _ in receiver.requests:
        assert "vauthorization" not in headers
        assert "webhook-signature" not in headers


async def test_answers_are_counted_by_class(receiver: Receiver) -> None:
    receiver.respond = lambda n: (200, 400, 500, 302)[(n - 1) % 4]
    report = await _send(SendConfig(target=receiver.url + "/x", count=12, rate=0, concurrency=1))
    data = report.to_json()
    assert (data["accepted"], data["rejected"], data["failed"]) == (3, 3, 6)
    assert data["statuses"] == {"200": 3, "302": 3, "400": 3, "500": 3}
    latency = data["latencyMs"]
    assert 0 < latency["p50"] <= latency["p90"] <= latency["p99"] <= latency["p99.9"]
    assert latency["p99.9"] <= latency["max"]


async def test_failed_deliveries_are_retried_with_the_same_webhook_id(receiver: Receiver) -> None:
    receiver.respond = lambda n: 503 if n % 2 else 200
    config = SendConfig(
        target=receiver.url + "/x", count=5, rate=0, concurrency=1, attempts=3, retry_backoff_s=0
    )
    report = await _send(config)
    assert (report.accepted, report.retries, report.attempts) == (5, 5, 10)
    ids = [headers["webhook-id"] for _, headers, _ in receiver.requests]
    assert ids[0::2] == ids[1::2]
    assert len(set(ids)) == 5


async def test_an_unreachable_target_counts_as_failed() -> None:
    closed = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()
    report = await _send(SendConfig(target=f"http://127.0.0.1:{port}/x", count=4, rate=0))
    assert (report.failed, report.accepted) == (4, 0)
    assert report.to_json()["statuses"] == {"no_answer": 4}


async def test_drops_and_duplicates_are_deliberate_and_reported(receiver: Receiver) -> None:
    world = _world()
    config = SendConfig(
        target=receiver.url + "/x", count=100, rate=0, drop_rate=0.3, duplicate_rate=0.2, seed=5
    )
    report = await _send(config, world=world)
    assert world.counters["message"] == 100  # dropped callbacks still advanced the world
    assert 10 < report.dropped < 50
    assert 5 < report.duplicates < 40
    received = [json.loads(body)["messageId"] for _, _, body in receiver.requests]
    assert len(received) == 100 - report.dropped + report.duplicates
    assert len(set(received)) == 100 - report.dropped
    dropped = {d["messageId"] for d in report.to_json()["droppedCallbacks"]}
    assert len(dropped) == report.dropped
    assert dropped.isdisjoint(received)
    webhook_ids = [headers["webhook-id"] for _, headers, _ in receiver.requests]
    assert len(set(webhook_ids)) == len(webhook_ids)  # a duplicate is a new delivery


async def test_the_arrival_rate_is_fixed(receiver: Receiver) -> None:
    report = await _send(SendConfig(target=receiver.url + "/x", count=21, rate=50))
    assert report.accepted == 21
    assert report.elapsed_s >= 20 / 50
    assert report.to_json()["achievedRate"] <= 55


async def test_callbacks_can_come_from_a_running_simulator(
    receiver: Receiver, simulator: RunningSimulator
) -> None:
    before = simulator.sim.stats.callbacks_generated
    config = SendConfig(target=receiver.url + "/x", count=15, rate=0, kind="outbound", batch=4)
    async with httpx.AsyncClient(timeout=5) as client:
        source = SimulatorSource(client, simulator.url)
        report = await send_callbacks(config, source, client, SIGNER)
    assert report.accepted == 15
    assert simulator.sim.stats.callbacks_generated - before == 15
    for _, _, body in receiver.requests:
        order_number = json.loads(body)["data"][0]["orderNumber"]
        assert order_number in simulator.sim.world.orders
