"""What `helm template` renders: valid Kubernetes objects that mean what the chart promises.

Built-in kinds are validated with kubernetes-validate in strict mode (unknown fields are
errors) against the oldest and the newest Kubernetes the chart claims. ServiceMonitor and
PrometheusRule are custom resources that kubernetes-validate has no schemas for; they are
validated against the JSON Schemas in crd-schemas/, strict subsets of the
prometheus-operator CRDs written for this chart.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]  # ships no type information
import kubernetes_validate
import pytest

from gateway.settings import Settings

from .chart import (
    CASES,
    CHART,
    EMBEDDED_SCENARIOS,
    FULLNAME,
    KAFKA_SCENARIO,
    KUBE_VERSIONS,
    Manifest,
    config_data,
    containers,
    named,
    of_kind,
    render,
    template,
)
from .settings_schema import env_name, secret_env_names

CRD_SCHEMAS = Path(__file__).resolve().parent / "crd-schemas"
CUSTOM_KINDS = {"ServiceMonitor": "servicemonitor.json", "PrometheusRule": "prometheusrule.json"}
KAFKA_CASES = [name for name in CASES if name.startswith("kafka")]

Rendered = dict[str, list[Manifest]]


@cache
def _crd_validator(kind: str) -> Any:
    schema = json.loads((CRD_SCHEMAS / CUSTOM_KINDS[kind]).read_text())
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


def _pod_spec(deployment: Manifest) -> dict[str, Any]:
    spec: dict[str, Any] = deployment["spec"]["template"]["spec"]
    return spec


def _gateway(manifests: Iterable[Manifest]) -> Manifest:
    return named(manifests, "Deployment", FULLNAME)


def _volume(deployment: Manifest, name: str) -> dict[str, Any]:
    (volume,) = [v for v in _pod_spec(deployment)["volumes"] if v["name"] == name]
    return dict(volume)


def _env(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {item["name"]: item for item in container.get("env", [])}


# --- schema validity -----------------------------------------------------------------------


@pytest.mark.parametrize("kube_version", KUBE_VERSIONS)
@pytest.mark.parametrize("case", CASES)
def test_manifests_match_kubernetes_schemas(
    rendered: Rendered, case: str, kube_version: str
) -> None:
    manifests = rendered[case]
    assert manifests
    for manifest in manifests:
        where = f"{manifest['kind']}/{manifest['metadata']['name']}"
        if manifest["kind"] in CUSTOM_KINDS:
            errors = [e.message for e in _crd_validator(manifest["kind"]).iter_errors(manifest)]
            assert not errors, f"{where}: {errors}"
            continue
        try:
            kubernetes_validate.validate(manifest, kube_version, strict=True)
        except kubernetes_validate.ValidationError as error:
            path = ".".join(str(p) for p in error.path)
            pytest.fail(f"{where} against Kubernetes {kube_version}: {path}: {error.message}")


def test_crd_schemas_reject_what_the_operator_would() -> None:
    rule: Manifest = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {"name": "x"},
        "spec": {"groups": [{"name": "g", "rules": [{"alert": "A", "expr": "up", "for": "5 m"}]}]},
    }
    assert list(_crd_validator("PrometheusRule").iter_errors(rule))
    monitor: Manifest = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "ServiceMonitor",
        "metadata": {"name": "x"},
        "spec": {"selector": {}, "endpoints": [{"port": "metrics", "intervall": "30s"}]},
    }
    assert list(_crd_validator("ServiceMonitor").iter_errors(monitor))


# --- the two modes -------------------------------------------------------------------------


@pytest.mark.parametrize("case", EMBEDDED_SCENARIOS)
def test_embedded_is_one_replica_on_a_claim(rendered: Rendered, case: str) -> None:
    manifests = rendered[case]
    gateway = _gateway(manifests)
    assert gateway["metadata"]["annotations"]["oc-event-gateway/mode"] == "embedded"
    assert gateway["spec"]["replicas"] == 1
    assert gateway["spec"]["strategy"] == {"type": "Recreate"}
    (claim,) = of_kind(manifests, "PersistentVolumeClaim")
    assert _volume(gateway, "data") == {
        "name": "data",
        "persistentVolumeClaim": {"claimName": claim["metadata"]["name"]},
    }
    assert claim["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    assert not of_kind(manifests, "HorizontalPodAutoscaler")
    assert not of_kind(manifests, "PodDisruptionBudget")
    assert len(of_kind(manifests, "Deployment")) == 1
    assert not any(key.startswith("GATEWAY_KAFKA_") for key in config_data(manifests))


def test_embedded_existing_claim_is_used_not_created(helm: Path) -> None:
    manifests = render(helm, "minimal", "persistence.existingClaim=gateway-data")
    assert not of_kind(manifests, "PersistentVolumeClaim")
    claim = _volume(_gateway(manifests), "data")["persistentVolumeClaim"]
    assert claim == {"claimName": "gateway-data"}


def test_kafka_mode_scales_with_an_hpa(rendered: Rendered) -> None:
    manifests = rendered[KAFKA_SCENARIO]
    gateway = _gateway(manifests)
    assert gateway["metadata"]["annotations"]["oc-event-gateway/mode"] == "kafka"
    assert "replicas" not in gateway["spec"], "the HPA owns the replica count"
    assert gateway["spec"]["strategy"]["type"] == "RollingUpdate"
    (hpa,) = of_kind(manifests, "HorizontalPodAutoscaler")
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": FULLNAME,
    }
    assert hpa["spec"]["minReplicas"] >= 2
    assert "emptyDir" in _volume(gateway, "data")
    assert not of_kind(manifests, "PersistentVolumeClaim")
    (pdb,) = of_kind(manifests, "PodDisruptionBudget")
    assert pdb["spec"]["selector"] == gateway["spec"]["selector"]


def test_kafka_without_hpa_renders_replica_count(helm: Path) -> None:
    manifests = render(helm, KAFKA_SCENARIO, "autoscaling.enabled=false", "replicaCount=3")
    assert _gateway(manifests)["spec"]["replicas"] == 3
    assert not of_kind(manifests, "HorizontalPodAutoscaler")


def test_kafka_spool_on_a_claim_is_one_replica(rendered: Rendered) -> None:
    manifests = rendered["kafka-spool-claim"]
    gateway = _gateway(manifests)
    assert gateway["spec"]["replicas"] == 1
    assert gateway["spec"]["strategy"] == {"type": "Recreate"}
    assert "persistentVolumeClaim" in _volume(gateway, "data")
    assert len(of_kind(manifests, "PersistentVolumeClaim")) == 1


def test_kafka_sasl_ssl_settings_and_ca_from_a_secret(rendered: Rendered) -> None:
    manifests = rendered[KAFKA_SCENARIO]
    config = config_data(manifests)
    assert config["GATEWAY_KAFKA_BOOTSTRAP_SERVERS"] == "kafka-bootstrap.kafka.svc:9093"
    assert config["GATEWAY_KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL"
    assert config["GATEWAY_KAFKA_SASL_MECHANISM"] == "SCRAM-SHA-512"
    assert config["GATEWAY_KAFKA_SASL_USERNAME"] == "oc-gateway"
    gateway = _gateway(manifests)
    tls = _volume(gateway, "kafka-tls")["secret"]
    assert tls["secretName"] == "kafka-cluster-ca-cert"
    (container,) = _pod_spec(gateway)["containers"]
    (mount,) = [m for m in container["volumeMounts"] if m["name"] == "kafka-tls"]
    assert mount["readOnly"] is True
    mounted = {f"{mount['mountPath']}/{item['path']}" for item in tls["items"]}
    assert config["GATEWAY_KAFKA_SSL_CAFILE"] in mounted
    password = _env(container)["GATEWAY_KAFKA_SASL_PASSWORD"]
    assert password["valueFrom"] == {"secretKeyRef": {"name": "oc-gateway", "key": "password"}}


def test_ingest_workers_run_in_the_gateway_pods_only(rendered: Rendered) -> None:
    manifests = rendered["kafka-ingest-workers"]
    (gateway_container,) = _pod_spec(_gateway(manifests))["containers"]
    processor = named(manifests, "Deployment", f"{FULLNAME}-processor")
    (processor_container,) = _pod_spec(processor)["containers"]
    assert _env(gateway_container)["GATEWAY_INGEST_WORKERS"]["value"] == "4"
    assert "GATEWAY_INGEST_WORKERS" not in _env(processor_container)
    default = _gateway(rendered["kafka-processor-split"])
    assert "GATEWAY_INGEST_WORKERS" not in _env(_pod_spec(default)["containers"][0])


def test_ingest_runs_in_its_own_process_only_when_asked(rendered: Rendered) -> None:
    (own,) = _pod_spec(_gateway(rendered["kafka-own-process"]))["containers"]
    assert _env(own)["GATEWAY_INGEST_OWN_PROCESS"]["value"] == "true"
    (default,) = _pod_spec(_gateway(rendered["kafka-processor-split"]))["containers"]
    assert "GATEWAY_INGEST_OWN_PROCESS" not in _env(default)  # the setting's default: false


def test_processor_split_runs_two_deployments(rendered: Rendered) -> None:
    manifests = rendered["kafka-processor-split"]
    gateway = _gateway(manifests)
    processor = named(manifests, "Deployment", f"{FULLNAME}-processor")
    (gateway_container,) = _pod_spec(gateway)["containers"]
    (processor_container,) = _pod_spec(processor)["containers"]
    assert _env(gateway_container)["GATEWAY_PROCESSOR_ENABLED"]["value"] == "false"
    assert _env(processor_container)["GATEWAY_INGEST_ENABLED"]["value"] == "false"
    assert "GATEWAY_INGEST_ENABLED" not in _env(gateway_container)
    assert [p["name"] for p in processor_container["ports"]] == ["metrics"]
    # The webhook Service must not send callbacks to processor pods.
    service = named(manifests, "Service", FULLNAME)
    processor_labels = processor["spec"]["template"]["metadata"]["labels"]
    assert not service["spec"]["selector"].items() <= processor_labels.items()
    # Prometheus finds both through the one ServiceMonitor.
    (monitor,) = of_kind(manifests, "ServiceMonitor")
    wanted = monitor["spec"]["selector"]["matchLabels"].items()
    scraped = [s["metadata"]["name"] for s in of_kind(manifests, "Service")]
    assert scraped == [FULLNAME, f"{FULLNAME}-processor"]
    for svc in of_kind(manifests, "Service"):
        assert wanted <= svc["metadata"]["labels"].items()
    # Node drains take at most one pod of each Deployment at a time.
    budgets = {b["metadata"]["name"]: b["spec"] for b in of_kind(manifests, "PodDisruptionBudget")}
    assert budgets == {
        FULLNAME: {"maxUnavailable": 1, "selector": gateway["spec"]["selector"]},
        f"{FULLNAME}-processor": {"maxUnavailable": 1, "selector": processor["spec"]["selector"]},
    }


# --- every case ----------------------------------------------------------------------------


def test_every_pod_reads_ocs_refresh_token_and_shares_one_token_store(
    rendered: Rendered,
) -> None:
    manifests = rendered["kafka-shared-token-store"]
    workloads = list(containers(manifests))
    assert len(workloads) == 2  # the gateway and the separate processor
    for deployment, container in workloads:
        env = _env(container)
        assert env["GATEWAY_OC_REFRESH_TOKEN"]["valueFrom"] == {
            "secretKeyRef": {"name": "ocgw-oc-oauth", "key": "GATEWAY_OC_REFRESH_TOKEN"}
        }
        store = Path(env["GATEWAY_OC_TOKEN_STORE"]["value"])
        (mount,) = [m for m in container["volumeMounts"] if m["name"] == "oc-token-store"]
        assert store.parent == Path(mount["mountPath"])
        assert not mount.get("readOnly"), "refreshes write the rotated token"
        volume = _volume(deployment, "oc-token-store")
        assert volume["persistentVolumeClaim"] == {"claimName": "oc-token-rwx"}
    assert "GATEWAY_OC_TOKEN_STORE" not in config_data(manifests)
    assert not of_kind(manifests, "PersistentVolumeClaim"), "the claim is the operator's"


@pytest.mark.parametrize("case", [name for name in CASES if name != "kafka-shared-token-store"])
def test_by_default_each_pod_keeps_its_token_store_in_its_data_directory(
    rendered: Rendered, case: str
) -> None:
    for deployment, container in containers(rendered[case]):
        assert {"GATEWAY_OC_REFRESH_TOKEN", "GATEWAY_OC_TOKEN_STORE"}.isdisjoint(_env(container))
        assert "oc-token-store" not in {v["name"] for v in _pod_spec(deployment)["volumes"]}


@pytest.mark.parametrize("case", CASES)
def test_pods_are_locked_down(rendered: Rendered, case: str) -> None:
    for deployment, container in containers(rendered[case]):
        pod = _pod_spec(deployment)
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        assert pod["automountServiceAccountToken"] is False
        security = container["securityContext"]
        assert security["readOnlyRootFilesystem"] is True
        assert security["allowPrivilegeEscalation"] is False
        assert security["capabilities"] == {"drop": ["ALL"]}
        assert security["seccompProfile"] == {"type": "RuntimeDefault"}
        mounts = {m["mountPath"] for m in container["volumeMounts"]}
        assert {"/data", "/tmp"} <= mounts, "the only writable paths on a read-only root"


@pytest.mark.parametrize("case", CASES)
def test_probes_point_at_livez_and_readyz(rendered: Rendered, case: str) -> None:
    for _, container in containers(rendered[case]):
        ports = {p["name"] for p in container["ports"]}
        for probe, path in [
            ("startupProbe", "/livez"),
            ("livenessProbe", "/livez"),
            ("readinessProbe", "/readyz"),
        ]:
            assert container[probe]["httpGet"]["path"] == path
            assert container[probe]["httpGet"]["port"] in ports


@pytest.mark.parametrize("case", CASES)
def test_termination_grace_outlasts_the_gateway_drain(rendered: Rendered, case: str) -> None:
    grace_s = float(config_data(rendered[case])["GATEWAY_SHUTDOWN_GRACE_S"])
    for deployment, container in containers(rendered[case]):
        command = container["lifecycle"]["preStop"]["exec"]["command"]
        assert command[0] == "/bin/sleep"
        pre_stop_s = float(command[1])
        # Kubernetes counts the preStop hook inside the grace period.
        assert _pod_spec(deployment)["terminationGracePeriodSeconds"] > pre_stop_s + grace_s


@pytest.mark.parametrize("case", CASES)
def test_no_secret_value_is_rendered(rendered: Rendered, case: str) -> None:
    manifests = rendered[case]
    secrets = secret_env_names()
    assert not of_kind(manifests, "Secret")
    assert not secrets & set(config_data(manifests))
    for _, container in containers(manifests):
        for name, item in _env(container).items():
            if name in secrets:
                assert "value" not in item
                assert "secretKeyRef" in item["valueFrom"]
        refs = [e["secretRef"]["name"] for e in container["envFrom"] if "secretRef" in e]
        assert refs == ["oc-event-gateway"], "secrets come from existingSecret"


@pytest.mark.parametrize("case", CASES)
def test_config_is_accepted_by_the_settings_model(
    rendered: Rendered, case: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = config_data(rendered[case])
    for name in os.environ:
        if name.startswith("GATEWAY_"):  # only the rendered settings count
            monkeypatch.delenv(name)
    known = {env_name(field) for field in Settings.model_fields}
    assert set(config) <= known, f"not a gateway setting: {set(config) - known}"
    for name, value in config.items():
        monkeypatch.setenv(name, value)
    settings = Settings()
    assert settings.http_host == "0.0.0.0"
    assert str(settings.data_dir) == "/data"
    assert settings.uses_kafka == case.startswith("kafka")


def test_config_values_keep_their_form(rendered: Rendered) -> None:
    config = config_data(rendered["embedded"])
    assert config["GATEWAY_SPOOL_MAX_BYTES"] == "268435456", "no float formatting of integers"
    assert config["GATEWAY_EMBEDDED_RETENTION_HOURS"] == "336"
    assert config["GATEWAY_TRUSTED_PROXIES"] == "10.0.0.0/8,192.168.0.0/16"


def test_config_change_rolls_the_pods(helm: Path) -> None:
    def checksum(*sets: str) -> str:
        gateway = _gateway(render(helm, "minimal", *sets))
        value: str = gateway["spec"]["template"]["metadata"]["annotations"]["checksum/config"]
        return value

    assert checksum() == checksum()
    assert checksum() != checksum("config.GATEWAY_LOG_LEVEL=debug")


@pytest.mark.parametrize("case", CASES)
def test_instance_id_is_the_pod_name(rendered: Rendered, case: str) -> None:
    for _, container in containers(rendered[case]):
        instance = _env(container)["GATEWAY_INSTANCE_ID"]
        assert instance["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.name"}}


def test_service_and_ingress_expose_only_the_webhook_port(rendered: Rendered) -> None:
    manifests = rendered[KAFKA_SCENARIO]
    service = named(manifests, "Service", FULLNAME)
    assert {p["name"]: p["targetPort"] for p in service["spec"]["ports"]} == {
        "http": "http",
        "metrics": "metrics",
    }
    assert service["spec"]["selector"]["app.kubernetes.io/component"] == "gateway"
    (ingress,) = of_kind(manifests, "Ingress")
    backends = [
        path["backend"]["service"]
        for rule in ingress["spec"]["rules"]
        for path in rule["http"]["paths"]
    ]
    assert backends == [{"name": FULLNAME, "port": {"name": "http"}}]
    assert ingress["spec"]["rules"][0]["http"]["paths"][0]["path"] == "/webhooks"


def test_network_policy_covers_the_workloads_not_the_test_pod(rendered: Rendered) -> None:
    manifests = rendered[KAFKA_SCENARIO]
    (policy,) = of_kind(manifests, "NetworkPolicy")
    selector = policy["spec"]["podSelector"]

    def selected(labels: dict[str, str]) -> bool:
        if not selector["matchLabels"].items() <= labels.items():
            return False
        return all(
            labels.get(e["key"]) in e["values"]
            for e in selector["matchExpressions"]
            if e["operator"] == "In"
        )

    gateway_labels = _gateway(manifests)["spec"]["template"]["metadata"]["labels"]
    (test_pod,) = of_kind(manifests, "Pod")
    assert selected(gateway_labels)
    assert not selected(test_pod["metadata"]["labels"])
    assert set(policy["spec"]["policyTypes"]) == {"Ingress", "Egress"}
    dns = policy["spec"]["egress"][0]["ports"]
    assert {(p["port"], p["protocol"]) for p in dns} == {(53, "UDP"), (53, "TCP")}


def test_dashboard_configmap_is_labelled_for_the_sidecar(rendered: Rendered) -> None:
    configmap = named(rendered[KAFKA_SCENARIO], "ConfigMap", f"{FULLNAME}-dashboard")
    assert configmap["metadata"]["labels"]["grafana_dashboard"] == "1"
    shipped = json.loads((CHART / "dashboards" / "oc-event-gateway.json").read_text())
    assert json.loads(configmap["data"]["oc-event-gateway.json"]) == shipped


@pytest.mark.parametrize("case", EMBEDDED_SCENARIOS)
def test_monitoring_objects_are_opt_in(rendered: Rendered, case: str) -> None:
    kinds = {m["kind"] for m in rendered[case]}
    assert not {"PrometheusRule", "NetworkPolicy", "Ingress", "HorizontalPodAutoscaler"} & kinds


# --- the operator console ------------------------------------------------------------------


@pytest.mark.parametrize("case", EMBEDDED_SCENARIOS)
def test_the_console_is_off_by_default(rendered: Rendered, case: str) -> None:
    for deployment, container in containers(rendered[case]):
        assert "GATEWAY_CONSOLE_TOKEN_FILE" not in _env(container)
        assert "console-token" not in {v["name"] for v in _pod_spec(deployment)["volumes"]}


def test_the_console_token_is_a_mounted_secret_file(rendered: Rendered) -> None:
    for deployment, container in containers(rendered[KAFKA_SCENARIO]):
        path = Path(_env(container)["GATEWAY_CONSOLE_TOKEN_FILE"]["value"])
        (mount,) = [m for m in container["volumeMounts"] if m["name"] == "console-token"]
        assert mount["readOnly"] is True
        assert path.parent == Path(mount["mountPath"])
        volume = _volume(deployment, "console-token")["secret"]
        assert volume["secretName"] == "oc-gateway-console"
        assert volume["items"] == [{"key": "token", "path": path.name}]
        assert volume["defaultMode"] == 0o440


def test_the_console_token_defaults_to_existing_secret_and_is_required(helm: Path) -> None:
    rendered = template(helm, "embedded", "console.enabled=true")
    assert rendered.returncode == 0, rendered.stderr
    assert "secretName: oc-event-gateway" in rendered.stdout
    assert "key: console-token" in rendered.stdout
    refused = template(helm, None, "console.enabled=true")
    assert refused.returncode != 0
    assert "console.enabled needs its token" in refused.stderr
