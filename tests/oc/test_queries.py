"""Pure helpers of the OC queries: how a list is split, and shortened after a refusal."""

from __future__ import annotations

import pytest

from gateway.oc.queries import chunks, shorter_list


@pytest.mark.parametrize(
    ("current", "refused", "expected"),
    [
        (200, 200, 100),  # the whole list refused: half of it
        (200, 120, 60),  # a shorter list refused: half of what was refused
        (200, 3, 1),
        (200, 2, 1),
        (50, 120, 50),  # another query already shortened it further: keep that
        (1, 1, 1),  # never below one
    ],
)
def test_a_refused_list_is_asked_again_at_half_its_length(
    current: int, refused: int, expected: int
) -> None:
    assert shorter_list(current, refused) == expected


@pytest.mark.parametrize(
    ("items", "size", "expected"),
    [
        (5, 2, [2, 2, 1]),
        (4, 2, [2, 2]),
        (1, 200, [1]),
        (0, 3, []),
    ],
)
def test_chunks_keep_order_and_cut_at_size(items: int, size: int, expected: list[int]) -> None:
    numbers = [str(i) for i in range(items)]
    split = chunks(numbers, size)
    assert [len(c) for c in split] == expected
    assert [n for c in split for n in c] == numbers
