"""Ingest's quick reading of an outbound callback's entities agrees with the models'."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from schemas.callbacks import parse_outbound_callback
from schemas.keys import outbound_keys
from tests.schemas.oc_examples import OUTBOUND_QUERY_RESPONSE


def model_keys(document: Any) -> list[str] | None:
    """The entity keys the full models find, or None if they refuse the document."""
    try:
        callback = parse_outbound_callback(json.dumps(document))
    except ValidationError:
        return None
    return [key for key, _ in callback.entities()]


ORDER_KEYS = st.sampled_from(["orderNumber", "ordernumber", "ORDER_NUMBER", "order-number"])
DATA_KEYS = st.sampled_from(["data", "Data", "DATA"])
NUMBERS = st.one_of(
    st.text(max_size=12),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.booleans(),
    st.none(),
)
ITEMS = st.dictionaries(
    st.one_of(ORDER_KEYS, st.sampled_from(["status", "serviceRegion", "x"])),
    NUMBERS,
    max_size=4,
)
DOCUMENTS = st.one_of(
    ITEMS,
    st.lists(ITEMS, max_size=3),
    st.dictionaries(
        st.one_of(DATA_KEYS, st.sampled_from(["messageId", "code"])),
        st.one_of(ITEMS, st.lists(ITEMS, max_size=3), NUMBERS),
        max_size=3,
    ),
)


@settings(max_examples=400)
@given(DOCUMENTS)
def test_when_the_quick_reading_answers_it_is_what_the_models_find(document: Any) -> None:
    quick = outbound_keys(document)
    full = model_keys(document)
    if quick is not None and full is not None:
        assert quick == full
    if full is None:
        # Ingest quarantines what the models refuse, unless its key was plain to see: the
        # processor then refuses the rest, with the reason, into the dead-letter topic.
        assert quick is None or all(isinstance(k, str) for k in quick)


@pytest.mark.parametrize(
    ("document", "keys"),
    [
        (json.loads(OUTBOUND_QUERY_RESPONSE), ["OCO0000011225074GB"]),
        ({"data": [{"orderNumber": "A"}, {"orderNumber": "B"}, {"orderNumber": "A"}]}, ["A", "B"]),
        ({"data": {"orderNumber": 12345}}, ["12345"]),
        ({"Data": [{"order_number": "A"}]}, ["A"]),
        ([{"orderNumber": "A"}], ["A"]),
        ({"orderNumber": "bare"}, ["bare"]),
        ({"data": [{"orderNumber": "exact", "ordernumber": "variant"}]}, ["exact"]),
    ],
)
def test_plain_shapes(document: Any, keys: list[str]) -> None:
    assert outbound_keys(document) == keys == model_keys(document)


@pytest.mark.parametrize(
    "document",
    [
        {"foo": 1},
        "hello",
        {"data": []},
        {"data": None},
        {"data": [{"x": 1}]},
        {"data": [{"orderNumber": True}]},
        {"data": [{"orderNumber": None}]},
        {"data": ["OCO1"]},
    ],
)
def test_anything_else_is_left_to_the_models(document: Any) -> None:
    assert outbound_keys(document) is None
