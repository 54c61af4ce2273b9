"""The canonical callback line is the JSON line structlog would have written; lines go out
once per event-loop turn."""

from __future__ import annotations

import asyncio
import io
import json

import pytest
import structlog

from gateway.ops.logs import (
    CallbackLine,
    NamedWriterFactory,
    TurnLines,
    configure_logging,
    get_logger,
)


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


class CountingStream(io.StringIO):
    """A stream that counts the writes reaching it."""

    def __init__(self) -> None:
        super().__init__()
        self.writes = 0

    def write(self, s: str) -> int:
        self.writes += 1
        return super().write(s)


def test_outside_an_event_loop_a_line_goes_out_at_once() -> None:
    lines, out = TurnLines(), CountingStream()
    lines.write(out, "a\n")
    assert (out.getvalue(), out.writes) == ("a\n", 1)


async def test_in_a_loop_the_turn_s_lines_leave_together_in_order() -> None:
    lines, out, other = TurnLines(), CountingStream(), CountingStream()
    for line in ("1\n", "2\n", "3\n"):
        lines.write(out, line)
    lines.write(other, "x\n")
    assert out.getvalue() == ""  # held for the end of the turn
    await asyncio.sleep(0)
    assert (out.getvalue(), out.writes) == ("1\n2\n3\n", 1)
    assert (other.getvalue(), other.writes) == ("x\n", 1)
    lines.write(out, "4\n")  # the next turn's line is due again
    await asyncio.sleep(0)
    assert out.getvalue().endswith("3\n4\n")


def test_lines_held_on_a_loop_that_closed_go_out_before_the_next_loop_s() -> None:
    lines, out = TurnLines(), CountingStream()
    loop = asyncio.new_event_loop()

    def write_and_stop() -> None:
        lines.write(out, "old\n")
        loop.stop()  # the turn ends; its flush was due the turn after, which never comes

    loop.call_soon(write_and_stop)
    loop.run_forever()
    loop.close()
    assert out.getvalue() == ""

    async def write_new() -> None:
        lines.write(out, "new\n")

    asyncio.run(write_new())
    assert out.getvalue() == "old\nnew\n"


async def test_a_stream_that_broke_meanwhile_loses_its_lines_not_the_loop() -> None:
    lines, broken, fine = TurnLines(), CountingStream(), CountingStream()
    lines.write(broken, "lost\n")
    lines.write(fine, "kept\n")
    broken.close()
    await asyncio.sleep(0)
    assert fine.getvalue() == "kept\n"
