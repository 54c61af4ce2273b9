"""schemas/ is usable on its own: no gateway, httpx or aiokafka behind its imports."""

from __future__ import annotations

import subprocess
import sys

MODULES = (
    "schemas.callbacks",
    "schemas.oc_api",
    "schemas.events",
    "schemas.compat",
    "schemas.asyncapi",
    "schemas.generate",
)


def test_schemas_import_without_the_gateway_or_its_clients() -> None:
    probe = (
        "import sys\n"
        f"for name in {MODULES!r}: __import__(name)\n"
        "banned = [m for m in sys.modules if m.split('.')[0] in "
        "('gateway', 'httpx', 'aiokafka', 'starlette', 'yaml')]\n"
        "print(','.join(sorted(banned)))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ""
