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

from bench.ab import BARE
from bench.stages import STAGES

TARGETS = {
    "ack_p99_ms_at_1000": 10.0,  # ingest alone (issue 13)
    "ack_p99_ms_at_1000_one_process": 25.0,  # ingest and processor together (issue 12)
    "throughput_share_of_http_ceiling": 0.35,  # ingest alone, one process (issue 13)
    "e2e_p99_ms_at_250": 250.0,
    "e2e_p99_ms_at_1000": 400.0,
    "cpu_s_per_1000": 1.0,  # end to end, all of a mode's processes
    "oc_calls_per_1000": 100.0,
    "rss_mb": 200.0,
    "overload_goodput_share": 0.9,
    "overload_accepted_p99_ms": 250.0,
    "overload_refused_p99_ms": 5.0,
}


def rebuild(results_dir: Path) -> None:
    """summary.md and the plots again from results.json (after a change to this module)."""
    results: dict[str, Any] = json.loads((results_dir / "results.json").read_text())
    for key in ("benchmark", "faults", "trace"):
        if key in results:
            update(results_dir, key, results[key])


def update(results_dir: Path, key: str, section: dict[str, Any]) -> dict[str, Any]:
    results_dir.mkdir(parents=True, exist_ok=True)
    path = results_dir / "results.json"
    results: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}
    if key == "benchmark":
        section = {**section, "headline": headline(section)}
        plot_latency(section, results_dir / "latency-vs-rate.png")
    elif key == "faults":
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


def _e2e_p99(mode: dict[str, Any], rate: int, ingest_only: bool) -> float | None:
    step = _step_at(mode, rate)
    if ingest_only or step is None or not _sustained(step):
        return None
    value: float = step["e2e_latency_ms"]["p99"]
    return value


def headline(section: dict[str, Any]) -> dict[str, Any]:
    """The figures the targets are about, per log, with ratios to the ceilings."""
    refs = section.get("references", {})
    bare = refs.get("bare_starlette", {}).get("saturation", {}).get("ok_per_s")
    broker = refs.get("kafka_producer_perf", {}).get("records_per_s")
    interleaved = refs.get("interleaved_share")
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
            "sustains_1000": bool(at_1000 and _sustained(at_1000) and at_1000.get("caught_up")),
            "e2e_p99_ms_at_250": _e2e_p99(mode, 250, ingest_only),
            "e2e_p99_ms_at_1000": _e2e_p99(mode, 1000, ingest_only),
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
        if interleaved and name == interleaved["mode"]:
            # Measured side by side with the bare app, not minutes apart from it.
            one_shot = out[name]["share_of_http_ceiling"]
            out[name]["share_of_http_ceiling_one_shot"] = one_shot
            out[name]["share_of_http_ceiling"] = _gateway_share(interleaved)
    return out


def _interleaved_gateway(interleaved: dict[str, Any]) -> dict[str, Any]:
    """The gateway's figures in the interleaved measurement (empty if it has none)."""
    results: dict[str, Any] = interleaved["results"]
    return next((r for name, r in results.items() if name != BARE), {})


def _gateway_share(interleaved: dict[str, Any]) -> float | None:
    """The gateway's share of the bare app in the interleaved measurement."""
    share: float | None = _interleaved_gateway(interleaved).get("share_of_bare_median")
    return share


def _interleaved_md(b: dict[str, Any]) -> list[str]:
    interleaved = b.get("references", {}).get("interleaved_share")
    if not interleaved:
        return []
    bare = interleaved["results"].get(BARE, {})
    gateway = _interleaved_gateway(interleaved)
    mode = interleaved["mode"]
    one_shot = b["headline"].get(mode, {}).get("share_of_http_ceiling_one_shot")
    apart = (
        f" (its saturation step above against the bare reference of this run, measured "
        f"minutes apart: {_fmt(one_shot, 3)})"
        if one_shot is not None
        else ""
    )
    return [
        f"Ingest alone on Kafka ({mode}) and bare Starlette, measured one after the other "
        f"in {interleaved['rounds']} rounds of {interleaved['seconds']:.0f} s with 64 "
        f"senders: {', '.join(_fmt(v, 0) for v in gateway.get('saturation_per_s', []))} "
        f"against {', '.join(_fmt(v, 0) for v in bare.get('saturation_per_s', []))} "
        f"answers/s; medians {_fmt(gateway.get('median_per_s'), 0)} and "
        f"{_fmt(bare.get('median_per_s'), 0)}/s, share "
        f"{_fmt(gateway.get('share_of_bare_median'), 3)}: the headline's "
        f"saturation / bare Starlette for {mode}{apart}.",
        "",
    ]


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


def _stages(step: dict[str, Any]) -> str:
    """A step's batch stages' p99, or "-" (ingest alone, or results from before them)."""
    found = step.get("processor_stages_ms") or {}
    if not found:
        return "-"
    return " / ".join(_fmt(found.get(stage, {}).get("p99_ms")) for stage in STAGES)


def _offered(step: dict[str, Any]) -> str:
    if step["offered_rate"] == 0:
        return "max (64 senders)"
    return _fmt(step["offered_rate"]) + ("" if _sustained(step) else " (not sustained)")


# (label, key, target for the gateway with its processor, for ingest alone, higher is
# better, the target as text); None: the figure does not apply.
_HEADLINE_ROWS: tuple[tuple[str, str, float | None, float | None, bool, str], ...] = (
    ("ack p99 at 1,000/s (ms)", "ack_p99_ms_at_1000", 25.0, 10.0, False, "< 25 / < 10 alone"),
    (
        "saturation / bare Starlette",
        "share_of_http_ceiling",
        None,
        0.35,
        True,
        ">= 0.35, ingest alone",
    ),
    ("end-to-end p99 at 250/s (ms)", "e2e_p99_ms_at_250", 250.0, None, False, "< 250"),
    ("end-to-end p99 at 1,000/s (ms)", "e2e_p99_ms_at_1000", 400.0, None, False, "< 400"),
    ("CPU s per 1,000 callbacks", "cpu_s_per_1000", 1.0, None, False, "<= 1.0, all processes"),
    ("OC calls per 1,000 callbacks", "oc_calls_per_1000", 100.0, None, False, "<= 100"),
    ("peak RSS at sustained rates (MB)", "peak_rss_mb", 200.0, 200.0, False, "< 200"),
)


def _cell(h: dict[str, Any], key: str, target: float | None, higher: bool) -> str:
    digits = 3 if "share" in key else (2 if key.startswith("cpu") else 1)
    value = h.get(key)
    if value is None and h.get("ingest_only") and key.startswith(("e2e", "oc_")):
        return "n/a"
    if target is None:
        return _fmt(value, digits)
    return f"{_fmt(value, digits)} ({_met(value, target, higher)})"


def _headline_md(h: dict[str, Any]) -> list[str]:
    modes = list(h)
    rows = []
    for label, key, one_process, alone, higher, text in _HEADLINE_ROWS:
        cells = []
        for m in modes:
            target = alone if h[m].get("ingest_only") else one_process
            split = m == "kafka-split"
            cells.append(_cell(h[m], key, None if split else target, higher))
        rows.append([label, *cells, text])
    rows.append(
        ["saturation (callbacks/s)", *(_fmt(h[m].get("saturation_per_s")) for m in modes), ""]
    )
    rows.append(
        [
            "sustains 1,000/s (and caught up)",
            *("yes" if h[m].get("sustains_1000") else "no" for m in modes),
            "yes, as deployed",
        ]
    )
    return _table(["figure", *(f"{m} log" if "-" not in m else m for m in modes), "target"], rows)


def _times(offered: float, capacity: float) -> str:
    """Offered load as a multiple of capacity; a run that measured none says so."""
    return f"{offered / capacity:.0f}x" if capacity > 0 else "no capacity measured"


def _overload_md(entries: list[dict[str, Any]]) -> list[str]:
    if not entries:
        return []
    rows = [
        [
            e["mode"],
            f"{_fmt(e['offered_per_s'])} ({_times(e['offered_per_s'], e['capacity_per_s'])})",
            _fmt(e.get("sent_per_s")),
            _fmt(e["capacity_per_s"]),
            f"{_fmt(e['goodput_per_s'])} "
            f"({_met(e['goodput_share_of_capacity'], TARGETS['overload_goodput_share'], True)}: "
            f"{_fmt(e['goodput_share_of_capacity'], 2)})",
            f"{_fmt(e['accepted_ack_p99_ms'])} "
            f"({_met(e['accepted_ack_p99_ms'], TARGETS['overload_accepted_p99_ms'])})",
            f"{_fmt(e['refused_p99_ms'])} "
            f"({_met(e['refused_p99_ms'], TARGETS['overload_refused_p99_ms'])})",
            ", ".join(f"{code}: {n:,}" for code, n in e["codes"].items()),
        ]
        for e in entries
    ]
    header = [
        "mode",
        "offered/s",
        "sent/s",
        "capacity/s",
        "answered 200/s (>= 0.9 of capacity)",
        "200s' ack p99 (ms, < 250)",
        "refusals' p99 (ms, < 5)",
        "answers",
    ]
    caps = sorted({e["sender_max_in_flight"] for e in entries if e.get("sender_max_in_flight")})
    sender = (
        f", from a sender with at most {', '.join(f'{c:,}' for c in caps)} requests in flight"
        if caps
        else ""
    )
    return [
        "### Overload",
        "",
        "Offered twice and four times the capacity the mode showed (its best answers 200 per "
        f"second in any step), at a fixed rate{sender}, with the default settings; sent/s is "
        "what the load tool managed to send.",
        "",
        *_table(header, rows),
    ]


def _backlog_md(b: dict[str, Any] | None) -> list[str]:
    if not b:
        return []
    mix = ", ".join(f"{kind}: {n:,}" for kind, n in sorted(b["enrichment"].items()))
    row = [
        b["mode"],
        f"{b['accepted']:,} at {_fmt(b['offered_per_s'])}/s",
        f"{_fmt(b['drain_s'])} (start-up {_fmt(b['processor_start_s'])})",
        _fmt(b["drained_per_s"]),
        _fmt(b["oc_calls_per_1000"]),
        mix or "-",
        f"{b['missing']} / {b['duplicates']}",
    ]
    header = [
        "mode",
        "backlog",
        "worked off in (s)",
        "events/s",
        "OC calls per 1,000",
        "enrichment",
        "missing / duplicated",
    ]
    return [
        "### Backlog",
        "",
        "Ingest alone took the backlog while no processor ran; then a processor started and "
        "worked it off (time from its start until a read_committed reader had every event)."
        + ("" if b["drained"] else " **It did not finish within the catch-up timeout.**"),
        "",
        *_table(header, [row]),
    ]


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
        *_interleaved_md(b),
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
        "batch stages p99 (ms): queued / enrich / build / commit",
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
                _stages(s),
            ]
            for s in [*mode["rates"], mode["saturation"], *mode.get("overload_steps", [])]
        ]
        lines += [f"### {name} log", "", *_table(header, rows)]
    lines += _overload_md(b.get("overload", []))
    lines += _backlog_md(b.get("backlog"))
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
        "out of order (typed / raw)",
        "gateway log (Unclosed / ERROR lines)",
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
                _order(a),
                _log_cell(run.get("gateway_log")),
                recovery or "-",
            ]
        )
    lines += _table(header, rows)
    lines += _duplicates_md(f["scenarios"])
    for name, run in f["scenarios"].items():
        if "replicas" in run:
            lines += _replicas_md(name, run)
    for name in f["scenarios"]:
        lines += [f"![{name}: throughput over time](fault-{name}.png)", ""]
    return lines


def _log_cell(found: dict[str, int] | None) -> str:
    if found is None:
        return "-"  # a run from before the gateway's log was read
    return f"{found['unclosed']} / {found['error_lines']}"


def _duplicates_md(scenarios: dict[str, Any]) -> list[str]:
    """Where each duplicated typed event's copies are, for the runs that had any."""
    lines: list[str] = []
    for name, run in scenarios.items():
        for dup in run.get("duplicates_seen") or []:
            copies = ", ".join(f"{c['where']} at {_fmt(c['at_s'])} s" for c in dup["copies"])
            lines.append(f"- {name}: `{dup['ce_type']}` {dup['ce_id']} on {dup['topic']}: {copies}")
    if not lines:
        return []
    return ["", "Typed events seen more than once (first ten of each run):", "", *lines, ""]


def _order(a: dict[str, Any]) -> str:
    if "order_checked" not in a:
        return "-"  # a run from before the order check
    return (
        f"{a['order_violations']} / {a['order_violations_raw']} "
        f"of {_fmt(a['order_checked'])} checked"
    )


def _trend(figures: dict[str, Any], unit: str) -> str:
    if figures["first"] is None:
        return "-"
    per_min = figures["slope_per_min"]
    slope_text = "" if per_min is None else f" ({per_min:+.2f}{unit}/min)"
    return f"{_fmt(figures['first'])} → {_fmt(figures['last'])}{slope_text}"


def _replicas_md(name: str, run: dict[str, Any]) -> list[str]:
    plan = run["plan"]
    lines = [
        f"### {name}: the replicas",
        "",
        f"{plan['replicas']} replicas at {run['rate']} callbacks/s for "
        f"{run['duration_s']:.0f} s through a round-robin balancer (one connection per "
        f"callback): a rolling restart at {plan['rolling_restart_at']:.0%} of the run (a new "
        f"replica ready, then an old one SIGTERMed), a SIGKILL at {plan['sigkill_at']:.0%} "
        f"(restarted in place), a scale-up at {plan['scale_up_at']:.0%} and a scale-down to "
        f"{plan['replicas'] - 1} at {plan['scale_down_at']:.0%}. RSS and open file "
        "descriptors sampled every second from /proc; producers and partitions from each "
        "replica's /metrics (last sample).",
        "",
    ]
    header = [
        "replica",
        "lived (s)",
        "end",
        "exit",
        "connections",
        "RSS MB first → last (slope)",
        "open fds first → last (slope)",
        "producers / partitions",
        "Unclosed",
        "ERROR lines",
    ]
    connections = run.get("balancer", {}).get("connections", {})
    rows = []
    for r in run["replicas"]:
        ended = r["ended_s"] if r["ended_s"] is not None else run["duration_s"]
        restarts = f", restarted {r['restarts']}x" if r["restarts"] else ""
        rows.append(
            [
                r["name"],
                f"{_fmt(r['started_s'])} to {_fmt(ended)}",
                r["end"] + restarts,
                _fmt(r["exit_code"]),
                _fmt(connections.get(r["name"])),
                _trend(r["rss_mb"], ""),
                _trend(r["fds"], ""),
                f"{_fmt(r['producers_last'], 0)} / {_fmt(r['partitions_last'], 0)}",
                str(r["unclosed"]),
                str(r["error_lines"]),
            ]
        )
    return [*lines, *_table(header, rows)]


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
    if "trace" in results:
        lines += _trace_md(results["trace"])
    return "\n".join(lines)


def _trace_md(t: dict[str, Any]) -> list[str]:
    filled = t["filled"]
    shared = (
        " (machine shared with other work)" if t["machine"].get("shared_with_other_work") else ""
    )
    lines = [
        "## `gateway trace`: one order among the raw records",
        "",
        f"Run {t['generated_at']}{shared}: {filled['raw_records']:,} raw records and "
        f"{filled['typed_records']:,} typed events over {t['plan']['window_days']:g} days, "
        f"{t['plan']['partitions']} partitions (filled in {filled['seconds']} s). Each trace "
        f"is a new `gateway trace ORDER --json` process, {t['plan']['repeats']} times; "
        f"target under {t['target_s']:g} s.",
        "",
    ]
    rows = []
    for name, run in t["traces"].items():
        rows.append(
            [
                name,
                run["entity"],
                f"{run['raw_partition_records']:,}",
                f"{run['deliveries']} / {run['events_found']}",
                str(len(run["problems"])),
                "yes" if run["correct"] else "**no**",
                f"{run['wall_s']['median']:.2f}",
                f"{run['wall_s']['max']:.2f} ({_met(run['wall_s']['max'], t['target_s'])})",
                f"{run['in_process_s']['median']:.2f}",
            ]
        )
    lines += _table(
        [
            "order",
            "entity",
            "records in its raw partition",
            "deliveries / events found",
            "problems",
            "right story",
            "wall s (median)",
            "wall s (max)",
            "inside the process s",
        ],
        rows,
    )
    return [*lines, ""]


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
    replicas = run.get("replicas", [])
    rows = 3 if replicas else 1
    fig, axes = plt.subplots(rows, 1, figsize=(11, 3.6 * rows), sharex=True, squeeze=False)
    ax = axes[0][0]
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
    ax.set_ylabel("per second")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    ax.grid(True, alpha=0.3)
    panels = (("fds", "open fds"), ("rss_mb", "RSS (MB)")) if replicas else ()
    for row, (key, label) in enumerate(panels, 1):
        panel = axes[row][0]
        for replica in replicas:
            panel.plot(replica["series"]["t"], replica["series"][key], label=replica["name"])
        panel.set_ylabel(f"{label} per replica")
        panel.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
        panel.grid(True, alpha=0.3)
    axes[-1][0].set_xlabel("seconds since the load started")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def failures(section: dict[str, Any], key: str) -> list[str]:
    """What makes the command fail: lost or duplicated events (never timing)."""
    problems = []
    if key == "trace":
        return [
            f"trace {name}: the story is not the one written ({run['outcomes']}, {run['problems']})"
            for name, run in section["traces"].items()
            if not run["correct"]
        ]
    if key == "faults":
        for name, run in section["scenarios"].items():
            a = run["audit"]
            if a["missing"] or a["missing_raw"] or a["duplicates"]:
                problems.append(f"{name}: missing {a['missing']}, duplicates {a['duplicates']}")
            if a["follow_ups_missing"]:
                problems.append(f"{name}: {a['follow_ups_missing']} follow-ups never came")
            if a.get("order_violations") or a.get("order_violations_raw"):
                problems.append(
                    f"{name}: {a['order_violations']} events and {a['order_violations_raw']} "
                    "raw records out of their entity's order"
                )
            problems += _replica_problems(name, run.get("replicas", []))
    else:
        for name, mode in section["modes"].items():
            for s in [*mode["rates"], mode["saturation"], *mode.get("overload_steps", [])]:
                if s["missing"] or s["duplicates"]:
                    problems.append(
                        f"{name} {s['name']}: missing {s['missing']}, duplicates {s['duplicates']}"
                    )
    return problems


def _replica_problems(name: str, replicas: list[dict[str, Any]]) -> list[str]:
    """Leaks and unclean exits of a churn run's replicas."""
    problems = []
    for r in replicas:
        if r["unclosed"]:
            problems.append(f"{name}: {r['name']} logged {r['unclosed']} Unclosed warnings")
        if r["exit_code"] != 0:  # every replica ends with SIGTERM (a SIGKILLed one restarts)
            problems.append(f"{name}: {r['name']} exited {r['exit_code']} after SIGTERM")
        at_end = r["end"] == "end of run"
        if at_end and r["producers_last"] != r["partitions_last"]:
            problems.append(
                f"{name}: {r['name']} held {r['producers_last']} producers for "
                f"{r['partitions_last']} partitions"
            )
    return problems
