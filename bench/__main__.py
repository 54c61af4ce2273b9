"""python -m bench {bench,faults,trace,ab,profile,report,install}: see bench/README.md."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

from bench import ab, benchmark, faults, profile, report
from bench import trace as trace_bench
from bench.disk import can_mount, in_own_namespaces
from bench.install import ensure_vegeta
from bench.machine import describe
from bench.services import REPO

RESULTS = REPO / "bench" / "results"
OUT = REPO / "bench" / "out"


def _run_dir(kind: str) -> Path:
    path = OUT / f"{time.strftime('%Y%m%d-%H%M%S')}-{kind}"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _header(shared: bool) -> dict[str, Any]:
    installed = ensure_vegeta()
    return {
        "generated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {**describe(), "shared_with_other_work": shared},
        "load_tool": {
            "name": "vegeta",
            "version": installed.version,
            "built_now_s": None if installed.build_s is None else round(installed.build_s, 1),
            "path": str(installed.path.relative_to(REPO)),
        },
    }


def _plan(args: argparse.Namespace) -> benchmark.Plan:
    chosen: dict[str, Any] = {
        "modes": tuple(args.modes.split(",")),
        "rates": tuple(int(r) for r in args.rates.split(",")),
        "references": not args.no_references,
        "gateway_env": tuple(tuple(kv.split("=", 1)) for kv in args.gateway_env),
        "backlog_callbacks": args.backlog,
    }
    if args.quick:
        chosen |= {
            "step_s": 6.0,
            "saturation_s": 6.0,
            "bare_step_s": 3.0,
            "warmup_s": 2.0,
            "producer_perf_records": 20_000,
            "broker_warmup_records": 20_000,
            "overload_s": 5.0,
            "backlog_callbacks": min(args.backlog, 6_000),
        }
    return benchmark.Plan(**chosen)


def _exit_on_sigterm() -> None:
    """SIGTERM (`timeout`, `kill`) unwinds like Ctrl-C, so every service the run started
    is stopped by its `finally` instead of outliving the run."""

    def on_sigterm(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_sigterm)


def main(argv: list[str] | None = None) -> int:
    _exit_on_sigterm()
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    run_bench = sub.add_parser("bench", help="throughput, latency, OC calls, CPU, memory")
    run_bench.add_argument("--quick", action="store_true", help="short steps (development)")
    run_bench.add_argument(
        "--modes",
        default=",".join(benchmark.ALL_MODES),
        help=f"comma-separated, of {', '.join(benchmark.ALL_MODES)}",
    )
    run_bench.add_argument("--rates", default="250,500,1000,2000", help="fixed arrival rates")
    run_bench.add_argument("--no-references", action="store_true", help="skip the ceilings")
    run_bench.add_argument(
        "--backlog",
        type=int,
        default=benchmark.Plan.backlog_callbacks,
        help="callbacks of the backlog step (0: skip it)",
    )
    run_bench.add_argument(
        "--gateway-env",
        action="append",
        default=[],
        metavar="GATEWAY_X=V",
        help="an extra setting for the gateways (experiments)",
    )
    run_faults = sub.add_parser("faults", help="fault runs with an independent audit")
    run_faults.add_argument("--only", action="append", choices=faults.NAMES)
    run_faults.add_argument("--quick", action="store_true", help="short runs (development)")
    run_faults.add_argument(
        "--churn-seconds",
        type=float,
        default=None,
        help="length of the churn run (default 300, 75 with --quick)",
    )
    for command in (run_bench, run_faults):
        command.add_argument("--results", type=Path, default=RESULTS)
        command.add_argument("--shared", action="store_true", help="note: machine was shared")
    run_trace = sub.add_parser("trace", help="gateway trace for one order among 1,000,000 records")
    run_trace.add_argument("--records", type=int, default=trace_bench.Plan.records)
    run_trace.add_argument("--partitions", type=int, default=trace_bench.Plan.partitions)
    run_trace.add_argument("--repeats", type=int, default=trace_bench.Plan.repeats)
    run_trace.add_argument("--results", type=Path, default=RESULTS)
    run_trace.add_argument("--shared", action="store_true", help="note: machine was shared")
    sub.add_parser("install", help="build the load tool (vegeta) if needed")
    rebuild = sub.add_parser("report", help="rebuild summary.md and the plots from results.json")
    rebuild.add_argument("--results", type=Path, default=RESULTS)
    run_profile = sub.add_parser("profile", help="the gateway under pyinstrument, under load")
    run_profile.add_argument(
        "--log", choices=(*benchmark.MODES, *benchmark.INGEST_ONLY), default="kafka"
    )
    run_profile.add_argument("--rate", type=int, default=800)
    run_profile.add_argument("--seconds", type=float, default=15.0)
    run_ab = sub.add_parser("ab", help="ingest saturation of commits, interleaved")
    run_ab.add_argument("--rev", action="append", required=True, help="a commit ('.': the tree)")
    run_ab.add_argument("--rounds", type=int, default=ab.Plan.rounds)
    run_ab.add_argument("--seconds", type=float, default=ab.Plan.seconds)
    run_ab.add_argument("--mode", choices=("kafka-ingest", "embedded-ingest"), default=ab.Plan.mode)
    args = parser.parse_args(argv)

    if args.command == "ab":
        out = _run_dir("ab")
        plan = ab.Plan(tuple(args.rev), args.rounds, args.seconds, args.mode)
        figures = asyncio.run(ab.run(plan, out, ensure_vegeta().path))
        (out / "ab.json").write_text(json.dumps(figures, indent=2))
        print(json.dumps(figures, indent=2))
        return 0
    if args.command == "report":
        report.rebuild(args.results)
        print(f"results: {args.results / 'summary.md'}")
        return 0
    if args.command == "install":
        installed = ensure_vegeta()
        print(installed.path)
        return 0
    if args.command == "profile":
        out = _run_dir("profile")
        figures = asyncio.run(
            profile.run(args.log, args.rate, args.seconds, out, ensure_vegeta().path)
        )
        print(json.dumps(figures, indent=2))
        return 0
    if args.command == "trace":
        return _trace(args)
    if args.command == "faults":
        names = args.only or faults.NAMES
        disk = any(n in faults.SCENARIOS and faults.SCENARIOS[n].disk_bytes for n in names)
        if disk and not can_mount():
            # The disk-full run mounts a tmpfs: as root of namespaces of our own.
            argv = in_own_namespaces(["-m", "bench", *(sys.argv[1:] if argv is None else argv)])
            os.execvp(argv[0], argv)
    header = _header(args.shared)
    out = _run_dir(args.command)
    if args.command == "bench":
        section: dict[str, Any] = asyncio.run(benchmark.run(_plan(args), out, header_tool(header)))
        key = "benchmark"
    else:
        section = asyncio.run(
            faults.run(
                names,
                out,
                header_tool(header),
                quick=args.quick,
                churn_seconds=args.churn_seconds,
            )
        )
        key = "faults"
    section = {**header, **section, "run_dir": str(out.relative_to(REPO))}
    (out / f"{key}.json").write_text(json.dumps(section, indent=2))
    report.update(args.results, key, section)
    print(f"results: {args.results / 'summary.md'}")
    failed = report.failures(section, key)
    for line in failed:
        print(f"FAILED: {line}", file=sys.stderr)
    return 1 if failed else 0


def _trace(args: argparse.Namespace) -> int:
    plan = trace_bench.Plan(records=args.records, partitions=args.partitions, repeats=args.repeats)
    out = _run_dir("trace")
    section: dict[str, Any] = {
        "generated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {**describe(), "shared_with_other_work": args.shared},
        **asyncio.run(trace_bench.run(plan, out)),
        "run_dir": str(out.relative_to(REPO)),
    }
    (out / "trace.json").write_text(json.dumps(section, indent=2))
    report.update(args.results, "trace", section)
    print(f"results: {args.results / 'summary.md'}")
    failed = report.failures(section, "trace")
    for line in failed:
        print(f"FAILED: {line}", file=sys.stderr)
    return 1 if failed else 0


def header_tool(header: dict[str, Any]) -> Path:
    return REPO / str(header["load_tool"]["path"])


if __name__ == "__main__":
    sys.exit(main())
