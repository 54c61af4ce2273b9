"""A gateway process with its console on, and the callbacks a person would see in it."""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.helpers import outbound_callback
from tests.processes import GatewayProcess

ORDER = "OCO0000011225074GB"
OTHERS = ("OCO0000011225075GB", "OCO0000011225076GB")
JSON = {"content-type": "application/json"}


@dataclass(frozen=True)
class Sent:
    received: int
    accepted: int
    refused: int
    quarantined: int
    published: int


@contextmanager
def console_gateway(tmp: Path) -> Iterator[tuple[GatewayProcess, str]]:
    """`gateway serve` on the embedded log with the console on; yields it and its token."""
    token = "console-" + secrets.token_urlsafe(24)
    gateway = GatewayProcess(
        {
            "GATEWAY_DATA_DIR": str(tmp / "data"),
            "GATEWAY_PATH_TOKENS": "test-token",
            "GATEWAY_CONSOLE_TOKEN": token,
            "GATEWAY_INSTANCE_ID": "gateway-0",
            "GATEWAY_PII_POLICY": json.dumps(
                {"oc.outbound.orders.v1": {"country_code": "publish", "email": "mask"}}
            ),
        },
        tmp / "gateway.log",
    )
    gateway.start()
    try:
        yield gateway, token
    finally:
        gateway.terminate()


def _order(number: str, status: str, minute: int) -> bytes:
    return outbound_callback(
        number,
        status,
        message_id=f"m-{number}-{status}",
        status_time=f"2026-11-27T16:{minute:02d}:00+0800",
        consigneeName="Jane Doe",
        consigneeEmail="jane.doe@example.com",
        consigneeCountryCode="GB",
    )


def send_callbacks(url: str) -> Sent:
    """Callbacks with every outcome the console counts: published changes, a re-sent
    delivery (a duplicate), a body of unknown shape (quarantined) and a wrong path token
    (refused)."""
    bodies = [
        _order(ORDER, "Submitted", 0),
        _order(OTHERS[0], "Submitted", 1),
        _order(ORDER, "Packed", 20),
        _order(OTHERS[1], "Packed", 25),
        _order(ORDER, "Outbound", 45),
        _order(ORDER, "Outbound", 45),  # OC sent it again
    ]
    unknown = json.dumps({"data": [{"status": "SHIPPED", "reference": ORDER}]}).encode()
    with httpx.Client(base_url=url, timeout=10) as client:
        for body in [*bodies, unknown]:
            answer = client.post("/webhooks/oc/test-token/outbound", content=body, headers=JSON)
            assert answer.status_code == 200, answer.text
        refused = client.post(
            "/webhooks/oc/not-the-token/outbound", content=bodies[0], headers=JSON
        )
        assert refused.status_code >= 400
    return Sent(received=8, accepted=7, refused=1, quarantined=1, published=5)


def metric_sum(metrics_url: str, family: str) -> float:
    """The sum of a metric family's samples on /metrics."""
    text = httpx.get(f"{metrics_url}/metrics", timeout=5).text
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith((f"{family}{{", f"{family} "))
    )


def _until(done: Callable[[], bool], what: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not done():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not within {timeout_s} s")
        time.sleep(0.2)


def wait_for_events(metrics_url: str, published: int, timeout_s: float = 60.0) -> None:
    """Until /metrics says the processor published `published` events."""
    family = "gateway_events_published_total"
    _until(lambda: metric_sum(metrics_url, family) >= published, f"{published} events", timeout_s)


def wait_for_no_lag(metrics_url: str, timeout_s: float = 60.0) -> None:
    """Until the processor reported that it has caught up (it reports every 5 s)."""
    family = "gateway_processor_lag_records"
    _until(lambda: metric_sum(metrics_url, family) == 0, "no processor lag", timeout_s)
