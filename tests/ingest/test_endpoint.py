"""The webhook endpoint's own decisions, as tables: which paths are its routes, which
content types are JSON, and what a sender signed as the path."""

from __future__ import annotations

import pytest

from gateway.ingest.endpoint import json_content_type, route, signed_path

ROUTES = [
    ("/webhooks/oc/outbound", ("outbound", None)),
    ("/webhooks/oc/returns", ("returns", None)),
    ("/webhooks/oc/t0ken/outbound", ("outbound", "t0ken")),
    ("/webhooks/oc/parcels", ("parcels", None)),  # a route; the kind is refused later
    ("/webhooks/oc/", (None, None)),
    ("/webhooks/oc/outbound/", (None, None)),
    ("/webhooks/oc//outbound", (None, None)),
    ("/webhooks/oc/a/b/c", (None, None)),
    ("/webhooks/other", (None, None)),
    ("/livez", (None, None)),
]


@pytest.mark.parametrize(("path", "expected"), ROUTES, ids=[p for p, _ in ROUTES])
def test_route(path: str, expected: tuple[str | None, str | None]) -> None:
    assert route(path) == expected


CONTENT_TYPES = [
    ("application/json", True),
    ("application/json; charset=utf-8", True),
    ("Application/JSON", True),
    ("text/json", True),
    ("application/cloudevents+json", True),
    ("", True),  # OC's headers are not documented; the body is checked anyway
    ("text/plain", False),
    ("application/x-www-form-urlencoded", False),
]


@pytest.mark.parametrize(("value", "json"), CONTENT_TYPES, ids=[v or "-" for v, _ in CONTENT_TYPES])
def test_json_content_type(value: str, json: bool) -> None:
    assert json_content_type(value) is json


def test_the_signed_path_is_the_url_path() -> None:
    assert signed_path("/webhooks/oc/outbound") == "/webhooks/oc/outbound"
    assert signed_path("/webhooks/oc/a?b#c\\d") == "/webhooks/oc/a%3Fb%23c%5Cd"
