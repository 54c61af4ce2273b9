"""Run `gateway serve` (and friends) as real processes, to kill and restart them."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import httpx

from tools.ports import free_ports

GATEWAY = str(Path(sys.executable).parent / "gateway")


class GatewayProcess:
    """One `gateway serve` process; stdout/stderr go to a log file for post-mortems.

    Every one started is on `GatewayProcess.running` until it has exited, so a test that
    fails half-way does not leave its gateway behind (`kill_leftovers`, after each test).
    """

    running: ClassVar[set[GatewayProcess]] = set()

    def __init__(self, env: Mapping[str, str], log_path: Path) -> None:
        self.port, self.metrics_port = free_ports(2)
        self.env = {
            **os.environ,
            "GATEWAY_HTTP_PORT": str(self.port),
            "GATEWAY_METRICS_PORT": str(self.metrics_port),
            **env,
        }
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.metrics_port}"

    def start(self, timeout_s: float = 60.0) -> None:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [GATEWAY, "serve"], env=self.env, stdout=log, stderr=subprocess.STDOUT
            )
        GatewayProcess.running.add(self)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"gateway exited while starting:\n{self.log_tail()}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=1.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.kill()
        raise AssertionError(f"gateway not ready within {timeout_s} s:\n{self.log_tail()}")

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs, as in a crash."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        GatewayProcess.running.discard(self)

    def terminate(self, timeout_s: float = 60.0) -> int:
        """SIGTERM and wait for the exit code."""
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        try:
            code = self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"gateway ignored SIGTERM:\n{self.log_tail()}") from None
        GatewayProcess.running.discard(self)
        return code

    def log_tail(self, lines: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


def kill_leftovers() -> None:
    """SIGKILL every gateway a test started and left running (one that failed half-way)."""
    for gateway in list(GatewayProcess.running):
        gateway.kill()


def kafka_env(data_dir: Path, bootstrap: str, topics: Mapping[str, str]) -> dict[str, str]:
    """A gateway on Kafka with its own data directory, `topics` (tests.conftest.unique_topics)
    and path token `test-token`."""
    return {
        **{f"GATEWAY_{name.upper()}": value for name, value in topics.items()},
        "GATEWAY_DATA_DIR": str(data_dir),
        "GATEWAY_PATH_TOKENS": "test-token",
        "GATEWAY_KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "GATEWAY_KAFKA_PARTITIONS": "6",
    }


def log_lines(path: Path) -> list[dict[str, Any]]:
    """The JSON lines of a gateway's output; anything else (a traceback, a warning printed
    by Python) is kept as an `error` line so that it counts against the run."""
    lines = []
    for text in path.read_text(errors="replace").splitlines():
        try:
            lines.append(json.loads(text))
        except ValueError:
            lines.append({"level": "error", "event": text})
    return lines


def trouble(path: Path) -> list[str]:
    """ERROR lines and anything unclosed: what an operator should never see here."""
    return [
        line["event"][:300]
        for line in log_lines(path)
        if line.get("level") in ("error", "critical") or "Unclosed" in str(line.get("event"))
    ]
