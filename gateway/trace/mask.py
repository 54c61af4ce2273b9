"""What a trace may show of a raw body and its headers (pure).

Raw bodies carry consignees' personal data exactly as OC sent it. A trace shows a body
as its kind's typed topic would carry it: each consignee field (`CONSIGNEE_FIELDS`,
matched in any key case, at any depth) passes through the topic's `GATEWAY_PII_POLICY`
mode (drop, mask, hash or publish: gateway/process/pii.py). A body that is not JSON is
never shown, only its size. Of the headers only the gateway's own bookkeeping is shown;
anything that could verify or authorise a delivery (signatures, tokens) is left out.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Final

from gateway.log.base import Headers
from gateway.process.pii import PII_FIELDS, PiiPolicy, keyed_hash, mask
from schemas.oc_entities import CONSIGNEE_FIELDS
from schemas.tolerant import match_key

DROPPED: Final = "[dropped]"
"""What a trace shows in place of a field the topic's policy drops."""

# OC's consignee keys, in the order of the event's consignee fields (schemas/events.py).
_FIELD_OF: Final[Mapping[str, str]] = {
    match_key(oc): ours for oc, ours in zip(CONSIGNEE_FIELDS, PII_FIELDS, strict=True)
}

SAFE_HEADERS: Final = frozenset(
    {
        "gw-delivery-id",
        "gw-received-at",
        "gw-kind",
        "gw-verified",
        "gw-entity-index",
        "gw-source",
        "gw-reason",
        "gw-attempts",
        "gw-failed-at",
        "gw-dead-letter",
        "gw-original-topic",
        "gw-original-partition",
        "gw-original-offset",
        "content-type",
        "traceparent",
        "ce_id",
        "ce_type",
        "ce_source",
        "ce_subject",
        "ce_time",
        "ce_specversion",
        "ce_dataschema",
        "ce_reconciled",
    }
)
"""Headers a trace shows: the gateway's own and CloudEvents attributes. Any other header
(vAuthorization, webhook-signature, a future one) is never shown."""


def safe_headers(headers: Headers) -> dict[str, str]:
    return {
        name: value.decode("utf-8", "replace") for name, value in headers if name in SAFE_HEADERS
    }


class BodyMask:
    """Shows a body as the typed topic `topic` would carry its personal data."""

    def __init__(self, policy: PiiPolicy, hmac_key: str) -> None:
        self._policy = policy
        self._key = hmac_key.encode()

    def body(self, topic: str, raw: bytes) -> Any:
        """The decoded body with its consignee fields masked; a short note when it is
        not JSON (its bytes are never shown)."""
        try:
            document = json.loads(raw)
        except ValueError:
            return {"not_json": f"{len(raw)} bytes, not shown"}
        return self._walk(topic, document)

    def _walk(self, topic: str, value: Any) -> Any:
        if isinstance(value, dict):
            return {key: self._field(topic, key, item) for key, item in value.items()}
        if isinstance(value, list):
            return [self._walk(topic, item) for item in value]
        return value

    def _field(self, topic: str, key: str, value: Any) -> Any:
        field = _FIELD_OF.get(match_key(key))
        if field is None:
            return self._walk(topic, value)
        if value is None or value == "":
            return value
        mode = self._policy.mode(topic, field)
        text = value if isinstance(value, str) else json.dumps(value)
        if mode == "publish":
            return value
        if mode == "mask":
            return mask(field, text)
        if mode == "hash":
            return keyed_hash(self._key, text)
        return DROPPED
