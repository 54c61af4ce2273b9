"""Alerts and dashboard: documented metrics only, valid PromQL, alerts that fire when they should.

PromQL is checked with the real promtool (built from the Prometheus Go module):
`promtool check rules` on the rendered PrometheusRule and on the dashboard's queries (as
recording rules), and `promtool test rules` feeds each alert synthetic series and asserts
it fires, or stays quiet, at the right time.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from gateway.ops.metrics import Metrics
from gateway.settings import Settings

from .chart import (
    CHART,
    COUNTERS,
    FULLNAME,
    GAUGES,
    HISTOGRAMS,
    KAFKA_SCENARIO,
    METRIC_NAMES,
    NAMESPACE,
    REPO,
    SERIES_NAMES,
    Manifest,
    of_kind,
    render,
    run_helm,
)

DASHBOARD = CHART / "dashboards" / "oc-event-gateway.json"
RUNBOOK = REPO / "helm" / "README.md"
# The alerts issue 6 asks for, by name.
REQUIRED_ALERTS = {
    "OCGatewaySpoolGrowing",
    "OCGatewaySpoolOld",
    "OCGatewayDLQGrowing",
    "OCGatewayProcessorLag",
    "OCGatewayVerificationFailures",
    "OCGatewayOCBreakerOpen",
    "OCGatewayNotReady",
    "OCGatewayUnavailable",
    "OCGatewayInsecureMode",
    "OCGatewayLogWriteFailing",  # issue 14
}
METRIC_RE = re.compile(r"\bgateway_[a-z0-9_]+\b")

Rendered = dict[str, list[Manifest]]


def _groups(rendered: Rendered) -> list[dict[str, Any]]:
    (rule,) = of_kind(rendered[KAFKA_SCENARIO], "PrometheusRule")
    groups: list[dict[str, Any]] = rule["spec"]["groups"]
    return groups


def _alerts(rendered: Rendered) -> list[dict[str, Any]]:
    return [r for group in _groups(rendered) for r in group["rules"] if "alert" in r]


def _github_anchors(markdown: str) -> set[str]:
    """The anchors GitHub generates for a document's headings."""
    anchors = set()
    for line in markdown.splitlines():
        if match := re.match(r"^#{1,6}\s+(.*?)\s*$", line):
            text = re.sub(r"[^\w\- ]", "", match.group(1).lower())
            anchors.add(text.replace(" ", "-"))
    return anchors


def _check_rules(promtool: Path, tmp_path: Path, groups: list[dict[str, Any]]) -> str:
    rules = tmp_path / "rules.yaml"
    rules.write_text(yaml.safe_dump({"groups": groups}))
    result = run_helm(promtool, "check", "rules", str(rules))
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout + result.stderr


# --- metric names --------------------------------------------------------------------------


def test_documented_metrics_are_exported_by_the_gateway() -> None:
    exported = {family.name: family.type for family in Metrics().registry.collect()}
    for name in COUNTERS:
        assert exported.get(name.removesuffix("_total")) == "counter", name
    for name in GAUGES:
        assert exported.get(name) == "gauge", name
    for name in HISTOGRAMS:
        assert exported.get(name) == "histogram", name


# --- alerts --------------------------------------------------------------------------------


def test_alerts_cover_the_issue(rendered: Rendered) -> None:
    names = [a["alert"] for a in _alerts(rendered)]
    assert len(names) == len(set(names))
    assert set(names) >= REQUIRED_ALERTS


def test_every_alert_says_what_and_links_its_runbook(rendered: Rendered) -> None:
    anchors = _github_anchors(RUNBOOK.read_text())
    base = "https://git.example.com/platform/oc-event-gateway/blob/main/helm/README.md#"
    for alert in _alerts(rendered):
        name = alert["alert"]
        assert alert["labels"]["severity"] in {"warning", "critical"}, name
        assert alert["labels"]["team"] == "platform", "additionalRuleLabels reach every alert"
        annotations = alert["annotations"]
        assert annotations["summary"].strip(), name
        assert annotations["description"].strip(), name
        url = annotations["runbook_url"]
        assert url.startswith(base), url
        anchor = url.removeprefix(base)
        assert anchor == name.lower()
        assert anchor in anchors, f"helm/README.md has no section for {name}"


def test_alerts_use_documented_metrics_of_this_release(rendered: Rendered) -> None:
    for alert in _alerts(rendered):
        used = set(METRIC_RE.findall(alert["expr"]))
        assert used, alert["alert"]
        assert used <= SERIES_NAMES, f"{alert['alert']}: {used - SERIES_NAMES}"
        # Scoped to the release: another install in the cluster does not trigger it.
        selectors = re.findall(r"gateway_[a-z0-9_]+\{([^}]*)\}", alert["expr"])
        assert len(selectors) == len(METRIC_RE.findall(alert["expr"]))
        for selector in selectors:
            assert f'namespace="{NAMESPACE}"' in selector
            assert FULLNAME in selector


def test_promtool_checks_the_alert_rules(
    promtool: Path, rendered: Rendered, tmp_path: Path
) -> None:
    output = _check_rules(promtool, tmp_path, _groups(rendered))
    assert f"SUCCESS: {len(_alerts(rendered))} rules found" in output


def test_promtool_rejects_broken_rules(promtool: Path, tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    for bad in (
        {"alert": "A", "expr": "sum by (x (rate(gateway_ready[5m]))"},
        {"alert": "A", "expr": "gateway_ready", "annotations": {"summary": "{{ $labels.x "}},
    ):
        rules.write_text(yaml.safe_dump({"groups": [{"name": "g", "rules": [bad]}]}))
        assert run_helm(promtool, "check", "rules", str(rules)).returncode != 0


def test_disabled_alerts_are_left_out(helm: Path) -> None:
    manifests = render(
        helm, KAFKA_SCENARIO, "metrics.prometheusRule.disabledAlerts[0]=OCGatewayAckSlow"
    )
    (rule,) = of_kind(manifests, "PrometheusRule")
    names = {r["alert"] for g in rule["spec"]["groups"] for r in g["rules"]}
    assert "OCGatewayAckSlow" not in names
    assert names >= REQUIRED_ALERTS


# Synthetic series for `promtool test rules`: per alert, one case where it must fire and one
# where it must stay quiet. Series carry the labels the ServiceMonitor gives them.
GATEWAY = f'namespace="{NAMESPACE}", job="{FULLNAME}"'
PROCESSOR = f'namespace="{NAMESPACE}", job="{FULLNAME}-processor"'


def _series(name: str, values: str, labels: str = GATEWAY, **extra: str) -> dict[str, str]:
    more = "".join(f', {key}="{value}"' for key, value in extra.items())
    return {"series": f"{name}{{{labels}{more}}}", "values": values}


def _ack_buckets(le_with_observations: str) -> list[dict[str, str]]:
    series = []
    for le in ("0.5", "1.0", "2.5", "5.0", "+Inf"):
        rising = float(le) >= float(le_with_observations) if le != "+Inf" else True
        series.append(
            _series("gateway_ack_duration_seconds_bucket", "0+10x30" if rising else "0x30", le=le)
        )
    return series


HANGING = "gateway_processor_hanging_transactions_total"

ALERT_CASES: list[tuple[str, list[dict[str, str]], str, list[dict[str, str]]]] = [
    # (alert, input series, eval time, expected labels of each firing alert; [] = quiet)
    (
        "OCGatewayUnavailable",
        [_series("gateway_ready", "0x20", pod="a"), _series("gateway_ready", "1x20", PROCESSOR)],
        "10m",
        [{}],
    ),
    ("OCGatewayUnavailable", [_series("gateway_ready", "1x20", pod="a")], "10m", []),
    (
        "OCGatewayNotReady",
        [_series("gateway_ready", "0x20", pod="a"), _series("gateway_ready", "1x20", pod="b")],
        "10m",
        [{"namespace": NAMESPACE, "pod": "a"}],
    ),
    # Not ready for 3 minutes (a restart) is shorter than the alert's `for`.
    ("OCGatewayNotReady", [_series("gateway_ready", "0 0 0 1 1 1 1 1 1 1 1", pod="a")], "10m", []),
    (
        "OCGatewayLogWriteFailing",
        [
            _series(
                "gateway_log_write_errors_total",
                "0+3x20",
                pod="a",
                log="embedded",
                reason="disk_full",
            ),
            _series(
                "gateway_log_write_errors_total", "0x20", pod="a", log="embedded", reason="busy"
            ),
            _series("gateway_log_writable", "0x20", pod="a", log="embedded"),
            _series("gateway_log_writable", "1x20", pod="b", log="embedded"),
        ],
        "10m",
        [{"namespace": NAMESPACE, "pod": "a", "log": "embedded", "reason": "disk_full"}],
    ),
    (
        # A failed write that the next one cured (a lock held a moment too long).
        "OCGatewayLogWriteFailing",
        [
            _series(
                "gateway_log_write_errors_total",
                "0 2 2 2 2 2 2 2 2",
                pod="a",
                log="spool",
                reason="busy",
            ),
            _series("gateway_log_writable", "1 0 1 1 1 1 1 1 1", pod="a", log="spool"),
        ],
        "6m",
        [],
    ),
    (
        "OCGatewaySpoolGrowing",
        [_series("gateway_spool_depth_records", "0+10x40", pod="a")],
        "25m",
        [{"namespace": NAMESPACE, "pod": "a"}],
    ),
    (
        "OCGatewaySpoolGrowing",
        [_series("gateway_spool_depth_records", "50x40", pod="a")],
        "25m",
        [],
    ),
    (
        "OCGatewaySpoolOld",
        [_series("gateway_spool_oldest_age_seconds", "0+60x30", pod="a")],
        "20m",
        [{"namespace": NAMESPACE, "pod": "a"}],
    ),
    (
        "OCGatewaySpoolOld",
        [_series("gateway_spool_oldest_age_seconds", "0+60x30", pod="a")],
        "12m",
        [],
    ),
    (
        "OCGatewayDLQGrowing",
        [_series("gateway_dlq_records_total", "0 0 0 1 1 1 2 2 2 2", reason="mapping")],
        "8m",
        [{"namespace": NAMESPACE, "reason": "mapping"}],
    ),
    (
        "OCGatewayDLQGrowing",
        [_series("gateway_dlq_records_total", "3x10", reason="mapping")],
        "8m",
        [],
    ),
    (
        "OCGatewayProcessorLag",
        # Two replicas report the same partition (one lost it in a rebalance): counted once.
        [
            _series(
                "gateway_processor_lag_records", "20000x30", pod="a", topic="raw", partition="0"
            ),
            _series(
                "gateway_processor_lag_records", "20000x30", pod="b", topic="raw", partition="0"
            ),
        ],
        "20m",
        [{"namespace": NAMESPACE, "topic": "raw"}],
    ),
    (
        "OCGatewayProcessorLag",
        [
            _series(
                "gateway_processor_lag_records", "6000x30", pod="a", topic="raw", partition="0"
            ),
            _series(
                "gateway_processor_lag_records", "6000x30", pod="b", topic="raw", partition="0"
            ),
        ],
        "20m",
        [],
    ),
    (
        "OCGatewayProducersLeaked",
        [
            _series("gateway_processor_producers", "6x30", pod="a"),
            _series("gateway_processor_partitions", "3x30", pod="a"),
            _series("gateway_processor_producers", "3x30", pod="b"),
            _series("gateway_processor_partitions", "3x30", pod="b"),
        ],
        "20m",
        [{"namespace": NAMESPACE, "pod": "a"}],
    ),
    # A rebalance: the old producers are closed within minutes (here two samples).
    (
        "OCGatewayProducersLeaked",
        [
            _series("gateway_processor_producers", "6 6 3x28", pod="a"),
            _series("gateway_processor_partitions", "3x30", pod="a"),
        ],
        "20m",
        [],
    ),
    (
        "OCGatewayHangingTransactionEnded",
        [_series(HANGING, "0 0 1x10", pod="a", outcome="commit")],
        "5m",
        [{"namespace": NAMESPACE, "pod": "a", "outcome": "commit"}],
    ),
    # None in the last hour: quiet again.
    (
        "OCGatewayHangingTransactionEnded",
        [_series(HANGING, "0 1x80", pod="a", outcome="abort")],
        "75m",
        [],
    ),
    (
        "OCGatewayVerificationFailures",
        [_series("gateway_verification_failures_total", "0+60x30", pod="a", method="oc_signature")],
        "20m",
        [{"namespace": NAMESPACE, "method": "oc_signature"}],
    ),
    (
        "OCGatewayVerificationFailures",
        [_series("gateway_verification_failures_total", "0+6x30", pod="a", method="oc_signature")],
        "20m",
        [],
    ),
    (
        "OCGatewayOCBreakerOpen",
        [_series("gateway_oc_breaker_state", "2x20", pod="a", endpoint="stock")],
        "10m",
        [{"namespace": NAMESPACE, "endpoint": "stock"}],
    ),
    (
        "OCGatewayOCBreakerOpen",
        [_series("gateway_oc_breaker_state", "1x20", pod="a", endpoint="stock")],
        "10m",
        [],
    ),
    (
        "OCGatewayInsecureMode",
        [_series("gateway_insecure_mode", "1x5", pod="a")],
        "1m",
        [{"namespace": NAMESPACE, "pod": "a"}],
    ),
    ("OCGatewayInsecureMode", [_series("gateway_insecure_mode", "0x5", pod="a")], "1m", []),
    ("OCGatewayAckSlow", _ack_buckets("5.0"), "20m", [{"namespace": NAMESPACE}]),
    ("OCGatewayAckSlow", _ack_buckets("0.5"), "20m", []),
    (
        "OCGatewayOverloaded",
        [
            _series("gateway_callbacks_received_total", "0+600x30", pod="a", kind="outbound"),
            _series("gateway_callbacks_rejected_total", "0+120x30", pod="a", reason="overloaded"),
        ],
        "20m",
        [{"namespace": NAMESPACE}],
    ),
    (
        "OCGatewayOverloaded",
        # A burst refused for a few minutes, and other refusals, do not page anyone.
        [
            _series("gateway_callbacks_received_total", "0+600x30", pod="a", kind="outbound"),
            _series(
                "gateway_callbacks_rejected_total",
                "0 300 600 900 900 900 900 900 900 900 900 900 900 900 900 900 900 900 900",
                pod="a",
                reason="overloaded",
            ),
            _series("gateway_callbacks_rejected_total", "0+300x30", pod="a", reason="rate_limited"),
        ],
        "20m",
        [],
    ),
    (
        "OCGatewayCallbacksQuarantined",
        [_series("gateway_callbacks_quarantined_total", "0 0 1 1 1", reason="unknown_shape")],
        "4m",
        [{"namespace": NAMESPACE, "reason": "unknown_shape"}],
    ),
    (
        "OCGatewayCallbacksQuarantined",
        [_series("gateway_callbacks_quarantined_total", "4x40", reason="unknown_shape")],
        "35m",
        [],
    ),
]


def test_every_alert_has_firing_and_quiet_cases(rendered: Rendered) -> None:
    firing = {name for name, _, _, expected in ALERT_CASES if expected}
    quiet = {name for name, _, _, expected in ALERT_CASES if not expected}
    alerts = {a["alert"] for a in _alerts(rendered)}
    assert firing == alerts
    assert quiet == alerts


def test_alerts_fire_on_their_conditions(
    promtool: Path, rendered: Rendered, tmp_path: Path
) -> None:
    alerts = {a["alert"]: a for a in _alerts(rendered)}
    # Annotations are templates checked by `check rules`; the unit test compares labels.
    groups = [
        {**g, "rules": [{k: v for k, v in r.items() if k != "annotations"} for r in g["rules"]]}
        for g in _groups(rendered)
    ]
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump({"groups": groups}))
    tests = []
    for name, series, eval_time, expected in ALERT_CASES:
        rule_labels = alerts[name]["labels"]
        tests.append(
            {
                "interval": "1m",
                "input_series": series,
                "alert_rule_test": [
                    {
                        "eval_time": eval_time,
                        "alertname": name,
                        "exp_alerts": [{"exp_labels": {**rule_labels, **e}} for e in expected],
                    }
                ],
            }
        )
    spec = {"rule_files": ["rules.yaml"], "evaluation_interval": "1m", "tests": tests}
    (tmp_path / "tests.yaml").write_text(yaml.safe_dump(spec))
    result = run_helm(promtool, "test", "rules", str(tmp_path / "tests.yaml"))
    assert result.returncode == 0, result.stdout + result.stderr


# --- dashboard -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    value: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return value


def _panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in dashboard["panels"] if p["type"] != "row"]


def _queries(dashboard: dict[str, Any]) -> list[str]:
    return [t["expr"] for p in _panels(dashboard) for t in p["targets"]]


def test_dashboard_is_an_importable_grafana_dashboard(dashboard: dict[str, Any]) -> None:
    assert dashboard["uid"] == "oc-event-gateway"
    assert dashboard["title"]
    assert isinstance(dashboard["schemaVersion"], int)
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    for panel in dashboard["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] >= 0
        assert grid["x"] + grid["w"] <= 24
        assert grid["h"] > 0
    for panel in _panels(dashboard):
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        assert panel["targets"], panel["title"]
        ref_ids = [t["refId"] for t in panel["targets"]]
        assert len(ref_ids) == len(set(ref_ids))


def test_dashboard_panels_do_not_overlap(dashboard: dict[str, Any]) -> None:
    taken: dict[tuple[int, int], str] = {}
    for panel in dashboard["panels"]:
        grid = panel["gridPos"]
        for x in range(grid["x"], grid["x"] + grid["w"]):
            for y in range(grid["y"], grid["y"] + grid["h"]):
                assert (x, y) not in taken, f"{panel['title']} overlaps {taken[(x, y)]}"
                taken[(x, y)] = panel["title"]


def test_dashboard_shows_every_documented_metric_and_nothing_else(
    dashboard: dict[str, Any],
) -> None:
    used = {name for query in _queries(dashboard) for name in METRIC_RE.findall(query)}
    assert used <= SERIES_NAMES, f"undocumented: {used - SERIES_NAMES}"
    shown = {re.sub(r"_(bucket|sum|count)$", "", n) if n not in COUNTERS else n for n in used}
    assert shown >= METRIC_NAMES, f"not on the dashboard: {METRIC_NAMES - shown}"
    for query in _queries(dashboard):
        assert 'namespace="$namespace"' in query
        assert 'job=~"$job"' in query


def test_dashboard_queries_parse_with_promtool(
    promtool: Path, dashboard: dict[str, Any], tmp_path: Path
) -> None:
    def concrete(query: str) -> str:
        return (
            query.replace("$__rate_interval", "5m")
            .replace("$namespace", NAMESPACE)
            .replace("$job", ".+")
        )

    rules = [
        {"record": f"dashboard:query_{i}", "expr": concrete(q)}
        for i, q in enumerate(_queries(dashboard))
    ]
    variables = [v["definition"] for v in dashboard["templating"]["list"] if "definition" in v]
    for i, definition in enumerate(variables):
        # label_values(<selector>, label) is Grafana's; its selector must be valid PromQL.
        selector = re.fullmatch(r"label_values\((.*), \w+\)", definition)
        assert selector, definition
        rules.append({"record": f"dashboard:variable_{i}", "expr": concrete(selector.group(1))})
    output = _check_rules(promtool, tmp_path, [{"name": "dashboard", "rules": rules}])
    assert f"SUCCESS: {len(rules)} rules found" in output


# --- the runbook document --------------------------------------------------------------------


def test_runbook_links_within_the_page_resolve() -> None:
    text = RUNBOOK.read_text()
    anchors = _github_anchors(text)
    links = re.findall(r"\]\(#([^)]+)\)", text)
    assert links
    assert set(links) <= anchors, f"dangling: {set(links) - anchors}"


def test_runbook_names_the_default_topics() -> None:
    text = RUNBOOK.read_text()
    topics = {
        name: field.default
        for name, field in Settings.model_fields.items()
        if name.startswith("topic_")
    }
    missing = {name: topic for name, topic in topics.items() if f"`{topic}`" not in text}
    assert not missing, f"helm/README.md does not mention {missing}"
