"""Build the raw records one callback becomes (pure).

A callback's `data` may hold several entities (orders, returns, SKUs). Each becomes one
raw record keyed by its entity, so each entity's callbacks stay in order on one
partition; every record carries the whole body exactly as received plus
`gw-entity-index`, the position of its entity among the callback's entities. A body
whose entities cannot be found becomes one quarantine record, with the reason.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import TypeAdapter, ValidationError

from gateway.log.base import Headers, Record
from schemas.callbacks import INVENTORY_CALLBACK, OUTBOUND_CALLBACK, RETURN_CALLBACK
from schemas.keys import outbound_keys

Kind = Literal["outbound", "return", "inventory"]
KINDS: Mapping[str, Kind] = {"outbound": "outbound", "returns": "return", "inventory": "inventory"}

H_DELIVERY_ID = "gw-delivery-id"
H_RECEIVED_AT = "gw-received-at"
H_KIND = "gw-kind"
H_VERIFIED = "gw-verified"
H_ENTITY_INDEX = "gw-entity-index"
H_REASON = "gw-reason"
H_CONTENT_TYPE = "content-type"
H_SOURCE = "gw-source"  # absent for callbacks; "reconcile" for what polling OC found
SOURCE_RECONCILE = "reconcile"


class UnknownShape(ValueError):
    """A genuine body whose entities cannot be identified; goes to quarantine."""


_ADAPTERS: Mapping[Kind, TypeAdapter[Any]] = {
    "outbound": OUTBOUND_CALLBACK,
    "return": RETURN_CALLBACK,
    "inventory": INVENTORY_CALLBACK,
}


def entity_keys(kind: Kind, document: Any) -> list[str]:
    """The entities a decoded callback concerns, in order; UnknownShape if its shape is
    not one schemas/callbacks.py knows (the same parser the processor uses later).
    Outbound callbacks, OC's only kind, are read without building models when their shape
    is plain (schemas/keys.py)."""
    if kind == "outbound" and (keys := outbound_keys(document)) is not None:
        return keys
    try:
        callback = _ADAPTERS[kind].validate_python(document)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "body"
        raise UnknownShape(
            f"not a {kind} callback: {where}: {first['msg']} ({exc.error_count()} errors)"
        ) from exc
    return [key for key, _ in callback.entities()]


def delivery_id(headers: Mapping[str, str], body: bytes) -> str:
    """The sender's delivery id when it gives one, else a digest of the body, so a
    re-sent identical body is recognisably the same delivery."""
    sent = headers.get("webhook-id")
    if sent:
        return sent
    return "sha256:" + hashlib.sha256(body).hexdigest()


@dataclass(frozen=True, slots=True)
class Received:
    kind: Kind
    body: bytes
    delivery_id: str
    received_at: datetime
    verified: tuple[str, ...]
    content_type: str
    trace: Headers = ()  # traceparent of the callback's span, when tracing is on

    def headers(self, **extra: str) -> Headers:
        base: Headers = (
            (H_DELIVERY_ID, self.delivery_id.encode()),
            (H_RECEIVED_AT, self.received_at.astimezone(UTC).isoformat().encode()),
            (H_KIND, self.kind.encode()),
            (H_VERIFIED, ",".join(self.verified).encode()),
            (H_CONTENT_TYPE, (self.content_type or "application/json").encode()),
        )
        if extra:
            base += tuple((name, value.encode()) for name, value in extra.items())
        return base + self.trace


def raw_records(received: Received, keys: list[str], raw_topic: str) -> list[Record]:
    ts = int(received.received_at.timestamp() * 1000)
    shared = received.headers()  # the same for every entity; only the index differs
    return [
        Record(
            raw_topic,
            received.body,
            key.encode(),
            (*shared, (H_ENTITY_INDEX, str(index).encode())),
            timestamp_ms=ts,
        )
        for index, key in enumerate(keys)
    ]


def quarantine_record(received: Received, reason: str, topic: str) -> Record:
    return Record(
        topic,
        received.body,
        received.delivery_id.encode(),
        received.headers(**{H_REASON: reason}),
        timestamp_ms=int(received.received_at.timestamp() * 1000),
    )
