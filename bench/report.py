"""bench/results/: results.json (every figure), summary.md and the PNG plots.

`make bench` writes the "benchmark" section and `make faults` the "faults" section of
results.json; each run replaces its own section and the summary is rebuilt from both.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

TARGETS = {
    "ack_p99_ms_at_1000": 10.0,
    "throughput_share_of_http_ceiling": 0.5,
    "e2e_p99_ms": 250.0,
    "oc_calls_per_1000": 100.0,
    "rss_mb": 200.0,
}


def rebuild(results_dir: Path) -> None:
    """summary.md and the plots again from results.json (after a change to this module)."""
    results: dict[str, Any] = json.loads((results_dir / "results.json").read_text())
    for key in ("benchmark", "faults"):
        if key in results:
            update(results_dir, key, results[key])


def update(results_dir: Path, key: str, section: dict[str, Any]) -> dict[str, Any]:
    results_dir.mkdir(parents=True, exist_ok=True)
    path = results_dir / "results.json"
    results: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}
    if key == "benchmark":
        section = {**section, "headline": headline(section)}
        plot_latency(section, results_dir / "latency-vs-rate.png")
    else:
        for name, run in section.get("scenarios", {}).items():
            plot_fault(name, run, results_dir / f"fault-{name}.png")
    results[key] = section
    path.write_text(json.dumps(results, indent=2) + "\n")
    (results_dir / "summary.md").write_text(summary(results))
    return results


def _step_at(mode: dict[str, Any], rate: int) -> dict[str, Any] | None:
    return next((s for s in mode["rates"] if s["offered_rate"] == rate), None)


def _sustained(step: dict[str, Any]) -> bool:
    """The gateway kept up with a fixed rate: at least 95% of it answered 200 (at most 1%
    other answers) and the answers stayed within a second (p99). Saturation steps have
    no rate to keep up with."""
    offered = step["offered_rate"]
    if offered == 0:
        return True
    return (
        bool(step.get("sustained", True))
        and step["ok_per_s"] >= 0.95 * offered
        and step["ack_latency_ms"]["p99"] < 1000
    )


def headline(section: dict[str, Any]) -> dict[str, Any]:
    """The figures the targets are about, per log, with ratios to the ceilings."""
    refs = section.get("references", {})
    bare = refs.get("bare_starlette", {}).get("saturation", {}).get("ok_per_s")
    broker = refs.get("kafka_producer_perf", {}).get("records_per_s")
    out: dict[str, Any] = {}
    for name, mode in section["modes"].items():
        at_1000 = _step_at(mode, 1000)
        steps = [s for s in mode["rates"] if _sustained(s)]
        sat = mode["saturation"]["ok_per_s"]
        # Ingest alone publishes no events and calls no OC: those figures do not apply.
        ingest_only = all(s["e2e_latency_ms"]["count"] == 0 for s in mode["rates"])
        out[name] = {
            "ingest_only": ingest_only,
            "saturation_per_s": sat,
            "share_of_http_ceiling": round(sat / bare, 3) if bare else None,
            "share_of_broker_ceiling": (
                round(sat / broker, 4) if broker and name == "kafka" else None
            ),
            "ack_p99_ms_at_1000": (
                at_1000["ack_latency_ms"]["p99"] if at_1000 and _sustained(at_1000) else None
            ),
            "e2e_p99_ms_max_sustained": None
            if ingest_only
            else max((s["e2e_latency_ms"]["p99"] for s in steps), default=None),
            "oc_calls_per_1000": None
            if ingest_only
            else max((s["oc_calls_per_1000"] for s in steps), default=None),
            "cpu_s_per_1000": (
                round(sum(s["cpu_s_per_1000"] for s in steps) / len(steps), 3) if steps else None
            ),
            # At the sustained rates: an overloaded open-model step holds thousands of
            # connections open, and the allocator keeps that memory afterwards.
            "peak_rss_mb": round(
                max((s["rss_peak_bytes"] for s in steps), default=mode["peak_rss_bytes"]) / 2**20,
                1,
            ),
            "peak_rss_mb_overall": round(mode["peak_rss_bytes"] / 2**20, 1),
        }
    return out


def _fmt(value: Any, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def _met(value: Any, target: float, higher_is_better: bool = False) -> str:
    if value is None:
        return "not reached"
    ok = value >= target if higher_is_better else value <= target
    return "met" if ok else "missed"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return [*lines, ""]


def _ms3(latency: dict[str, float]) -> str:
    return " / ".join(_fmt(latency[p]) for p in ("p50", "p99", "p999"))


def _offered(step: dict[str, Any]) -> str:
    if step["offered_rate"] == 0:
        return "max (64 senders)"
    return _fmt(step["offered_rate"]) + ("" if _sustained(step) else " (not sustained)")


_HEADLINE_ROWS = (
    ("ack p99 at 1,000/s (ms)", "ack_p99_ms_at_1000", 10.0, False, "< 10"),
    ("saturation / bare Starlette", "share_of_http_ceiling", 0.5, True, ">= 0.5"),
    (
        "end-to-end p99, worst sustained rate (ms)",
        "e2e_p99_ms_max_sustained",
        250.0,
        False,
        "< 250",
    ),
    ("OC calls per 1,000 callbacks", "oc_calls_per_1000", 100.0, False, "<= 100"),
    ("peak RSS at sustained rates (MB)", "peak_rss_mb", 200.0, False, "< 200"),
)


def _headline_md(h: dict[str, Any]) -> list[str]:
    modes = list(h)
    rows = []
    for label, key, target, higher, text in _HEADLINE_ROWS:
        digits = 3 if "share" in key else 1
        cells = [
            "n/a"
            if h[m].get(key) is None and h[m].get("ingest_only")
            else f"{_fmt(h[m].get(key), digits)} ({_met(h[m].get(key), target, higher)})"
            for m in modes
        ]
        rows.append([label, *cells, text])
    rows.append(
        ["saturation (callbacks/s)", *(_fmt(h[m].get("saturation_per_s")) for m in modes), ""]
    )
    rows.append(
        ["CPU s per 1,000 callbacks", *(_fmt(h[m].get("cpu_s_per_1000"), 2) for m in modes), ""]
    )
    return _table(["figure", *(f"{m} log" if "-" not in m else m for m in modes), "target"], rows)


def _bench_md(b: dict[str, Any]) -> list[str]:
    m = b["machine"]
    refs = b.get("references", {})
    bare = refs.get("bare_starlette", {})
    perf = refs.get("kafka_producer_perf", {})
    pay = b["payload_bytes"]
    shared = " (machine shared with other work during the run)"
    lines = [
        "## Benchmark",
        "",
        f"Run {b['generated_at']} on {m['cpus']} x {m['cpu_model']}, "
        f"{m['memory_bytes'] / 2**30:.0f} GiB, commit {m['git_commit']}"
        + (shared if m.get("shared_with_other_work") else "")
        + f". Load: vegeta {b['load_tool']['version']} at fixed arrival rates, OC-signed "
        f"outbound callbacks from the simulator, body {pay['mean']:.0f} bytes on average "
        f"({pay['min']}-{pay['max']}); simulated OC latency {b['plan']['oc_latency_ms']:.0f} ms; "
        "broker, gateway, simulator, load tool and reader all on this machine.",
        "",
        *_headline_md(b["headline"]),
        f"Ceilings in the same run: bare Starlette "
        f"{_fmt(bare.get('saturation', {}).get('ok_per_s'))} answers/s; Kafka "
        f"ProducerPerformance {_fmt(perf.get('records_per_s'))} records/s "
        f"({perf.get('record_size', '-')}-byte records, acks=all, idempotent; p99 "
        f"{_fmt(perf.get('latency_ms', {}).get('p99'))} ms). Kafka-log saturation / broker "
        f"ceiling: {_fmt(b['headline'].get('kafka', {}).get('share_of_broker_ceiling'), 4)}.",
        "",
        "![ack latency against offered rate](latency-vs-rate.png)",
        "",
    ]
    header = [
        "offered/s",
        "answered 200/s",
        "ack p50 / p99 / p99.9 (ms)",
        "end-to-end p50 / p99 / p99.9 (ms)",
        "OC calls per 1,000",
        "CPU s per 1,000",
        "peak RSS (MB)",
    ]
    for name, mode in b["modes"].items():
        rows = [
            [
                _offered(s),
                _fmt(s["ok_per_s"]),
                _ms3(s["ack_latency_ms"]),
                _ms3(s["e2e_latency_ms"]),
                _fmt(s["oc_calls_per_1000"]),
                _fmt(s["cpu_s_per_1000"], 2),
                _fmt(s["rss_peak_bytes"] / 2**20),
            ]
            for s in [*mode["rates"], mode["saturation"]]
        ]
        lines += [f"### {name} log", "", *_table(header, rows)]
    if bare:
        rows = [
            [_offered(s), _fmt(s["ok_per_s"]), _ms3(s["ack_latency_ms"])]
            for s in [*bare["rates"], bare["saturation"]]
        ]
        lines += ["### bare Starlette (HTTP ceiling)", ""]
        lines += _table(["offered/s", "answered 200/s", "p50 / p99 / p99.9 (ms)"], rows)
    return lines


def _faults_md(f: dict[str, Any]) -> list[str]:
    shared = " (machine shared with other work)"
    lines = [
        "## Fault runs",
        "",
        f"Run {f['generated_at']}, commit {f['machine']['git_commit']}"
        + (shared if f["machine"].get("shared_with_other_work") else "")
        + ". Each audit is an independent read_committed consumer compared with the load "
        "tool's 200 answers.",
        "",
    ]
    header = [
        "scenario",
        "offered/s",
        "accepted",
        "present",
        "reconciled first",
        "missing",
        "duplicates (typed)",
        "raw duplicates",
        "not enriched / followed up",
        "recovery",
    ]
    rows = []
    for name, run in f["scenarios"].items():
        a = run["audit"]
        recovery = ", ".join(
            f"{k.replace('_', ' ')} {_fmt(v)} s" for k, v in run["recovery_s"].items()
        )
        rows.append(
            [
                f"{name} ({run['log']})",
                str(run["rate"]),
                _fmt(a["accepted"]),
                _fmt(a["present"]),
                str(a.get("reconciled", 0)),
                str(a["missing"]),
                str(a["duplicates"]),
                str(a["duplicates_raw"]),
                f"{_fmt(a['not_enriched'])} / {_fmt(a['follow_ups'])}",
                recovery or "-",
            ]
        )
    lines += _table(header, rows)
    for name in f["scenarios"]:
        lines += [f"![{name}: throughput over time](fault-{name}.png)", ""]
    return lines


def summary(results: dict[str, Any]) -> str:
    lines = [
        "# Benchmark and fault-run results",
        "",
        "How to reproduce them and what each figure means: [bench/README.md](../README.md).",
        "",
    ]
    if "benchmark" in results:
        lines += _bench_md(results["benchmark"])
    if "faults" in results:
        lines += _faults_md(results["faults"])
    return "\n".join(lines)


def plot_latency(section: dict[str, Any], path: Path) -> None:
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
    series = dict(section["modes"])
    bare = section.get("references", {}).get("bare_starlette")
    if bare:
        series["bare Starlette"] = bare
    colors = plt.get_cmap("tab10")
    for ax, pct in zip(axes, ("p50", "p99"), strict=True):
        for index, (name, mode) in enumerate(series.items()):
            steps = [s for s in mode["rates"] if _sustained(s)]
            rates = [s["offered_rate"] for s in steps]
            color = colors(index % 10)
            ax.plot(
                rates,
                [s["ack_latency_ms"][pct] for s in steps],
                marker="o",
                color=color,
                label=name,
            )
            if pct == "p99":
                ax.plot(
                    rates,
                    [s["ack_latency_ms"]["p999"] for s in steps],
                    linestyle=":",
                    marker=".",
                    color=color,
                )
        ax.set_title(f"ack latency {pct}" + (" (dotted: p99.9)" if pct == "p99" else ""))
        ax.set_xlabel("offered callbacks/s (fixed arrival rate; sustained steps only)")
        ax.set_yscale("log")
        ax.grid(True, which="both", alpha=0.3)
    axes[0].set_ylabel("ms")
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_fault(name: str, run: dict[str, Any], path: Path) -> None:
    fig, ax = plt.subplots(figsize=(11, 3.6))
    series = run["per_second"]
    ax.plot(series["accepted"], label="answered 200 per second")
    ax.plot(series["published"], label="status events visible per second")
    if any(series.get("refused", [])):
        ax.plot(series["refused"], label="refused (non-200) per second", alpha=0.6)
    if any(series.get("enriched", [])):
        ax.plot(series["enriched"], label="follow-up *.enriched events per second", alpha=0.8)
    for label, at in run["marks"].items():
        ax.axvline(at, color="grey", linestyle="--", linewidth=0.8)
        ax.text(at, ax.get_ylim()[1] * 0.95, f" {label}", fontsize=7, va="top")
    ax.set_title(f"{name} ({run['log']} log, {run['rate']} callbacks/s offered)")
    ax.set_xlabel("seconds since the load started")
    ax.set_ylabel("per second")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def failures(section: dict[str, Any], key: str) -> list[str]:
    """What makes the command fail: lost or duplicated events (never timing)."""
    problems = []
    if key == "faults":
        for name, run in section["scenarios"].items():
            a = run["audit"]
            if a["missing"] or a["missing_raw"] or a["duplicates"]:
                problems.append(f"{name}: missing {a['missing']}, duplicates {a['duplicates']}")
            if a["follow_ups_missing"]:
                problems.append(f"{name}: {a['follow_ups_missing']} follow-ups never came")
    else:
        for name, mode in section["modes"].items():
            for s in [*mode["rates"], mode["saturation"]]:
                if s["missing"] or s["duplicates"]:
                    problems.append(
                        f"{name} {s['name']}: missing {s['missing']}, duplicates {s['duplicates']}"
                    )
    return problems
