"""Start, stop and restart a real single-node Apache Kafka broker (KRaft) on 127.0.0.1.

The broker runs from Maven Central jars assembled by tools/kafka-broker/pom.xml; no Docker
and no Apache mirror are involved. Standard library only, so the test suite, `make kafka`
and the benchmarks can all use it before any environment exists.

    python3 -m tools.kafka_broker start [--workdir DIR]   # prints BOOTSTRAP=127.0.0.1:<port>
    python3 -m tools.kafka_broker stop [--workdir DIR]
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from tools.ports import free_ports

HERE = Path(__file__).resolve().parent
BROKER_DIR = HERE / "kafka-broker"
LIBS = BROKER_DIR / "libs"
DEFAULT_WORKDIR = HERE.parent / ".run" / "kafka"
START_TIMEOUT_S = 90.0
STOP_TIMEOUT_S = 30.0

# Single-node settings. Internal topics default to replication factor 3, which a single
# broker cannot satisfy (groups and transactions then hang), and to 50 partitions each,
# which makes the first group join and the first transaction slow.
_SERVER_PROPERTIES = """\
process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=127.0.0.1:{controller_port}
listeners=PLAINTEXT://127.0.0.1:{broker_port},CONTROLLER://127.0.0.1:{controller_port}
advertised.listeners=PLAINTEXT://127.0.0.1:{broker_port},CONTROLLER://127.0.0.1:{controller_port}
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs={data_dir}
num.partitions=1
auto.create.topics.enable=true
offsets.topic.replication.factor=1
offsets.topic.num.partitions=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
share.coordinator.state.topic.num.partitions=1
group.initial.rebalance.delay.ms=0
group.min.session.timeout.ms=1000
transaction.abort.timed.out.transaction.cleanup.interval.ms=5000
num.network.threads=2
num.io.threads=2
background.threads=2
num.recovery.threads.per.data.dir=1
log.cleaner.dedupe.buffer.size=16777216
"""

_LOG4J2 = """\
status = warn
name = gateway-test-broker
appender.out.type = Console
appender.out.name = STDOUT
appender.out.target = SYSTEM_OUT
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.out.ref = STDOUT
logger.request.name = kafka.request.logger
logger.request.level = WARN
logger.statechange.name = state.change.logger
logger.statechange.level = WARN
logger.cleaner.name = org.apache.kafka.storage.internals.log.LogCleaner
logger.cleaner.level = WARN
"""


class BrokerError(RuntimeError):
    """The broker could not be assembled or started; the message carries its log."""


def ensure_jars() -> None:
    """Fetch the broker's jars from Maven Central unless they are already there."""
    if LIBS.is_dir() and any(LIBS.glob("kafka_2.13-*.jar")):
        return
    mvn = shutil.which("mvn")
    if mvn is None:
        raise BrokerError("Maven (mvn) is needed to fetch the Kafka jars; install Maven 3.6+")
    result = subprocess.run(
        [mvn, "-B", "-q", "-f", str(BROKER_DIR / "pom.xml"), "dependency:copy-dependencies"],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise BrokerError("mvn could not fetch the Kafka jars:\n" + result.stdout + result.stderr)


def _port_open(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
        return True
    return False


def _java() -> str:
    home = os.environ.get("JAVA_HOME")
    return str(Path(home) / "bin" / "java") if home else "java"


def tool_command(main_class: str, heap: str = "512m") -> list[str]:
    """The command line that runs one of Kafka's own tools (a main class of the jars
    `ensure_jars` fetched), e.g. `org.apache.kafka.tools.ProducerPerformance`."""
    return [_java(), f"-Xmx{heap}", "-cp", str(LIBS / "*"), main_class]


@dataclass
class Broker:
    """One broker process and the directory that holds its config, data and log."""

    workdir: Path
    port: int
    controller_port: int
    process: subprocess.Popen[bytes] | None = None
    # Lines appended to server.properties (tests that need a broker set up otherwise).
    extra_properties: str = ""

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.workdir / "broker.log"

    @property
    def pid_path(self) -> Path:
        return self.workdir / "broker.pid"

    def log_tail(self, lines: int = 80) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no broker log)"

    def _classpath(self) -> str:
        return str(LIBS / "*")

    def _jvm_flags(self) -> list[str]:
        return [
            f"-Dlog4j2.configurationFile={self.workdir / 'log4j2.properties'}",
            f"-Dkafka.logs.dir={self.workdir}",
            "-Djava.awt.headless=true",
        ]

    def format(self) -> None:
        """Write the config and format the data directory for a new cluster."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        props = _SERVER_PROPERTIES.format(
            broker_port=self.port,
            controller_port=self.controller_port,
            data_dir=self.workdir / "data",
        ) + "".join(f"{line}\n" for line in self.extra_properties.splitlines())
        (self.workdir / "server.properties").write_text(props)
        (self.workdir / "log4j2.properties").write_text(_LOG4J2)
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        result = subprocess.run(
            [
                _java(),
                "-Xmx256m",
                "-XX:TieredStopAtLevel=1",
                *self._jvm_flags(),
                "-cp",
                self._classpath(),
                "kafka.tools.StorageTool",
                "format",
                "--standalone",
                "-t",
                cluster_id,
                "-c",
                str(self.workdir / "server.properties"),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise BrokerError("kafka storage format failed:\n" + result.stdout + result.stderr)

    def acls(self, *arguments: str) -> None:
        """Run Kafka's own ACL tool against this broker (`--add --deny-principal ...`);
        the broker needs an authorizer (`authorizer.class.name`) in its properties."""
        result = subprocess.run(
            [
                _java(),
                "-Xmx128m",
                "-XX:TieredStopAtLevel=1",
                *self._jvm_flags(),
                "-cp",
                self._classpath(),
                "org.apache.kafka.tools.AclCommand",
                "--bootstrap-server",
                self.bootstrap,
                *arguments,
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise BrokerError("kafka acls failed:\n" + result.stdout + result.stderr)

    def start(self, timeout_s: float = START_TIMEOUT_S) -> None:
        """Start the broker on the formatted directory and wait until it serves."""
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    _java(),
                    "-Xms256m",
                    "-Xmx512m",
                    "-XX:+UseG1GC",
                    "-XX:MaxGCPauseMillis=20",
                    *self._jvm_flags(),
                    "-cp",
                    self._classpath(),
                    "kafka.Kafka",
                    str(self.workdir / "server.properties"),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        self.pid_path.write_text(str(self.process.pid))
        # Kafka opens a fixed listener port only once the broker is unfenced and serving,
        # so an accepted connection is a sound readiness signal.
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise BrokerError(
                    f"kafka exited with {self.process.returncode} while starting:\n"
                    + self.log_tail()
                )
            if _port_open(self.port):
                return
            time.sleep(0.2)
        self.kill()
        raise BrokerError(f"kafka did not serve within {timeout_s:.0f} s:\n" + self.log_tail())

    def kill(self) -> None:
        """SIGKILL the broker, as a crash would."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def stop(self, timeout_s: float = STOP_TIMEOUT_S) -> None:
        """Shut down cleanly (SIGTERM), falling back to SIGKILL after timeout_s."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.kill()

    def restart(self) -> None:
        """Start again on the same ports and data, after kill() or stop()."""
        self.start()


def start_broker(workdir: Path, attempts: int = 3, extra_properties: str = "") -> Broker:
    """Assemble (if needed), format and start a broker on free loopback ports;
    `extra_properties` are appended to its server.properties."""
    ensure_jars()
    last: BrokerError | None = None
    for attempt in range(attempts):
        port, controller_port = free_ports(2)
        broker = Broker(
            workdir / f"attempt-{attempt}", port, controller_port, extra_properties=extra_properties
        )
        try:
            broker.format()
            broker.start()
            return broker
        except BrokerError as exc:
            # A port picked as free may have been taken before the broker bound it.
            last = exc
            broker.kill()
    assert last is not None
    raise last


def _stop_pid(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT_S
        while time.monotonic() < deadline:
            os.kill(pid, 0)
            time.sleep(0.2)
        os.killpg(pid, signal.SIGKILL)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["start", "stop", "fetch"])
    parser.add_argument("--workdir", type=Path, default=DEFAULT_WORKDIR)
    args = parser.parse_args(argv)
    workdir: Path = args.workdir.resolve()
    current = workdir / "current"
    if args.command == "fetch":
        ensure_jars()
        return 0
    if args.command == "stop":
        if current.is_file():
            _stop_pid(int(current.read_text().split()[0]))
            current.unlink()
            print("kafka stopped")
        else:
            print("no broker recorded in", workdir)
        return 0
    if current.is_file():
        pid, bootstrap = current.read_text().split()
        with contextlib.suppress(ProcessLookupError):
            os.kill(int(pid), 0)
            print(f"kafka already running (pid {pid}); stop it with `make kafka-stop`")
            print(f"BOOTSTRAP={bootstrap}")
            return 0
    shutil.rmtree(workdir, ignore_errors=True)
    try:
        broker = start_broker(workdir)
    except BrokerError as exc:
        print(exc, file=sys.stderr)
        return 1
    assert broker.process is not None
    current.write_text(f"{broker.process.pid} {broker.bootstrap}\n")
    print(f"kafka log: {broker.log_path}")
    print(f"BOOTSTRAP={broker.bootstrap}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
