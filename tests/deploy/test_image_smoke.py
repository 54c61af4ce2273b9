"""The image's build stage replayed without Docker, and the result run the way the image runs it.

There is no Docker engine here, so this test does what the Dockerfile says with plain
processes: it copies the files the build stage COPYs into an empty context, runs the
stage's `uv sync` lines with the stage's environment (only the venv path moved into a
temporary directory) and the Makefile's uv, then starts ENTRYPOINT + CMD with the runtime
stage's environment, from the data directory, with nothing else on disk: the source is
gone, so the package must have been installed non-editable. The run takes a callback,
exports the documented metrics, writes only under the data directory, and exits 0 on
SIGTERM within the drain time. Two deviations from the image: the servers bind 127.0.0.1
(not 0.0.0.0) on free ports, and the process runs as the test's user.
"""

from __future__ import annotations

import json
import os
import re
import select
import shlex
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tools.ports import free_ports

from .chart import METRIC_NAMES, REPO
from .dockerfile import Stage, read_dockerfile

pytestmark = pytest.mark.slow

UV_DIR = REPO / ".cache" / "uv"  # where the Makefile installs its uv
SHUTDOWN_GRACE_S = 5.0
START_TIMEOUT_S = 60.0
PATH_TOKEN = "smoke-token"


def _uv_version() -> str:
    makefile = (REPO / "Makefile").read_text()
    (version,) = re.findall(r"^UV_VERSION := (\S+)$", makefile, flags=re.MULTILINE)
    return str(version)


def ensure_uv() -> Path:
    """The Makefile's uv (.cache/uv/bin/uv), installed from PyPI the same way if missing."""
    version = _uv_version()
    uv = UV_DIR / "bin" / "uv"
    if uv.exists():
        reported = subprocess.run([str(uv), "--version"], capture_output=True, text=True)
        if reported.stdout.split()[1:2] == [version]:
            return uv
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(UV_DIR)], check=True)
    pip = [str(UV_DIR / "bin" / "pip"), "install", "--quiet", "--disable-pip-version-check"]
    subprocess.run([*pip, f"uv=={version}"], check=True)
    return uv


def _copy(instruction_args: str, context: Path) -> None:
    *sources, dest = shlex.split(instruction_args)
    for source in sources:
        origin = REPO / source
        target = context / dest / source if dest.endswith("/") else context / dest
        if origin.is_dir():
            shutil.copytree(origin, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(origin, target)


def replay_build(build: Stage, context: Path, venv: Path) -> None:
    """COPY and `uv sync` of the build stage, in order, into `venv`."""
    uv = ensure_uv()
    base_python = (
        Path(sys.base_prefix) / "bin" / f"python{sys.version_info[0]}.{sys.version_info[1]}"
    )
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("UV_", "VIRTUAL_ENV", "GATEWAY_"))
    }
    env |= build.env() | {"UV_PROJECT_ENVIRONMENT": str(venv), "UV_PYTHON": str(base_python)}
    synced = 0
    for instruction in build.instructions:
        if instruction.keyword == "COPY":
            _copy(instruction.args, context)
        elif instruction.keyword == "RUN" and instruction.args.startswith("uv sync"):
            command = [str(uv), *shlex.split(instruction.args)[1:]]
            result = subprocess.run(command, cwd=context, env=env, capture_output=True, text=True)
            assert result.returncode == 0, f"{instruction.args}:\n{result.stderr}"
            synced += 1
    assert synced == 2, "the build stage syncs dependencies, then the project"


def _snapshot(root: Path) -> dict[str, tuple[int, int]]:
    return {
        str(path.relative_to(root)): (path.stat().st_mtime_ns, path.stat().st_size)
        for path in root.rglob("*")
        if path.is_file()
    }


@dataclass
class Running:
    process: subprocess.Popen[str]
    http: str
    ops: str
    log: list[str]


def _wait_started(process: subprocess.Popen[str], log: list[str]) -> None:
    """Read the JSON log until both servers listen and the gateway has started."""
    assert process.stdout is not None
    deadline = time.monotonic() + START_TIMEOUT_S
    listening = started = 0
    while listening < 2 or not started:
        remaining = deadline - time.monotonic()
        assert remaining > 0, "the gateway did not start:\n" + "".join(log)
        readable, _, _ = select.select([process.stdout], [], [], remaining)
        line = process.stdout.readline() if readable else ""
        assert line or process.poll() is None, "the gateway exited:\n" + "".join(log)
        log.append(line)
        listening += "Uvicorn running on" in line
        started += '"gateway started"' in line


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    _, stages = read_dockerfile()
    build, runtime = stages[0], stages[-1]
    root = tmp_path_factory.mktemp("image")
    context, venv, data, tmp = root / "src", root / "app" / ".venv", root / "data", root / "tmp"
    for folder in (context, data, tmp):
        folder.mkdir(parents=True)
    replay_build(build, context, venv)
    shutil.rmtree(context)  # the runtime stage has only the venv

    http_port, ops_port = free_ports(2)
    env = runtime.env() | {
        "PATH": runtime.env()["PATH"]
        .replace("/app/.venv", str(venv))
        .replace("$PATH", os.environ["PATH"]),
        "GATEWAY_DATA_DIR": str(data),
        "GATEWAY_HTTP_HOST": "127.0.0.1",
        "GATEWAY_HTTP_PORT": str(http_port),
        "GATEWAY_METRICS_PORT": str(ops_port),
        "GATEWAY_PATH_TOKENS": PATH_TOKEN,
        "GATEWAY_SHUTDOWN_GRACE_S": str(SHUTDOWN_GRACE_S),
        "HOME": str(data),
        "TMPDIR": str(tmp),
    }
    entrypoint = runtime.last("ENTRYPOINT").exec_form()
    cmd = runtime.last("CMD").exec_form()
    assert entrypoint is not None
    assert cmd is not None
    before = _snapshot(venv)
    process = subprocess.Popen(
        entrypoint + cmd,
        cwd=data,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    log: list[str] = []
    try:
        _wait_started(process, log)
        yield Running(process, f"http://127.0.0.1:{http_port}", f"http://127.0.0.1:{ops_port}", log)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()
    assert _snapshot(venv) == before, "the run wrote into the venv (read-only in the image)"
    assert not list(tmp.iterdir()), "the run left files in TMPDIR"


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def _post_callback(image: Running) -> None:
    body = (REPO / "tools" / "sample-callback.json").read_bytes()
    request = urllib.request.Request(
        f"{image.http}/webhooks/oc/{PATH_TOKEN}/outbound",
        data=body,
        headers={"content-type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200
        assert json.loads(response.read())["success"] is True


def _received(metrics: str) -> float:
    """The outbound callbacks counted (0 before the first, which creates the series)."""
    found = re.search(r'^gateway_callbacks_received_total\{kind="outbound"\} (\S+)$', metrics, re.M)
    return float(found.group(1)) if found else 0.0


def test_serves_health_and_takes_a_callback(image: Running) -> None:
    assert _get(f"{image.ops}/livez")[0] == 200
    assert _get(f"{image.ops}/readyz")[0] == 200
    _post_callback(image)


def test_exports_the_documented_metrics(image: Running) -> None:
    # Counts its own callback, so it holds whether or not the test above ran first.
    before = _received(_get(f"{image.ops}/metrics")[1])
    _post_callback(image)
    status, text = _get(f"{image.ops}/metrics")
    assert status == 200
    declared = set(re.findall(r"^# TYPE (\S+) \S+$", text, flags=re.MULTILINE))
    assert declared >= METRIC_NAMES, f"missing: {sorted(METRIC_NAMES - declared)}"
    assert _received(text) == before + 1
    assert re.search(r"^gateway_ready 1\.0$", text, re.M)


def test_sigterm_drains_and_exits_zero(image: Running) -> None:
    started = time.monotonic()
    image.process.send_signal(signal.SIGTERM)
    code = image.process.wait(timeout=SHUTDOWN_GRACE_S + 10)
    assert code == 0, "".join(image.log)
    assert time.monotonic() - started < SHUTDOWN_GRACE_S
