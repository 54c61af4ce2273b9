"""The canonical callback line is the JSON line structlog would have written."""

from __future__ import annotations

import io
import json

import pytest
import structlog

from gateway.ops.logs import CallbackLine, NamedWriterFactory, configure_logging, get_logger


@pytest.mark.parametrize(
    ("delivery_id", "keys", "latency"),
    [
        ("sha256:0f1e", "OCO0000011225074GB", 3.412),
        ('wh"id\\with/odd\tchars', "OCO1,OCO2", 0.0),
        ("ünïcode-id", "日本", 1234.5),
    ],
)
def test_the_callback_line_is_what_structlog_writes(
    delivery_id: str, keys: str, latency: float
) -> None:
    ours = io.StringIO()
    CallbackLine("gateway.ingest", "info", ours).write(
        "outbound", "accepted", delivery_id, keys, latency
    )
    theirs = io.StringIO()
    configure_logging("info")
    structlog.configure(logger_factory=NamedWriterFactory(theirs))
    try:
        get_logger("gateway.ingest").info(
            "callback",
            kind="outbound",
            outcome="accepted",
            delivery_id=delivery_id,
            entity_keys=keys,
            latency_ms=latency,
        )
    finally:
        structlog.reset_defaults()
    mine, reference = ours.getvalue(), theirs.getvalue()
    cut = mine.index('"timestamp": "')
    assert mine[:cut] == reference[:cut]  # the same line, byte for byte, up to the time
    assert json.loads(mine)["timestamp"].endswith("Z")
    assert mine.isascii()


def test_above_info_the_callback_line_is_not_written() -> None:
    out = io.StringIO()
    CallbackLine("gateway.ingest", "warning", out).write("outbound", "accepted", "d", "k", 1.0)
    assert out.getvalue() == ""
