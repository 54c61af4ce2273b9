"""A trace shows a raw body as its typed topic's personal-data policy allows, and no
header that could verify a delivery."""

from __future__ import annotations

import json

import pytest

from gateway.process import mapping
from gateway.process.pii import PiiPolicy, keyed_hash
from gateway.trace.mask import DROPPED, BodyMask, safe_headers
from schemas.callbacks import OUTBOUND_CALLBACK
from schemas.oc_entities import CONSIGNEE_FIELDS

TOPIC = "oc.outbound.orders.v1"
KEY = "pii-key"


def body(**consignee: object) -> bytes:
    order = {"orderNumber": "OCO1", "status": "SHIPPED", **consignee}
    return json.dumps({"messageId": "m", "data": [order]}).encode()


def masked(policy: dict[str, dict[str, str]], raw: bytes) -> dict[str, object]:
    mask = BodyMask(PiiPolicy(policy, KEY), KEY)  # type: ignore[arg-type]
    shown = mask.body(TOPIC, raw)
    order: dict[str, object] = shown["data"][0]
    return order


@pytest.mark.parametrize(
    ("mode", "shown"),
    [
        ("drop", DROPPED),
        ("mask", "J***"),
        ("hash", keyed_hash(KEY.encode(), "Jane Doe")),
        ("publish", "Jane Doe"),
    ],
)
def test_each_mode_shows_what_the_topic_carries(mode: str, shown: str) -> None:
    order = masked({TOPIC: {"name": mode}}, body(consigneeName="Jane Doe", status2="x"))
    assert order["consigneeName"] == shown
    assert order["orderNumber"] == "OCO1"  # not personal data: as sent


def test_nothing_configured_drops_every_consignee_field_in_any_key_case() -> None:
    raw = body(
        consigneeName="Jane", CONSIGNEE_EMAIL="j@example.com", consignee_phone="+44 1234 567890"
    )
    order = masked({}, raw)
    assert order["consigneeName"] == DROPPED
    assert order["CONSIGNEE_EMAIL"] == DROPPED
    assert order["consignee_phone"] == DROPPED
    assert b"Jane" not in json.dumps(order).encode()


def test_masks_follow_the_fields_the_policy_names() -> None:
    policy = {TOPIC: {"email": "mask", "phone": "mask", "country_code": "publish", "*": "drop"}}
    order = masked(
        policy,
        body(
            consigneeEmail="jane@example.com",
            consigneePhone="+44 1234 567890",
            consigneeCountryCode="GB",
            consigneeCity="London",
        ),
    )
    assert order["consigneeEmail"] == "j***@example.com"
    assert order["consigneePhone"] == "**********90"
    assert order["consigneeCountryCode"] == "GB"
    assert order["consigneeCity"] == DROPPED


def test_the_field_table_agrees_with_the_events_consignee() -> None:
    """The policy's field for each of OC's keys is the one the published event uses."""
    values = {name: f"value-{name}" for name in CONSIGNEE_FIELDS}
    order = OUTBOUND_CALLBACK.validate_json(body(**values)).data[0]
    consignee = mapping.consignee(order)
    policy = {TOPIC: dict.fromkeys(("name", "city"), "publish")}
    shown = masked(policy, body(**values))
    for oc_key in CONSIGNEE_FIELDS:
        published = oc_key in ("consigneeName", "consigneeCity")
        assert (shown[oc_key] == values[oc_key]) is published
    assert consignee.name == values["consigneeName"]
    assert consignee.city == values["consigneeCity"]


def test_a_body_that_is_not_json_is_never_shown() -> None:
    mask = BodyMask(PiiPolicy({}, ""), "")
    assert mask.body(TOPIC, b"name=Jane Doe") == {"not_json": "13 bytes, not shown"}


def test_only_the_gateways_own_headers_are_shown() -> None:
    headers = (
        ("gw-delivery-id", b"d1"),
        ("gw-verified", b"oc_signature"),
        ("vAuthorization", b"secret-signature"),
        ("webhook-signature", b"v1,abc"),
        ("authorization", b"Bearer x"),
        ("ce_id", b"e1"),
    )
    assert safe_headers(headers) == {
        "gw-delivery-id": "d1",
        "gw-verified": "oc_signature",
        "ce_id": "e1",
    }
