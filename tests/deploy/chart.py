"""Running helm on the chart and reading what it renders; shared by the deployment tests."""

from __future__ import annotations

import subprocess
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "helm" / "oc-event-gateway"
CI_DIR = CHART / "ci"
# Scenario name -> values file, one per ci/<name>-values.yaml (chart-testing's layout).
SCENARIOS: dict[str, Path] = {
    path.name.removesuffix("-values.yaml"): path for path in sorted(CI_DIR.glob("*-values.yaml"))
}
EMBEDDED_SCENARIOS = ("embedded", "minimal")
KAFKA_SCENARIO = "kafka-sasl-tls"
# What the tests render: every scenario as it is, plus variants of the Kafka scenario
# (case name -> scenario, --set items).
CASES: dict[str, tuple[str, tuple[str, ...]]] = {
    **{name: (name, ()) for name in SCENARIOS},
    "kafka-processor-split": (KAFKA_SCENARIO, ("processor.separate=true",)),
    "kafka-ingest-workers": (KAFKA_SCENARIO, ("processor.separate=true", "ingest.workers=4")),
    "kafka-own-process": (KAFKA_SCENARIO, ("ingest.ownProcess=true",)),
    "kafka-spool-claim": (
        KAFKA_SCENARIO,
        ("persistence.kafkaMode=claim", "autoscaling.enabled=false", "replicaCount=1"),
    ),
    "kafka-mtls": (
        KAFKA_SCENARIO,
        ("kafka.securityProtocol=SSL", "kafka.tls.certKey=user.crt", "kafka.tls.keyKey=user.key"),
    ),
    # OC's refresh token from `gateway oc login --print-secret`, one token store for all pods.
    "kafka-shared-token-store": (
        KAFKA_SCENARIO,
        (
            "processor.separate=true",
            "oc.refreshTokenSecret.name=ocgw-oc-oauth",
            "oc.tokenStore.existingClaim=oc-token-rwx",
        ),
    ),
}
# The oldest Kubernetes the chart supports (Chart.yaml kubeVersion) and the newest that
# kubernetes-validate ships schemas for; every manifest is validated against both.
KUBE_VERSIONS = ("1.27.0", "1.37.0")
RELEASE = "ocgw"
NAMESPACE = "integrations"
FULLNAME = f"{RELEASE}-oc-event-gateway"

Manifest = dict[str, Any]

# The metric names the gateway documents (issue 6); alerts and the dashboard may use only
# these, and the dashboard shows every one of them.
COUNTERS = frozenset(
    {
        "gateway_callbacks_received_total",
        "gateway_callbacks_rejected_total",
        "gateway_callbacks_accepted_total",
        "gateway_callbacks_quarantined_total",
        "gateway_events_published_total",
        "gateway_duplicates_total",
        "gateway_dlq_records_total",
        "gateway_oc_requests_total",
        "gateway_oc_cache_hits_total",
        "gateway_oc_token_refreshes_total",
        "gateway_reconcile_changes_found_total",
        "gateway_verification_failures_total",
        "gateway_log_write_errors_total",
        "gateway_log_retention_removed_records_total",
        "gateway_log_retention_reclaimed_bytes_total",
        "gateway_processor_hanging_transactions_total",
    }
)
GAUGES = frozenset(
    {
        "gateway_spool_depth_records",
        "gateway_spool_oldest_age_seconds",
        "gateway_processor_lag_records",
        "gateway_processor_partitions",
        "gateway_processor_producers",
        "gateway_oc_breaker_state",
        "gateway_ready",
        "gateway_insecure_mode",
        "gateway_reconcile_last_success_timestamp_seconds",
        "gateway_callbacks_in_flight",
        "gateway_admission_limit",
        "gateway_event_loop_lag_seconds",
        "gateway_log_writable",
        "gateway_log_size_bytes",
    }
)
HISTOGRAMS = frozenset(
    {
        "gateway_ack_duration_seconds",
        "gateway_log_append_duration_seconds",
        "gateway_oc_request_duration_seconds",
        "gateway_oc_batch_size",
        "gateway_event_lag_seconds",
        "gateway_processor_stage_duration_seconds",
    }
)
METRIC_NAMES = COUNTERS | GAUGES | HISTOGRAMS
# Every series name a query may use: histograms are queried through their parts.
SERIES_NAMES = (
    COUNTERS
    | GAUGES
    | {f"{name}{suffix}" for name in HISTOGRAMS for suffix in ("_bucket", "_sum", "_count")}
)


class HelmFailed(AssertionError):
    """helm exited non-zero; the message carries its output."""


def run_helm(helm: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(helm), *args], capture_output=True, text=True, check=False, timeout=120
    )


def _value_args(scenario: str | None, sets: Iterable[str]) -> list[str]:
    args = ["-f", str(SCENARIOS[scenario])] if scenario else []
    for item in sets:
        args += ["--set", item]
    return args


def template(
    helm: Path, scenario: str | None, *sets: str, kube_version: str = KUBE_VERSIONS[-1]
) -> subprocess.CompletedProcess[str]:
    """`helm template` of the chart with a scenario's values and extra --set items."""
    return run_helm(
        helm,
        "template",
        RELEASE,
        str(CHART),
        "--namespace",
        NAMESPACE,
        "--kube-version",
        kube_version,
        *_value_args(scenario, sets),
    )


def lint(helm: Path, scenario: str | None, *sets: str) -> subprocess.CompletedProcess[str]:
    """`helm lint --strict` of the chart with a scenario's values and extra --set items."""
    return run_helm(
        helm,
        "lint",
        "--strict",
        str(CHART),
        "--kube-version",
        KUBE_VERSIONS[0],
        *_value_args(scenario, sets),
    )


def render(helm: Path, scenario: str | None, *sets: str) -> list[Manifest]:
    """The manifests `helm template` renders, as parsed YAML documents."""
    result = template(helm, scenario, *sets)
    if result.returncode != 0:
        raise HelmFailed(f"helm template failed:\n{result.stderr}")
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def of_kind(manifests: Iterable[Manifest], kind: str) -> list[Manifest]:
    return [m for m in manifests if m["kind"] == kind]


def named(manifests: Iterable[Manifest], kind: str, name: str) -> Manifest:
    (found,) = [m for m in of_kind(manifests, kind) if m["metadata"]["name"] == name]
    return found


def containers(manifests: Iterable[Manifest]) -> Iterator[tuple[Manifest, dict[str, Any]]]:
    """(workload, container) for every container of every Deployment."""
    for deployment in of_kind(manifests, "Deployment"):
        for container in deployment["spec"]["template"]["spec"]["containers"]:
            yield deployment, container


def config_data(manifests: Iterable[Manifest]) -> dict[str, str]:
    data: dict[str, str] = named(manifests, "ConfigMap", FULLNAME)["data"]
    return data
