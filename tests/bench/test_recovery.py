"""When a fault run's answers count as 200s again: after the last refusal, not the first."""

from __future__ import annotations

import pytest

from bench.faults import answers_200_again
from bench.vegeta import Answer


def answer(sent_at: float, code: int, latency_s: float = 0.01) -> Answer:
    return Answer(sent_at, latency_s, code, None, "")


@pytest.mark.parametrize(
    ("answers", "start", "expected"),
    [
        # Nothing refused: no recovery to speak of.
        ([answer(1, 200), answer(2, 200)], 0.0, None),
        # Refused, then accepted: the first 200 after the refusals, answered time.
        ([answer(1, 200), answer(2, 503), answer(3, 503), answer(4, 200, 0.5)], 0.0, 4.5),
        # A few 200s among the first refusals (a cap being crossed) are not the recovery.
        ([answer(2, 503), answer(2.1, 200), answer(3, 503), answer(5, 200)], 0.0, 5.01),
        # Connection errors (code 0) count as refusals.
        ([answer(2, 0), answer(6, 200)], 0.0, 6.01),
        # Refusals before the fault started are not this fault's.
        ([answer(1, 503), answer(2, 200)], 1.5, None),
        # Refused to the end: never recovered.
        ([answer(1, 200), answer(2, 503)], 0.0, None),
    ],
)
def test_answers_200_again(answers: list[Answer], start: float, expected: float | None) -> None:
    got = answers_200_again(answers, start)
    assert got == (pytest.approx(expected) if expected is not None else None)
