"""Install the load tool on demand: vegeta, built from its Go module into .cache/bin.

Why vegeta: the issue suggests k6, but k6 is AGPL-licensed and this project does not use
AGPL tools; vegeta (MIT) is a standard HTTP load tool with fixed arrival rates (an open
model: a late answer does not delay the next request) and per-request targets read
lazily from a JSON stream, so every request carries its own body and signature. The
build is `go install` from the Go module proxy, like helm and promtool (tools/ensure_tool.py).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from tools.ensure_tool import BIN_DIR, GoTool, ToolError, built_version, go_command

VEGETA = GoTool(
    name="vegeta",
    module="github.com/tsenart/vegeta/v12",
    package="github.com/tsenart/vegeta/v12",
    version="v12.13.0",
)


@dataclass(frozen=True, slots=True)
class Installed:
    path: Path
    version: str
    build_s: float | None  # None: it was already there


def ensure_vegeta(bin_dir: Path = BIN_DIR) -> Installed:
    """The vegeta binary, built first if it is missing or another version."""
    tool = VEGETA
    go = go_command()
    binary = bin_dir / tool.name
    if built_version(go, binary, tool.module) == tool.version:
        return Installed(binary, tool.version, None)
    bin_dir.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "GOBIN": str(bin_dir), "CGO_ENABLED": "0", "GOTOOLCHAIN": "local"}
    print(f"building {tool.package}@{tool.version} into {bin_dir} ...", file=sys.stderr)
    started = time.monotonic()
    result = subprocess.run(
        [go, "install", f"{tool.package}@{tool.version}"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise ToolError(f"go install {tool.package}@{tool.version} failed:\n{result.stderr}")
    elapsed = time.monotonic() - started
    if built_version(go, binary, tool.module) != tool.version:
        raise ToolError(f"{binary} does not report {tool.module} {tool.version}")
    print(f"built vegeta in {elapsed:.0f} s", file=sys.stderr)
    return Installed(binary, tool.version, elapsed)


def main() -> int:
    try:
        print(ensure_vegeta().path)
    except ToolError as error:
        print(error, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
