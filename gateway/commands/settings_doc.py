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


BEGIN = "<!-- settings:begin -->"
END = "<!-- settings:end -->"


def splice(document: str, table: str) -> str:
    """`document` with the text between the settings markers replaced by `table`."""
    head, found, rest = document.partition(BEGIN)
    if not found or END not in rest:
        raise ValueError(f"the document has no {BEGIN} ... {END} block")
    return head + BEGIN + "\n" + table + rest[rest.index(END) :]


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
        path.write_text(splice(path.read_text(), reference_markdown()))
        return 0

    parser.set_defaults(handler=run)
