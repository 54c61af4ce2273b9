"""Input limits that protect ingest: JSON decoding with a depth cap, and a per-source
rate limit (token buckets). Pure apart from the clock passed in."""

from __future__ import annotations

import json
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from pydantic_core import from_json


class BadBody(ValueError):
    """The body is not UTF-8 JSON within the limits; the message is safe to show."""


def decode_json(body: bytes, max_depth: int) -> Any:
    """Strict UTF-8 JSON, nested at most `max_depth` deep.

    pydantic's JSON parser (jiter, already a dependency) reads the common body three
    times faster than the standard library; what it refuses (a lone surrogate escape,
    nesting past its own limit) is read again by the standard library, whose answer
    decides, so both accept exactly what `json.loads` accepts."""
    try:
        document = from_json(body, cache_strings=False)
    except ValueError:
        document = _decode_stdlib(body, max_depth)
    # Nesting is never deeper than the number of opening brackets (those inside strings
    # only overcount), so the walk is needed only for bodies with more than `max_depth`.
    if body.count(b"{") + body.count(b"[") > max_depth and _depth_exceeds(document, max_depth):
        raise BadBody(f"JSON nested deeper than {max_depth}")
    return document


def _decode_stdlib(body: bytes, max_depth: int) -> Any:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadBody("body is not valid UTF-8") from exc
    try:
        document = json.loads(text)
    except RecursionError as exc:
        raise BadBody(f"JSON nested deeper than {max_depth}") from exc
    except ValueError as exc:
        raise BadBody("body is not valid JSON") from exc
    return document


def _depth_exceeds(document: Any, max_depth: int) -> bool:
    stack: list[tuple[Any, int]] = [(document, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            children: Any = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        if depth > max_depth:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """A token bucket per source: `rate` per second sustained, `burst` at once."""

    def __init__(self, rate: float, burst: int, max_sources: int = 10_000) -> None:
        self._rate = rate
        self._burst = float(burst)
        self._max_sources = max_sources
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def acquire(self, source: str, now: float) -> float:
        """0 if a request from `source` may pass now, else seconds until one may."""
        bucket = self._buckets.get(source)
        if bucket is None:
            bucket = _Bucket(self._burst, now)
            self._buckets[source] = bucket
            if len(self._buckets) > self._max_sources:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(source)
            bucket.tokens = min(self._burst, bucket.tokens + (now - bucket.updated) * self._rate)
            bucket.updated = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0.0
        return (1.0 - bucket.tokens) / self._rate
