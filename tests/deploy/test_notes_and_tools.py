"""NOTES.txt as an operator reads it after `helm install`, and the tool builder's reuse rule.

`helm template` does not render NOTES.txt and `helm install --dry-run` wants a cluster, so
the test renders a copy of the chart in which NOTES.txt is wrapped in a named template and
emitted through a ConfigMap.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from tools.ensure_tool import TOOLS, built_version, ensure, go_command

from .chart import CHART, KUBE_VERSIONS, NAMESPACE, RELEASE, SCENARIOS, run_helm

_WRAPPER = """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: notes-under-test
data:
  notes: {{ include "notes-under-test" . | toJson }}
"""


def render_notes(helm: Path, tmp_path: Path, scenario: str | None, *sets: str) -> str:
    chart = tmp_path / "chart"
    shutil.copytree(CHART, chart)
    notes = (chart / "templates" / "NOTES.txt").read_text()
    (chart / "templates" / "_notes_under_test.tpl").write_text(
        '{{- define "notes-under-test" -}}\n' + notes + "\n{{- end }}\n"
    )
    (chart / "templates" / "notes-under-test.yaml").write_text(_WRAPPER)
    args = ["template", RELEASE, str(chart), "--namespace", NAMESPACE]
    args += ["--kube-version", KUBE_VERSIONS[-1]]
    args += ["--show-only", "templates/notes-under-test.yaml"]
    if scenario:
        args += ["-f", str(SCENARIOS[scenario])]
    for item in sets:
        args += ["--set", item]
    result = run_helm(helm, *args)
    assert result.returncode == 0, result.stderr
    text: str = yaml.safe_load(result.stdout)["data"]["notes"]
    return text


def test_notes_warn_when_no_secret_is_given(helm: Path, tmp_path: Path) -> None:
    notes = render_notes(helm, tmp_path, None)
    assert "Mode: embedded" in notes
    assert "WARNING: existingSecret is empty" in notes
    assert "kubectl -n integrations create secret generic" in notes


def test_notes_describe_kafka_mode(helm: Path, tmp_path: Path) -> None:
    notes = render_notes(helm, tmp_path, "kafka-sasl-tls")
    assert "Mode: kafka" in notes
    assert "kafka-bootstrap.kafka.svc:9093 (SASL_SSL)" in notes
    assert "Replicas: 2-12 (HPA)" in notes
    assert "emptyDir" in notes
    assert "https://oc-callbacks.example.com/webhooks/oc/" in notes
    assert "WARNING" not in notes


def test_notes_warn_about_insecure_mode(helm: Path, tmp_path: Path) -> None:
    notes = render_notes(helm, tmp_path, "minimal", "config.GATEWAY_INSECURE_ALLOW_UNVERIFIED=true")
    assert "WARNING: GATEWAY_INSECURE_ALLOW_UNVERIFIED is on" in notes


def test_notes_say_where_ocs_tokens_come_from_and_live(helm: Path, tmp_path: Path) -> None:
    per_pod = render_notes(helm, tmp_path / "per-pod", "kafka-sasl-tls")
    assert "OC's API: https://oc-api.example.com" in per_pod
    assert "GATEWAY_OC_REFRESH_TOKEN in existingSecret" in per_pod
    assert "Token store: per pod" in per_pod
    assert "if OC rotates refresh tokens, set oc.tokenStore.existingClaim" in per_pod
    assert "exec deploy/ocgw-oc-event-gateway -- gateway oc check" in per_pod
    shared = render_notes(
        helm,
        tmp_path / "shared",
        "kafka-sasl-tls",
        "oc.refreshTokenSecret.name=ocgw-oc-oauth",
        "oc.tokenStore.existingClaim=oc-token-rwx",
    )
    assert "from the Secret ocgw-oc-oauth (key GATEWAY_OC_REFRESH_TOKEN)" in shared
    assert "shared by every pod, on the claim oc-token-rwx" in shared
    assert "if OC rotates" not in shared
    assert "OC's API" not in render_notes(helm, tmp_path / "none", "minimal")


def test_go_binary_reports_the_module_version_it_was_built_from(helm: Path) -> None:
    go = go_command()
    assert built_version(go, helm, TOOLS["helm"].module) == TOOLS["helm"].version
    assert built_version(go, helm, "example.com/other") is None


def test_missing_binary_has_no_version(tmp_path: Path) -> None:
    go = go_command()
    assert built_version(go, tmp_path / "helm", TOOLS["helm"].module) is None


def test_ensure_reuses_a_binary_of_the_pinned_version(helm: Path) -> None:
    before = helm.stat().st_mtime_ns
    assert ensure("helm", helm.parent) == helm
    assert helm.stat().st_mtime_ns == before, "a current binary must not be rebuilt"


@pytest.mark.parametrize("name", sorted(TOOLS))
def test_tools_are_pinned_to_exact_versions(name: str) -> None:
    tool = TOOLS[name]
    assert tool.package.startswith(tool.module + "/")
    assert tool.version.startswith("v")
    assert tool.version.count(".") == 2
