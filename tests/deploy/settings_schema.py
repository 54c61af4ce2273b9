"""The part of the chart's values.schema.json that mirrors the gateway's settings model.

`config` in the chart's values takes non-secret `GATEWAY_*` settings. Its schema is derived
from `gateway.settings.Settings` here, and a test compares it with the committed
values.schema.json, so a setting added to the model without a chart update fails the suite.
Print the expected block with `.venv/bin/python -m tests.deploy.settings_schema`.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from gateway.settings import Settings

ENV_PREFIX = "GATEWAY_"

# Settings the chart sets itself from structured values; `config` must not override them.
CHART_MANAGED = frozenset(
    f"{ENV_PREFIX}{name}"
    for name in (
        "HTTP_HOST",
        "HTTP_PORT",
        "METRICS_PORT",
        "DATA_DIR",
        "INSTANCE_ID",
        "SHUTDOWN_GRACE_S",
        "KAFKA_BOOTSTRAP_SERVERS",
        "KAFKA_SECURITY_PROTOCOL",
        "KAFKA_SASL_MECHANISM",
        "KAFKA_SASL_USERNAME",
        "KAFKA_SSL_CAFILE",
        "KAFKA_SSL_CERTFILE",
        "KAFKA_SSL_KEYFILE",
        "KAFKA_CREATE_TOPICS",
        "KAFKA_PARTITIONS",
        "KAFKA_REPLICATION_FACTOR",
        "PROCESSOR_ENABLED",
        "INGEST_WORKERS",
        "INGEST_OWN_PROCESS",
        "INGEST_ENABLED",
        "CONSOLE_TOKEN_FILE",
    )
)

# Secret by the team's rule although the model types them as plain strings (or has not
# got them yet); every SecretStr field is secret as well (see `secret_env_names`).
EXTRA_SECRETS = frozenset({f"{ENV_PREFIX}OC_CLIENT_KEY", f"{ENV_PREFIX}PII_HMAC_KEY"})

_KEPT_KEYWORDS = ("type", "enum", "minimum", "exclusiveMinimum")


def env_name(field: str) -> str:
    return f"{ENV_PREFIX}{field.upper()}"


def _is_secret(prop: dict[str, Any]) -> bool:
    items = prop.get("items", {})
    return prop.get("format") == "password" or (
        isinstance(items, dict) and items.get("format") == "password"
    )


def secret_env_names() -> frozenset[str]:
    """Environment variables that carry secrets: SecretStr fields plus EXTRA_SECRETS."""
    props: dict[str, dict[str, Any]] = Settings.model_json_schema()["properties"]
    return frozenset(env_name(f) for f, p in props.items() if _is_secret(p)) | EXTRA_SECRETS


def _value_schema(prop: dict[str, Any]) -> dict[str, Any]:
    if "anyOf" in prop:  # Optional[X]: the chart sets a value or leaves the variable out
        (prop,) = [option for option in prop["anyOf"] if option.get("type") != "null"]
    if prop.get("type") == "array":
        # Comma-separated in the environment; YAML lists are joined by the template.
        return {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]}
    return {key: prop[key] for key in _KEPT_KEYWORDS if key in prop}


def expected_config_schema() -> dict[str, Any]:
    """The JSON Schema of `config`: every non-secret setting the chart does not own."""
    props: dict[str, dict[str, Any]] = Settings.model_json_schema()["properties"]
    secrets = secret_env_names()
    allowed = {
        env_name(field): _value_schema(prop)
        for field, prop in props.items()
        if env_name(field) not in secrets | CHART_MANAGED
    }
    return {
        "type": "object",
        "description": "Non-secret GATEWAY_* settings (see the README's configuration "
        "reference). Secrets and settings the chart owns are not accepted.",
        "additionalProperties": False,
        "properties": dict(sorted(allowed.items())),
    }


def write_chart_schema(path: Path) -> None:
    """Rewrite the `config` block of the chart's values.schema.json from the model."""
    schema = json.loads(path.read_text())
    schema["properties"]["config"] = expected_config_schema()
    path.write_text(json.dumps(schema, indent=2) + "\n")


if __name__ == "__main__":
    if "--write" in sys.argv:
        from .chart import CHART

        write_chart_schema(CHART / "values.schema.json")
    else:
        print(json.dumps(expected_config_schema(), indent=2))  # noqa: T201 - a developer aid
