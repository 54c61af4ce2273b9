"""The fault runs' audit helpers: the per-entity order check as a table (which
arrangements of one entity's callbacks in a topic break the order OC sent them in), the
copies of a duplicated event, and what a gateway's output says an operator must act on."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.audit import Sent, duplicate_copies, log_findings, order_violations
from bench.topics import Seen


def sent(key: str, at: float, answered: float) -> Sent:
    return Sent(key, at, answered)


A1, A2, A3 = sent("A", 0.0, 1.0), sent("A", 2.0, 3.0), sent("A", 4.0, 5.0)


@pytest.mark.parametrize(
    ("callbacks", "positions", "expected"),
    [
        # One after the other, each answered before the next was sent.
        ({"a1": A1, "a2": A2, "a3": A3}, {"a1": 0, "a2": 1, "a3": 2}, (2, 0)),
        ({"a1": A1, "a2": A2, "a3": A3}, {"a1": 1, "a2": 0, "a3": 2}, (2, 1)),
        # The third overtook both: it counts once.
        ({"a1": A1, "a2": A2, "a3": A3}, {"a1": 1, "a2": 2, "a3": 0}, (2, 1)),
        # In flight together (the second sent before the first was answered): either way.
        ({"a1": A1, "a2": sent("A", 0.5, 1.5)}, {"a1": 1, "a2": 0}, (0, 0)),
        # Another entity's callbacks never constrain this one's.
        ({"a1": A1, "b1": sent("B", 2.0, 3.0)}, {"a1": 5, "b1": 0}, (0, 0)),
        # A callback missing from the topic is the audit's `missing`, not an order problem.
        ({"a1": A1, "a2": A2, "a3": A3}, {"a1": 0, "a3": 1}, (1, 0)),
        ({}, {}, (0, 0)),
    ],
)
def test_order_violations(
    callbacks: dict[str, Sent], positions: dict[str, int], expected: tuple[int, int]
) -> None:
    assert order_violations(callbacks, positions) == expected


def test_duplicate_copies_names_each_copy_of_a_typed_event_seen_twice() -> None:
    def typed(ce_id: str, at: float, where: str) -> Seen:
        return Seen(at, "out", ce_id, "oc.outbound.order.status_changed.v1", None, where=where)

    raw = Seen(100.5, "raw", None, None, "d1", where="0@1")
    records = [
        typed("e1", 101.0, "2@7"),
        raw,
        raw,
        typed("e2", 101.5, "1@3"),
        typed("e1", 104.25, "2@9"),
    ]
    assert duplicate_copies(records, origin=100.0) == [
        {
            "ce_id": "e1",
            "ce_type": "oc.outbound.order.status_changed.v1",
            "topic": "out",
            "copies": [{"at_s": 1.0, "where": "2@7"}, {"at_s": 4.25, "where": "2@9"}],
        }
    ]


def test_log_findings_counts_unclosed_warnings_and_lines_an_operator_must_act_on(
    tmp_path: Path,
) -> None:
    log = tmp_path / "gateway.log"
    lines = [
        {"event": "callback", "level": "info"},
        {"event": "Unable connect to node with id 1", "level": "warning", "repeated": 40},
        {"event": "storage write failed", "level": "error"},
        {"event": "Unclosed AIOKafkaProducer", "level": "error"},
        {"event": "fatal", "level": "critical"},
    ]
    log.write_text(
        "\n".join(json.dumps(line) for line in lines) + "\nTraceback (most recent call last):\n"
    )
    assert log_findings(log) == {"unclosed": 1, "error_lines": 4}
