"""`helm lint --strict` of every scenario, and the values the chart must refuse.

Refusals come from two places: values.schema.json (unknown keys, wrong types, secrets in
plain values), which `helm lint` and `helm install` both enforce, and the chart's
`oc-event-gateway.validate` template (combinations that cannot work), which fails rendering.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
import yaml

from .chart import CHART, REPO, SCENARIOS, lint, template


@pytest.mark.parametrize("scenario", [None, *SCENARIOS])
def test_lint_strict_passes(helm: Path, scenario: str | None) -> None:
    result = lint(helm, scenario)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 chart(s) failed" in result.stdout
    assert "[WARNING]" not in result.stdout
    assert "[ERROR]" not in result.stdout


def test_every_scenario_is_covered() -> None:
    assert set(SCENARIOS) >= {"minimal", "embedded", "kafka-sasl-tls"}


@pytest.mark.parametrize(
    ("sets", "message"),
    [
        pytest.param(["replicaCont=2"], "'replicaCont' not allowed", id="top-level-typo"),
        pytest.param(
            ["kafka.bootstrapServer=k:9092"], "'bootstrapServer' not allowed", id="nested-typo"
        ),
        pytest.param(
            ["config.GATEWAY_LOG_LEVLE=debug"], "'GATEWAY_LOG_LEVLE' not allowed", id="config-typo"
        ),
        pytest.param(["config.GATEWAY_LOG_LEVEL=verbose"], "/config/GATEWAY_LOG_LEVEL", id="enum"),
        pytest.param(
            ["config.GATEWAY_WEBHOOK_SECRETS=whsec_x"],
            "'GATEWAY_WEBHOOK_SECRETS' not allowed",
            id="secret-in-config",
        ),
        pytest.param(
            ["config.GATEWAY_OC_CLIENT_KEY=k"], "'GATEWAY_OC_CLIENT_KEY' not allowed", id="oc-key"
        ),
        pytest.param(
            ["config.GATEWAY_HTTP_PORT=1"], "'GATEWAY_HTTP_PORT' not allowed", id="chart-owned"
        ),
        pytest.param(["kafka.sasl.password=p"], "'password' not allowed", id="sasl-password"),
        pytest.param(
            ["extraEnv[0].name=GATEWAY_PATH_TOKENS", "extraEnv[0].value=t"],
            "/extraEnv/0",
            id="secret-in-extra-env",
        ),
        pytest.param(
            ["securityContext.readOnlyRootFilesystem=false"],
            "/securityContext/readOnlyRootFilesystem",
            id="writable-root",
        ),
        pytest.param(
            ["podSecurityContext.runAsNonRoot=false"], "/podSecurityContext/runAsNonRoot", id="root"
        ),
        pytest.param(["persistence.kafkaMode=pvc"], "/persistence/kafkaMode", id="volume-kind"),
        pytest.param(["image.digest=latest"], "/image/digest", id="digest"),
        pytest.param(["ingest.workers=0"], "/ingest/workers", id="workers"),
        pytest.param(["oc.tokenStore.claim=x"], "'claim' not allowed", id="token-store-typo"),
        pytest.param(
            ["oc.refreshTokenSecret.name=Not_A_Name"],
            "/oc/refreshTokenSecret/name",
            id="token-secret-name",
        ),
    ],
)
def test_schema_rejects(helm: Path, sets: list[str], message: str) -> None:
    result = lint(helm, "minimal", *sets)
    assert result.returncode != 0
    assert message in result.stdout + result.stderr


def test_schema_accepts_secret_from_value_from_in_extra_env(helm: Path) -> None:
    sets = [
        "extraEnv[0].name=GATEWAY_PATH_TOKENS",
        "extraEnv[0].valueFrom.secretKeyRef.name=tokens",
        "extraEnv[0].valueFrom.secretKeyRef.key=path-tokens",
    ]
    result = lint(helm, "minimal", *sets)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("scenario", "sets", "message"),
    [
        ("minimal", ["autoscaling.enabled=true"], "autoscaling.enabled needs Kafka mode"),
        ("minimal", ["replicaCount=3"], "replicaCount > 1 needs Kafka mode"),
        ("minimal", ["processor.separate=true"], "processor.separate needs Kafka mode"),
        ("minimal", ["ingest.workers=2"], "ingest.workers > 1 needs Kafka mode"),
        ("kafka-sasl-tls", ["persistence.kafkaMode=claim"], "cannot scale"),
        (
            "kafka-sasl-tls",
            ["existingSecret=", "kafka.sasl.passwordSecret.name="],
            "GATEWAY_KAFKA_SASL_PASSWORD",
        ),
        ("kafka-sasl-tls", ["kafka.sasl.username="], "set kafka.sasl.username"),
        ("kafka-sasl-tls", ["kafka.tls.certKey=tls.crt"], "certKey and keyKey together"),
        ("kafka-sasl-tls", ["kafka.securityProtocol=PLAINTEXT"], "not SSL or SASL_SSL"),
        ("kafka-sasl-tls", ["metrics.prometheusRule.runbookBaseUrl="], "runbookBaseUrl"),
        (
            "kafka-sasl-tls",
            ["oc.tokenStore.existingClaim=rwx", "config.GATEWAY_OC_TOKEN_STORE=/data/t.json"],
            "remove it from config",
        ),
    ],
)
def test_impossible_combinations_fail_to_render(
    helm: Path, scenario: str, sets: list[str], message: str
) -> None:
    result = template(helm, scenario, *sets)
    assert result.returncode != 0
    assert message in result.stderr


def test_app_version_follows_the_package() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert chart["apiVersion"] == "v2"
    assert chart["appVersion"] == project["version"], "the image tag defaults to appVersion"
    assert re.fullmatch(r"\d+\.\d+\.\d+", chart["version"])
