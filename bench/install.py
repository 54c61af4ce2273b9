"""Install the load tool on demand: vegeta, built from its Go module into .cache/bin.

Why vegeta: the issue suggests k6, but k6 is AGPL-licensed and this project does not use
AGPL tools; vegeta (MIT) is a standard HTTP load tool with fixed arrival rates (an open
model: a late answer does not delay the next request) and per-request targets read
lazily from a JSON stream, so every request carries its own body and signature. The
build is `go install` from the Go module proxy, like helm and promtool (tools/ensure_tool.py).
"""

from __future__ import annotations

import sys
from pathlib import Path

from tools.ensure_tool import BIN_DIR, Built, GoTool, ToolError, ensure_go_tool

VEGETA = GoTool(
    name="vegeta",
    module="github.com/tsenart/vegeta/v12",
    package="github.com/tsenart/vegeta/v12",
    version="v12.13.0",
)


def ensure_vegeta(bin_dir: Path = BIN_DIR) -> Built:
    """The vegeta binary, built first if it is missing or another version."""
    return ensure_go_tool(VEGETA, bin_dir)


def main() -> int:
    try:
        print(ensure_vegeta().path)
    except ToolError as error:
        print(error, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
