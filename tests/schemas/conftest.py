"""Fixtures of the schema checks: the official AsyncAPI parser, installed on first use.

tools/asyncapi/ holds a package.json and package-lock.json pinning @asyncapi/parser; the
first session that needs it runs `npm ci` there (node_modules/ is ignored by git).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
ASYNCAPI_TOOL = REPO / "tools" / "asyncapi"
NPM_CI_TIMEOUT_S = 600


@pytest.fixture(scope="session")
def node() -> str:
    found = shutil.which("node")
    if found is None:
        pytest.fail("node (Node.js 20+) is not on the PATH; the AsyncAPI check needs it")
    return found


@pytest.fixture(scope="session")
def asyncapi_validator(node: str) -> list[str]:
    """The command that validates an AsyncAPI document: append the document's path."""
    if not (ASYNCAPI_TOOL / "node_modules" / "@asyncapi" / "parser").is_dir():
        npm = shutil.which("npm")
        if npm is None:
            pytest.fail("npm is not on the PATH; cannot install @asyncapi/parser")
        # --ignore-scripts: the parser needs no install scripts (and one dependency's
        # postinstall only reports usage analytics).
        result = subprocess.run(
            [npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund"],
            cwd=ASYNCAPI_TOOL,
            capture_output=True,
            text=True,
            timeout=NPM_CI_TIMEOUT_S,
            env={**os.environ, "SCARF_ANALYTICS": "false"},
            check=False,
        )
        if result.returncode != 0:
            pytest.fail(f"npm ci in {ASYNCAPI_TOOL} failed:\n{result.stdout}\n{result.stderr}")
    return [node, str(ASYNCAPI_TOOL / "validate.mjs")]
