"""/metrics of a running `gateway serve`: every documented metric is exported, and the
ones about callbacks and events move when callbacks flow."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from gateway.ops.metrics import Metrics
from tests.helpers import outbound_callback, wait_for
from tests.processes import GatewayProcess

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()
JSON = {"content-type": "application/json"}


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def value(text: str, name: str, **labels: str) -> float:
    return samples(text).get((name, tuple(sorted(labels.items()))), 0.0)


def test_the_readme_documents_every_metric() -> None:
    documented = set(re.findall(r"^\| `(gateway_[a-z_]+)` \|", README, re.M))
    exported = {
        m.name + ("_total" if m.type == "counter" else "") for m in Metrics().registry.collect()
    }
    assert documented == exported


async def test_metrics_are_exported_and_move_when_callbacks_flow(tmp_path: Path) -> None:
    gateway = GatewayProcess(
        {"GATEWAY_DATA_DIR": str(tmp_path / "data"), "GATEWAY_PATH_TOKENS": "t0k"},
        tmp_path / "gateway.log",
    )
    gateway.start()
    try:
        async with httpx.AsyncClient(base_url=gateway.url) as client:
            before = (await client.get(f"{gateway.metrics_url}/metrics")).text
            url = "/webhooks/oc/t0k/outbound"
            body = outbound_callback("OCO0000000000042GB", "SHIPPED", message_id="m1")
            for _ in range(2):  # the second is a duplicate
                assert (await client.post(url, content=body, headers=JSON)).status_code == 200
            assert (await client.post(url, content=b"{}", headers=JSON)).status_code == 200
            assert (await client.post(url, content=b"nope", headers=JSON)).status_code == 400
            wrong = "/webhooks/oc/guess/outbound"
            assert (await client.post(wrong, content=body, headers=JSON)).status_code == 401

            async def processed() -> bool:
                text = (await client.get(f"{gateway.metrics_url}/metrics")).text
                return value(text, "gateway_duplicates_total", kind="outbound") == 1

            await wait_for(processed)
            after = (await client.get(f"{gateway.metrics_url}/metrics")).text
            ready = await client.get(f"{gateway.metrics_url}/readyz")
            live = await client.get("/livez")
    finally:
        assert gateway.terminate() == 0

    for metric in Metrics().registry.collect():
        assert f"# HELP {metric.name}" in before  # every family is there from the start
    status_type = "oc.outbound.order.status_changed.v1"
    assert value(before, "gateway_ready") == 1
    assert value(before, "gateway_insecure_mode") == 0
    assert value(after, "gateway_callbacks_received_total", kind="outbound") == 5
    assert value(after, "gateway_callbacks_accepted_total", kind="outbound", log="embedded") == 3
    assert value(after, "gateway_callbacks_quarantined_total", reason="unknown_shape") == 1
    assert value(after, "gateway_callbacks_rejected_total", reason="malformed_body") == 1
    assert value(after, "gateway_callbacks_rejected_total", reason="verification_failed") == 1
    assert value(after, "gateway_verification_failures_total", method="path_token") == 1
    assert value(after, "gateway_ack_duration_seconds_count") == 5
    assert value(after, "gateway_log_append_duration_seconds_count", log="embedded") == 3
    assert value(after, "gateway_events_published_total", type=status_type) == 1
    assert value(after, "gateway_event_lag_seconds_count", type=status_type) == 1
    assert value(after, "gateway_enrichment_total", status="not_requested") == 1
    assert value(after, "gateway_processor_batch_duration_seconds_count") >= 1
    for stage in ("queued", "enrich", "build", "commit"):
        assert value(after, "gateway_processor_stage_duration_seconds_count", stage=stage) >= 1
    assert (ready.status_code, live.status_code) == (200, 200)
