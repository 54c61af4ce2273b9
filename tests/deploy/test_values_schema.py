"""values.schema.json against the gateway's settings model, so the two cannot drift apart."""

from __future__ import annotations

import json
from typing import Any

import pytest

from gateway.settings import Settings

from .chart import CHART, Manifest, config_data, containers
from .settings_schema import (
    CHART_MANAGED,
    env_name,
    expected_config_schema,
    secret_env_names,
)

Rendered = dict[str, list[Manifest]]


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    value: dict[str, Any] = json.loads((CHART / "values.schema.json").read_text())
    return value


def test_config_schema_mirrors_the_settings_model(schema: dict[str, Any]) -> None:
    committed = schema["properties"]["config"]
    expected = expected_config_schema()
    missing = set(expected["properties"]) - set(committed["properties"])
    stale = set(committed["properties"]) - set(expected["properties"])
    assert committed == expected, (
        f"values.schema.json `config` is out of date (missing {sorted(missing)}, not settings "
        f"{sorted(stale)}); run `make generate`"
    )


def test_secret_settings_are_recognised() -> None:
    secrets = secret_env_names()
    assert {
        "GATEWAY_OC_SECRET_KEY",
        "GATEWAY_OC_SECRET_KEYS_PREVIOUS",
        "GATEWAY_WEBHOOK_SECRETS",
        "GATEWAY_PATH_TOKENS",
        "GATEWAY_OC_REFRESH_TOKEN",
        "GATEWAY_KAFKA_SASL_PASSWORD",
        "GATEWAY_OC_CLIENT_KEY",
    } <= secrets
    assert "GATEWAY_LOG_LEVEL" not in secrets


def test_extra_env_guard_lists_every_secret(schema: dict[str, Any]) -> None:
    guard = schema["properties"]["extraEnv"]["items"]["if"]["properties"]["name"]["enum"]
    assert set(guard) == secret_env_names()


def test_chart_managed_settings_exist_and_are_set_by_the_chart(rendered: Rendered) -> None:
    known = {env_name(field) for field in Settings.model_fields}
    assert known >= CHART_MANAGED
    set_by_chart: set[str] = set()
    for manifests in rendered.values():
        set_by_chart |= set(config_data(manifests))
        for _, container in containers(manifests):
            set_by_chart |= {item["name"] for item in container.get("env", [])}
    assert set_by_chart >= CHART_MANAGED


def test_mutual_tls_files_are_rendered(rendered: Rendered) -> None:
    manifests = rendered["kafka-mtls"]
    config = config_data(manifests)
    assert config["GATEWAY_KAFKA_SSL_CERTFILE"] == "/etc/gateway/kafka-tls/user.crt"
    assert config["GATEWAY_KAFKA_SSL_KEYFILE"] == "/etc/gateway/kafka-tls/user.key"
    assert "GATEWAY_KAFKA_SASL_USERNAME" not in config
    for _, container in containers(manifests):
        names = {item["name"] for item in container["env"]}
        assert "GATEWAY_KAFKA_SASL_PASSWORD" not in names, "no SASL without a SASL protocol"
