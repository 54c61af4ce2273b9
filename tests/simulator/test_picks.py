"""`Picks`: the simulator's numbers to pick from, against a plain list's behaviour."""

from __future__ import annotations

import random

import pytest

from gateway.simulator.data import Picks


@pytest.mark.parametrize("seed", range(5))
def test_picks_holds_what_a_list_would(seed: int) -> None:
    rng = random.Random(seed)
    picks, reference = Picks(), list[str]()
    for step in range(2_000):
        if reference and rng.random() < 0.45:
            gone = rng.choice(reference)
            picks.remove(gone)
            reference.remove(gone)
        else:
            picks.append(f"n{step}")
            reference.append(f"n{step}")
        assert len(picks) == len(reference)
    assert sorted(picks[i] for i in range(len(picks))) == sorted(reference)
    assert all(n in picks for n in reference)
    assert "n-1" not in picks


def test_removing_what_is_not_there_is_an_error_as_with_a_list() -> None:
    picks = Picks()
    picks.append("a")
    picks.remove("a")
    with pytest.raises(ValueError, match="not among the picks"):
        picks.remove("a")
    assert not picks
