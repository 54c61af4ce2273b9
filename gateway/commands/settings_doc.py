"""`gateway settings`: the configuration reference, generated from the settings model.

The README's reference table is this command's output (a test keeps them equal), so
the documentation cannot drift from the code.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from pydantic import SecretStr
from pydantic.fields import FieldInfo

from gateway.settings import Settings

_PREFIX = "GATEWAY_"


def _default(field: FieldInfo) -> str:
    if field.default_factory is not None:
        value: Any = field.default_factory()  # type: ignore[call-arg]
    else:
        value = field.default
    if isinstance(value, SecretStr):
        return "(secret, empty)"
    if isinstance(value, list):
        return "(empty)" if not value else ",".join(str(v) for v in value)
    if value is None or value == "":
        return "(empty)"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, Path):
        return str(value)
    return str(value)


def reference_markdown() -> str:
    """A markdown table of every setting: variable, default, meaning."""
    lines = ["| Variable | Default | Meaning |", "|---|---|---|"]
    for name, field in Settings.model_fields.items():
        meaning = (field.description or "").replace("|", "\\|")
        default = _default(field).replace("|", "\\|")
        lines.append(f"| `{_PREFIX}{name.upper()}` | `{default}` | {meaning} |")
    return "\n".join(lines) + "\n"


def metrics_markdown() -> str:
    """A markdown table of every metric the gateway exports."""
    from gateway.ops.metrics import Metrics

    metrics = Metrics()
    lines = ["| Metric | Type | Labels | Meaning |", "|---|---|---|---|"]
    for metric in metrics.registry.collect():
        name = metric.name + ("_total" if metric.type == "counter" else "")
        labels = ", ".join(f"`{label}`" for label in metrics.labels[metric.name]) or "-"
        lines.append(f"| `{name}` | {metric.type} | {labels} | {metric.documentation} |")
    return "\n".join(lines) + "\n"


BEGIN = "<!-- settings:begin -->"
END = "<!-- settings:end -->"
METRICS_BEGIN = "<!-- metrics:begin -->"
METRICS_END = "<!-- metrics:end -->"


def splice(document: str, table: str, begin: str = BEGIN, end: str = END) -> str:
    """`document` with the text between the `begin` and `end` markers replaced by `table`."""
    head, found, rest = document.partition(begin)
    if not found or end not in rest:
        raise ValueError(f"the document has no {begin} ... {end} block")
    return head + begin + "\n" + table + rest[rest.index(end) :]


def refresh(document: str) -> str:
    """`document` with both generated tables (settings, metrics) rewritten."""
    document = splice(document, reference_markdown())
    return splice(document, metrics_markdown(), METRICS_BEGIN, METRICS_END)


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser("settings", help="print the configuration reference")
    parser.add_argument(
        "--update", type=Path, metavar="FILE", help="rewrite FILE's settings block instead"
    )

    def run(args: argparse.Namespace) -> int:
        if args.update is None:
            sys.stdout.write(reference_markdown())
            return 0
        path: Path = args.update
        path.write_text(refresh(path.read_text()))
        return 0

    parser.set_defaults(handler=run)
