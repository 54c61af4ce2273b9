"""Build the Go command-line tools the deployment checks need (helm, promtool).

Each tool is built from its Go module with `go install` into `<repo>/.cache/bin` (ignored
by git), and only when the binary there is missing or was built from another module
version. Standard library only, so it runs on a fresh machine before any virtual
environment exists. Usage: `python3 tools/ensure_tool.py helm promtool` prints one path a line.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BIN_DIR = REPO / ".cache" / "bin"


@dataclass(frozen=True)
class GoTool:
    """A binary built from `package` at `module`@`version` by `go install -tags ...`."""

    name: str
    module: str
    package: str
    version: str
    tags: tuple[str, ...] = ()


TOOLS: dict[str, GoTool] = {
    tool.name: tool
    for tool in (
        GoTool(
            name="helm",
            module="helm.sh/helm/v3",
            package="helm.sh/helm/v3/cmd/helm",
            version="v3.22.0",
        ),
        # Prometheus tags its Go module v0.<major minor>.<patch>: v0.316.0 is Prometheus
        # 3.16.0. remove_all_sd leaves out the cloud service-discovery plugins, which rule
        # checks never use; it cuts a cold build on 2 cores from about 7 to about 4 minutes.
        GoTool(
            name="promtool",
            module="github.com/prometheus/prometheus",
            package="github.com/prometheus/prometheus/cmd/promtool",
            version="v0.316.0",
            tags=("remove_all_sd",),
        ),
    )
}


class ToolError(RuntimeError):
    """The Go toolchain is missing or `go install` failed; the message says which."""


def go_command() -> str:
    # The official Go installation's place, for shells whose PATH lacks it.
    go = shutil.which("go") or shutil.which("go", path="/usr/local/go/bin")
    if go is None:
        raise ToolError("the Go toolchain (`go`) is not on PATH; it builds helm and promtool")
    return go


def built_version(go: str, binary: Path, module: str) -> str | None:
    """The version of `module` recorded in the binary's build information, if any."""
    if not binary.is_file():
        return None
    result = subprocess.run(
        [go, "version", "-m", str(binary)], capture_output=True, text=True, check=False
    )
    for line in result.stdout.splitlines():
        fields = line.split()
        # `go version -m` prints "\tmod\t<module>\t<version>\t<sum>" for the main module.
        if len(fields) >= 3 and fields[0] == "mod" and fields[1] == module:
            return fields[2]
    return None


@dataclass(frozen=True)
class Built:
    path: Path
    version: str
    build_s: float | None  # None: the binary was already there


def ensure_go_tool(tool: GoTool, bin_dir: Path = BIN_DIR) -> Built:
    """`tool`'s binary in `bin_dir`, built first if it is missing or another version."""
    go = go_command()
    binary = bin_dir / tool.name
    if built_version(go, binary, tool.module) == tool.version:
        return Built(binary, tool.version, None)
    bin_dir.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "GOBIN": str(bin_dir), "CGO_ENABLED": "0", "GOTOOLCHAIN": "local"}
    started = time.monotonic()
    print(f"building {tool.package}@{tool.version} into {bin_dir} ...", file=sys.stderr)
    tags = ["-tags", ",".join(tool.tags)] if tool.tags else []
    result = subprocess.run(
        [go, "install", *tags, f"{tool.package}@{tool.version}"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise ToolError(f"go install {tool.package}@{tool.version} failed:\n{result.stderr}")
    found = built_version(go, binary, tool.module)
    if found != tool.version:
        raise ToolError(f"{binary} reports {tool.module} {found}, expected {tool.version}")
    elapsed = time.monotonic() - started
    print(f"built {tool.name} in {elapsed:.0f} s", file=sys.stderr)
    return Built(binary, tool.version, elapsed)


def ensure(name: str, bin_dir: Path = BIN_DIR) -> Path:
    """Return the path of tool `name`, building it first if it is missing or outdated."""
    return ensure_go_tool(TOOLS[name], bin_dir).path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("tools", nargs="+", choices=sorted(TOOLS), metavar="TOOL")
    args = parser.parse_args(argv)
    try:
        for name in args.tools:
            print(ensure(name))
    except ToolError as error:
        print(error, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
