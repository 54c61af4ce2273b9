"""The AsyncAPI 3.0 description of the gateway's Kafka topics, built from the event models.

Pure: `build_asyncapi()` returns the document as plain data; `schemas.generate` writes it
to schemas/asyncapi.yaml next to the JSON Schema files its payloads reference. Topic names
are the gateway's defaults (each is configurable, see the `topic_*` settings).
"""

from __future__ import annotations

from typing import Any, Final

from schemas.events import EVENT_MODELS, EventModel

ASYNCAPI_VERSION: Final = "3.0.0"
KAFKA_BINDING_VERSION: Final = "0.5.0"
JSONSCHEMA_DIR: Final = "jsonschema"

RAW_HEADERS: Final[dict[str, str]] = {
    "gw-delivery-id": "Id of the callback delivery (the sender's webhook-id, else a digest "
    "of the body); the same for every record one delivery became.",
    "gw-received-at": "When the gateway received the callback (ISO-8601, UTC).",
    "gw-kind": "Which callback route it came in on.",
    "gw-verified": "Comma-separated verification methods that passed (e.g. "
    "oc_signature,path_token).",
    "gw-entity-index": "Position in the callback's `data` of the entity this record is keyed by.",
    "content-type": "Content type OC sent (application/json).",
    "gw-source": "Absent on callbacks; `reconcile` on OC's state of an entity that "
    "reconciliation read from OC's query APIs and wrote in the callback shape.",
    "traceparent": "W3C trace context of the request that received the callback (with tracing on).",
}
REASON_HEADERS: Final[dict[str, str]] = {
    "gw-reason": "Why the record is here (no secrets, no stack traces).",
    "gw-attempts": "How many times processing was attempted (decimal).",
    "gw-original-topic": "Topic the failed record was read from.",
    "gw-original-partition": "Partition the failed record was read from (decimal).",
    "gw-original-offset": "Offset of the failed record (decimal).",
    "gw-failed-at": "When the record was dead-lettered (ISO-8601, UTC).",
}
CLOUDEVENTS_HEADERS: Final[dict[str, dict[str, Any]]] = {
    "ce_specversion": {"type": "string", "const": "1.0", "description": "CloudEvents version."},
    "ce_id": {
        "type": "string",
        "description": "Event id, deterministic from the raw record and the event type; "
        "equals the payload's eventId. Deduplicate on it.",
    },
    "ce_type": {"type": "string", "description": "Event type; equals the payload's type."},
    "ce_source": {"type": "string", "format": "uri-reference", "description": "Producer."},
    "ce_time": {
        "type": "string",
        "format": "date-time",
        "description": "When the change happened (RFC 3339).",
    },
    "ce_subject": {"type": "string", "description": "Entity id; equals the record key."},
    "ce_dataschema": {
        "type": "string",
        "format": "uri-reference",
        "description": "The payload's JSON Schema id, `urn:oc-gateway:jsonschema:<type>`: "
        "the `$id` of schemas/jsonschema/<type>.json.",
    },
    "content-type": {"type": "string", "const": "application/json"},
    "ce_reconciled": {
        "type": "string",
        "const": "true",
        "description": "Extension attribute: present when reconciliation, not a callback, "
        "found the change (the payload's `reconciled` is true as well).",
    },
    "traceparent": {"type": "string", "description": "W3C trace context (with tracing on)."},
}
_CE_REQUIRED: Final = ["ce_specversion", "ce_id", "ce_type", "ce_source", "content-type"]

_TOPICS: Final[list[dict[str, Any]]] = [
    {
        "id": "outboundOrders",
        "address": "oc.outbound.orders.v1",
        "title": "Outbound-order events",
        "key": "OC order number (orderNumber).",
        "compacted": False,
    },
    {
        "id": "returns",
        "address": "oc.returns.v1",
        "title": "Return (RMA) events",
        "key": "Return (RMA) number.",
        "compacted": False,
    },
    {
        "id": "inventoryLevels",
        "address": "oc.inventory.levels.v1",
        "title": "Inventory levels, latest per SKU and place",
        "key": "`mfSkuId:location`, location being a service region or a warehouse code.",
        "compacted": True,
    },
]
_TOPIC_OF_TYPE_PREFIX: Final = {
    "oc.outbound.": "outboundOrders",
    "oc.return.": "returns",
    "oc.inventory.": "inventoryLevels",
}


def event_type(model: type[EventModel]) -> str:
    """The `type` value (and ce_type) of an event model."""
    value = model.model_fields["type"].default
    if not isinstance(value, str):
        raise TypeError(f"{model.__name__} has no string default for `type`")
    return value


def schema_file(model: type[EventModel]) -> str:
    """Path of the model's JSON Schema, relative to the schemas/ directory."""
    return f"{JSONSCHEMA_DIR}/{event_type(model)}.json"


def _message_id(model: type[EventModel]) -> str:
    name = model.__name__
    return name[0].lower() + name[1:]


def _channel_of(model: type[EventModel]) -> str:
    kind = event_type(model)
    for prefix, channel in _TOPIC_OF_TYPE_PREFIX.items():
        if kind.startswith(prefix):
            return channel
    raise ValueError(f"no topic for event type {kind}")


def _headers_object(described: dict[str, str], required: list[str]) -> dict[str, Any]:
    properties = {name: {"type": "string", "description": text} for name, text in described.items()}
    return {"type": "object", "required": required, "properties": properties}


def _kafka_topic_binding(address: str, compacted: bool) -> dict[str, Any]:
    return {
        "kafka": {
            "topic": address,
            "topicConfiguration": {"cleanup.policy": ["compact" if compacted else "delete"]},
            "bindingVersion": KAFKA_BINDING_VERSION,
        }
    }


def _key_binding(description: str) -> dict[str, Any]:
    return {
        "kafka": {
            "key": {"type": "string", "description": description},
            "bindingVersion": KAFKA_BINDING_VERSION,
        }
    }


def _event_message(model: type[EventModel], key: str) -> dict[str, Any]:
    kind = event_type(model)
    properties = dict(CLOUDEVENTS_HEADERS)
    properties["ce_type"] = {**CLOUDEVENTS_HEADERS["ce_type"], "const": kind}
    headers = {"type": "object", "required": _CE_REQUIRED, "properties": properties}
    return {
        "name": kind,
        "title": model.__name__,
        "summary": (model.__doc__ or kind).strip().splitlines()[0],
        "contentType": "application/json",
        "headers": headers,
        "payload": {"$ref": f"./{schema_file(model)}"},
        "bindings": _key_binding(key),
    }


_RAW_BODY: Final = {
    "type": "object",
    "description": "OC's callback body, byte for byte as received (a JSON object). "
    "Its INFERRED shapes are the models in schemas/callbacks.py.",
}
_ANY_BODY: Final = {
    "description": "The body as received, byte for byte; may be anything OC sent, "
    "including JSON that does not fit the callback models.",
}


def _raw_channels() -> tuple[dict[str, Any], dict[str, Any]]:
    key = "Entity id: orderNumber, return number, or `mfSkuId:location`."
    raw_headers = _headers_object(RAW_HEADERS, ["gw-delivery-id", "gw-received-at", "gw-kind"])
    raw_headers["properties"]["gw-kind"]["enum"] = ["outbound", "return", "inventory"]
    quarantine_headers = _headers_object(
        {**RAW_HEADERS, "gw-reason": REASON_HEADERS["gw-reason"]},
        ["gw-reason", "gw-delivery-id", "gw-received-at"],
    )
    dlq_required = ["gw-reason", "gw-attempts", "gw-original-topic", "gw-original-partition"]
    dlq_headers = _headers_object(
        {**RAW_HEADERS, **REASON_HEADERS}, [*dlq_required, "gw-original-offset"]
    )
    messages = {
        "rawCallback": {
            "name": "rawCallback",
            "title": "Raw OC callback",
            "summary": "One accepted callback, as received, once per entity it concerns.",
            "contentType": "application/json",
            "headers": raw_headers,
            "payload": _RAW_BODY,
            "bindings": _key_binding(key),
        },
        "quarantinedCallback": {
            "name": "quarantinedCallback",
            "title": "Quarantined OC callback",
            "summary": "A genuine callback whose shape could not be understood.",
            "contentType": "application/json",
            "headers": quarantine_headers,
            "payload": _ANY_BODY,
            "bindings": _key_binding(key + " Empty when no entity could be found."),
        },
        "deadLetter": {
            "name": "deadLetter",
            "title": "Dead letter",
            "summary": "A raw record that failed processing after its retries: its key, "
            "value and headers unchanged, plus the reason headers.",
            "contentType": "application/json",
            "headers": dlq_headers,
            "payload": _ANY_BODY,
            "bindings": _key_binding("The failed record's key."),
        },
    }
    channels = {
        "rawCallbacks": ("oc.callbacks.raw.v1", "Raw callbacks (the durable inbox)", "rawCallback"),
        "quarantine": (
            "oc.callbacks.quarantine.v1",
            "Quarantined callbacks",
            "quarantinedCallback",
        ),
        "deadLetters": ("oc.gateway.dlq.v1", "Records that failed processing", "deadLetter"),
    }
    built = {
        channel_id: {
            "address": address,
            "title": title,
            "messages": {message: {"$ref": f"#/components/messages/{message}"}},
            "bindings": _kafka_topic_binding(address, compacted=False),
        }
        for channel_id, (address, title, message) in channels.items()
    }
    return built, messages


def _operation(action: str, channel: str, messages: list[str], summary: str) -> dict[str, Any]:
    return {
        "action": action,
        "summary": summary,
        "channel": {"$ref": f"#/channels/{channel}"},
        "messages": [{"$ref": f"#/channels/{channel}/messages/{m}"} for m in messages],
    }


def build_asyncapi(models: tuple[type[EventModel], ...] = EVENT_MODELS) -> dict[str, Any]:
    """The AsyncAPI 3.0 document for `models` and the raw/quarantine/DLQ topics."""
    channels, messages = _raw_channels()
    topic_messages: dict[str, list[str]] = {}
    for topic in _TOPICS:
        channels[topic["id"]] = {
            "address": topic["address"],
            "title": topic["title"],
            "messages": {},
            "bindings": _kafka_topic_binding(topic["address"], topic["compacted"]),
        }
    keys = {topic["id"]: topic["key"] for topic in _TOPICS}
    for model in models:
        channel, message = _channel_of(model), _message_id(model)
        messages[message] = _event_message(model, keys[channel])
        channels[channel]["messages"][message] = {"$ref": f"#/components/messages/{message}"}
        topic_messages.setdefault(channel, []).append(message)
    operations = {
        "receiveRawCallbacks": _operation(
            "receive", "rawCallbacks", ["rawCallback"], "The processor consumes raw callbacks."
        ),
        "sendRawCallbacks": _operation(
            "send", "rawCallbacks", ["rawCallback"], "Ingest appends every accepted callback."
        ),
        "sendQuarantine": _operation(
            "send", "quarantine", ["quarantinedCallback"], "Unparseable genuine callbacks."
        ),
        "sendDeadLetters": _operation(
            "send", "deadLetters", ["deadLetter"], "Records that failed processing."
        ),
    }
    for channel, names in topic_messages.items():
        operations[f"send{channel[0].upper()}{channel[1:]}"] = _operation(
            "send", channel, names, f"The processor publishes to {channels[channel]['address']}."
        )
    return {
        "asyncapi": ASYNCAPI_VERSION,
        "info": {
            "title": "OC event gateway topics",
            "version": "1.0.0",
            "description": "Kafka topics of the OC event gateway. Typed events use CloudEvents "
            "1.0 in binary mode (attributes in ce_* headers, the JSON payload as the value). "
            "Topic names are the defaults; each is configurable.",
        },
        "defaultContentType": "application/json",
        "servers": {
            "kafka": {
                "host": "localhost:9092",
                "protocol": "kafka",
                "description": "Any Kafka cluster the gateway is configured with.",
            }
        },
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages},
    }
