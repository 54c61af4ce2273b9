"""Label values from request data stay a bounded set: the first N distinct, then `other`."""

from __future__ import annotations

import pytest

from gateway.ops.labels import NONE, OTHER, BoundedLabels


@pytest.mark.parametrize(
    ("limit", "values", "labels"),
    [
        (2, ["A", "B", "C", "A", "D", "B"], ["A", "B", OTHER, "A", OTHER, "B"]),
        (1, [" In transit ", "In transit", "x"], ["In transit", "In transit", OTHER]),
        (3, [None, "", "   ", "Z"], [NONE, NONE, NONE, "Z"]),  # missing is one value
        (0, ["A", None], [OTHER, OTHER]),
        (2, ["a", "A"], ["a", "A"]),  # as sent: case is not folded
    ],
)
def test_the_first_distinct_values_pass_and_later_ones_are_other(
    limit: int, values: list[str | None], labels: list[str]
) -> None:
    bounded = BoundedLabels(limit)
    assert [bounded(v) for v in values] == labels


def test_long_values_are_cut_so_one_label_stays_small() -> None:
    bounded = BoundedLabels(5, max_length=8)
    assert bounded("Undeliverable return") == "Undelive"
    assert bounded("Undeliverable again") == "Undelive"  # the same label, not a new one
    assert bounded("x" * 100) == "xxxxxxxx"


def test_a_nonsense_bound_is_refused() -> None:
    with pytest.raises(ValueError, match="limit"):
        BoundedLabels(-1)
    with pytest.raises(ValueError, match="max_length"):
        BoundedLabels(1, max_length=0)
