"""The processes a benchmark runs: the OC simulator, the gateway, the bare Starlette app.

Each runs in its own session with its output in a log file under the run directory, on
127.0.0.1 and free ports. Readiness is polled with a deadline. `stop()` sends SIGTERM
(then SIGKILL after a grace period); `kill()` is SIGKILL, as a crash.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tools.ports import free_port, free_ports

REPO = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
CLIENT_KEY = "bench-client-key"
SECRET_KEY = "bench-secret-key"
REFRESH_TOKEN = "sim-refresh-token"


class ServiceError(RuntimeError):
    """A process did not start or become ready; the message carries its log tail."""


def wait_until(probe_url: str, timeout_s: float, process: subprocess.Popen[bytes]) -> bool:
    """Poll `probe_url` until it answers 200; False if the process exits or time runs out."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(probe_url, timeout=1.0).status_code == 200:
                return True
        time.sleep(0.05)
    return False


@dataclass
class Service:
    name: str
    argv: Sequence[str]
    env: Mapping[str, str]
    log_path: Path
    ready_url: str
    process: subprocess.Popen[bytes] | None = None
    repo: Path = REPO
    """The checkout whose code runs (another one's, for an A/B comparison)."""

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self, timeout_s: float = 60.0) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                list(self.argv),
                # The code of the tree this harness sits in, also when that is a git
                # worktree and the virtual environment's editable install points elsewhere.
                env={**os.environ, "PYTHONPATH": str(self.repo), **self.env},
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                cwd=self.repo,
            )
        if not wait_until(self.ready_url, timeout_s, self.process):
            self.kill()
            raise ServiceError(f"{self.name} did not become ready:\n{self.log_tail()}")

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def stop(self, timeout_s: float = 30.0) -> int | None:
        if self.process is None or self.process.poll() is not None:
            return None if self.process is None else self.process.returncode
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.kill()
            return None

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


def simulator(run_dir: Path, seed: int, latency_ms: float) -> tuple[Service, str]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    service = Service(
        "simulator",
        [
            str(VENV_BIN / "gateway"),
            "simulate",
            "serve",
            "--port",
            str(port),
            "--seed",
            str(seed),
            "--latency-ms",
            str(latency_ms),
        ],
        {"GATEWAY_OC_CLIENT_KEY": CLIENT_KEY, "GATEWAY_OC_SECRET_KEY": SECRET_KEY},
        run_dir / "simulator.log",
        f"{url}/_sim/stats",
    )
    return service, url


def topics_env(suffix: str) -> dict[str, str]:
    """Topic names and consumer group of their own, so each run starts from empty topics."""
    names = ("raw", "outbound", "returns", "inventory", "quarantine", "dlq", "state")
    env = {f"GATEWAY_TOPIC_{name.upper()}": f"bench.{suffix}.{name}" for name in names}
    env["GATEWAY_KAFKA_CONSUMER_GROUP"] = f"bench.{suffix}.processor"
    return env


@dataclass
class GatewayConfig:
    data_dir: Path
    suffix: str
    bootstrap: str | None = None
    oc_url: str | None = None
    extra: dict[str, str] = field(default_factory=dict)

    def env(self, port: int, metrics_port: int) -> dict[str, str]:
        env = {
            "GATEWAY_HTTP_PORT": str(port),
            "GATEWAY_METRICS_PORT": str(metrics_port),
            "GATEWAY_DATA_DIR": str(self.data_dir),
            "GATEWAY_INSTANCE_ID": f"bench-{self.suffix}",
            "GATEWAY_OC_CLIENT_KEY": CLIENT_KEY,
            "GATEWAY_OC_SECRET_KEY": SECRET_KEY,
            # One load generator is one source address: lift the per-source limit that
            # would otherwise answer 429 above 200 callbacks/s.
            "GATEWAY_RATE_LIMIT_PER_SOURCE": "1000000",
            "GATEWAY_RATE_LIMIT_BURST": "1000000",
            "GATEWAY_KAFKA_BOOTSTRAP_SERVERS": self.bootstrap or "",
            # The harness takes its callbacks from the simulator before sending them, so
            # the simulated OC is ahead of its callbacks; reconciliation (polling OC for
            # changes no callback reported) would race the callbacks still to come. It is
            # a safety net for lost callbacks, not part of the measured path: off here
            # (--gateway-env GATEWAY_RECONCILE_ENABLED=true turns it on).
            "GATEWAY_RECONCILE_ENABLED": "false",
            **topics_env(self.suffix),
        }
        if self.oc_url:
            env["GATEWAY_OC_BASE_URL"] = self.oc_url
            env["GATEWAY_OC_REFRESH_TOKEN"] = REFRESH_TOKEN
        env.update(self.extra)
        return env


def split_configs(config: GatewayConfig) -> tuple[GatewayConfig, GatewayConfig]:
    """The ingest-only and processor-only configurations of one split deployment."""
    ingest = GatewayConfig(
        config.data_dir / "ingest",
        config.suffix,
        config.bootstrap,
        config.oc_url,
        {
            **config.extra,
            "GATEWAY_PROCESSOR_ENABLED": "false",
            "GATEWAY_INSTANCE_ID": "bench-ingest",
        },
    )
    processor = GatewayConfig(
        config.data_dir / "processor",
        config.suffix,
        config.bootstrap,
        config.oc_url,
        {
            **config.extra,
            "GATEWAY_INGEST_ENABLED": "false",
            "GATEWAY_INSTANCE_ID": "bench-processor",
        },
    )
    return ingest, processor


class Gateway(Service):
    """`gateway serve` with a config; keeps its ports across restarts."""

    def __init__(
        self,
        config: GatewayConfig,
        log_path: Path,
        profile: Path | None = None,
        repo: Path = REPO,
    ) -> None:
        self.config = config
        self.port, self.metrics_port = free_ports(2)
        argv = [str(VENV_BIN / "gateway"), "serve"]
        if profile is not None:
            # pyinstrument samples the whole process and writes its report at exit.
            argv = [
                *(str(VENV_BIN / "python"), "-m", "pyinstrument", "-r", "text"),
                *("-o", str(profile), "-m", "gateway.cli", "serve"),
            ]
        super().__init__(
            "gateway",
            argv,
            config.env(self.port, self.metrics_port),
            log_path,
            f"http://127.0.0.1:{self.port}/readyz",
            repo=repo,
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.metrics_port}/metrics"


def bare_app(run_dir: Path) -> Service:
    """bench/bare_app.py on the gateway's server stack: the HTTP ceiling."""
    port = free_port()
    return Service(
        "bare-starlette",
        [
            str(VENV_BIN / "uvicorn"),
            "bench.bare_app:app",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--http",
            "httptools",
            "--loop",
            "uvloop",
            "--no-access-log",
            "--log-level",
            "warning",
        ],
        {},
        run_dir / "bare-app.log",
        f"http://127.0.0.1:{port}/livez",
    )


def service_url(service: Service) -> str:
    return service.ready_url.rsplit("/", 1)[0]
