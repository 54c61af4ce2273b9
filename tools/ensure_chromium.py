"""Install Debian's Chromium and ChromeDriver when they are missing (the console's browser test).

The browser test drives the system browser (`/usr/bin/chromium`) through the system
ChromeDriver (`/usr/bin/chromedriver`), both from Debian's packages `chromium` and
`chromium-driver`; nothing downloads a browser of its own. When either is missing this
runs `apt-get update` once and `apt-get install -y chromium chromium-driver`, which needs
root (CI runs as root with Debian's archive reachable). Standard library only.
Usage: `python3 tools/ensure_chromium.py` prints the two paths.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
PACKAGES = ("chromium", "chromium-driver")
_APT_TIMEOUT_S = 900


class ChromiumError(RuntimeError):
    """Chromium is missing and could not be installed; the message says why."""


def _installed() -> bool:
    return CHROMIUM.is_file() and CHROMEDRIVER.is_file()


def _apt(*args: str) -> None:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    result = subprocess.run(
        ["apt-get", *args],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=_APT_TIMEOUT_S,
    )
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).splitlines()[-20:])
        raise ChromiumError(f"apt-get {' '.join(args)} failed ({result.returncode}):\n{tail}")


def ensure_chromium() -> tuple[Path, Path]:
    """(chromium, chromedriver), installing Debian's packages first if needed."""
    if _installed():
        return CHROMIUM, CHROMEDRIVER
    if shutil.which("apt-get") is None:
        raise ChromiumError(
            "Chromium is not installed and this system has no apt-get: install Debian's "
            f"{' and '.join(PACKAGES)} packages (or equivalents at {CHROMIUM} and {CHROMEDRIVER})"
        )
    if os.geteuid() != 0:
        raise ChromiumError(
            f"Chromium is not installed; run as root: apt-get install -y {' '.join(PACKAGES)}"
        )
    _apt("update")
    _apt("install", "-y", "--no-install-recommends", *PACKAGES)
    if not _installed():
        raise ChromiumError(
            f"apt-get installed {PACKAGES} but {CHROMIUM} or {CHROMEDRIVER} is missing"
        )
    return CHROMIUM, CHROMEDRIVER


def main() -> int:
    try:
        for path in ensure_chromium():
            print(path)
    except ChromiumError as exc:
        print(exc, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
