"""Ingest's JSON decoding takes exactly what the standard library takes: the fast parser
it uses first never accepts a body `json.loads` refuses, nor reads one differently."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.ingest.limits import BadBody, decode_json

DEPTH = 32


def stdlib(body: bytes) -> Any:
    """What the standard library makes of `body`, or BadBody."""
    try:
        return json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return BadBody


def ours(body: bytes) -> Any:
    try:
        return decode_json(body, 10_000)
    except BadBody:
        return BadBody


def same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a):
        return math.isnan(b)
    return type(a) is type(b) and repr(a) == repr(b)


EDGES = [
    b'{"messageId": "m-1", "data": []}',
    b'"\\ud800"',  # a lone surrogate: the fast parser refuses it, json.loads takes it
    b'{"a": 123456789012345678901234567890}',
    b"[NaN, Infinity, -Infinity]",
    b"1e400",
    b"\xef\xbb\xbf{}",  # a byte-order mark
    b'{"a": "\xff"}',  # not UTF-8
    b'"a\x01b"',  # a raw control character
    b"01",
    b"[1,]",
    b'{"a":1}{"b":2}',
    b"",
    b"[" * 300 + b"]" * 300,  # past the fast parser's own nesting limit
]


@pytest.mark.parametrize("body", EDGES)
def test_edge_cases_read_as_the_standard_library_reads_them(body: bytes) -> None:
    assert same(ours(body), stdlib(body))


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda children: st.lists(children) | st.dictionaries(st.text(), children),
    max_leaves=20,
)


@given(json_values)
def test_any_json_reads_as_the_standard_library_reads_it(value: Any) -> None:
    body = json.dumps(value, ensure_ascii=False).encode("utf-8", "surrogatepass")
    assert same(ours(body), stdlib(body))


@given(st.binary(max_size=64))
def test_any_bytes_read_as_the_standard_library_reads_them(body: bytes) -> None:
    assert same(ours(body), stdlib(body))


def test_nesting_past_the_limit_is_refused() -> None:
    with pytest.raises(BadBody, match="nested deeper than 32"):
        decode_json(b"[" * 33 + b"]" * 33, DEPTH)
    assert decode_json(b"[" * 32 + b"]" * 32, DEPTH) is not None
