"""Run vegeta against a URL and read every answer back.

`attack` runs `vegeta attack` (fixed arrival rate, or `rate=0` with a fixed number of
workers for saturation) on a targets file, then `vegeta encode -to csv`, and returns one
`Answer` per request: when it was sent, how long the answer took, the status, and the
`messageId` the gateway echoed (which says which callback was accepted).
"""

from __future__ import annotations

import base64
import binascii
import csv
import json
import subprocess
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from bench.stats import Percentiles, percentiles


@dataclass(frozen=True, slots=True)
class Attack:
    name: str
    rate: int  # requests per second; 0 = as fast as `workers` allow
    duration_s: float
    workers: int = 64  # with rate=0: concurrent requests; else the initial pool
    timeout_s: float = 30.0
    keepalive: bool = True  # False: one connection per request (spread by a balancer)
    max_workers: int | None = None  # with a rate: the most requests in flight (None: no cap)


@dataclass(frozen=True, slots=True)
class Answer:
    sent_at: float  # epoch seconds
    latency_s: float
    code: int
    message_id: str | None
    error: str


@dataclass
class AttackResult:
    attack: Attack
    answers: list[Answer]

    @property
    def codes(self) -> dict[str, int]:
        counted = Counter(str(a.code) if a.code else "error" for a in self.answers)
        return dict(sorted(counted.items()))

    def ok(self) -> list[Answer]:
        return [a for a in self.answers if a.code == 200]

    def accepted(self) -> dict[str, float]:
        """messageId -> send time of every callback answered 200."""
        return {a.message_id: a.sent_at for a in self.ok() if a.message_id is not None}

    def ack_latency(self) -> Percentiles:
        return percentiles([a.latency_s for a in self.ok()])

    @property
    def span_s(self) -> float:
        if not self.answers:
            return 0.0
        first = min(a.sent_at for a in self.answers)
        last = max(a.sent_at + a.latency_s for a in self.answers)
        return max(1e-9, last - first)

    def throughput(self) -> float:
        """Answers 200 per second over the whole attack."""
        return len(self.ok()) / self.span_s if self.answers else 0.0

    def summary(self) -> dict[str, object]:
        return {
            "name": self.attack.name,
            "offered_rate": self.attack.rate,
            "duration_s": self.attack.duration_s,
            "requests": len(self.answers),
            "codes": self.codes,
            "ok_per_s": round(self.throughput(), 1),
            "ack_latency_ms": self.ack_latency().as_ms(),
        }


def _message_id(body_b64: str) -> str | None:
    try:
        document = json.loads(base64.b64decode(body_b64))
    except (binascii.Error, ValueError):
        return None
    value = document.get("messageId") if isinstance(document, dict) else None
    return str(value) if value is not None else None


def read_csv(path: Path) -> list[Answer]:
    answers: list[Answer] = []
    with path.open(newline="") as f:
        for row in csv.reader(f):
            code = int(row[1])
            answers.append(
                Answer(
                    sent_at=int(row[0]) / 1e9,
                    latency_s=int(row[2]) / 1e9,
                    code=code,
                    message_id=_message_id(row[6]) if code == 200 else None,
                    error=row[5],
                )
            )
    answers.sort(key=lambda a: a.sent_at)
    return answers


def command(vegeta: Path, attack: Attack, targets: Path, output: Path) -> list[str]:
    argv = [
        str(vegeta),
        "attack",
        "-format=json",
        "-lazy",
        f"-targets={targets}",
        f"-output={output}",
        f"-duration={attack.duration_s}s",
        f"-timeout={attack.timeout_s}s",
        "-max-body=256",
        "-http2=false",
        f"-rate={attack.rate}/s",
    ]
    if not attack.keepalive:
        argv.append("-keepalive=false")
    if attack.rate == 0:
        argv += [f"-workers={attack.workers}", f"-max-workers={attack.workers}"]
    else:
        argv += [f"-workers={attack.workers}"]
        if attack.max_workers is not None:
            argv.append(f"-max-workers={attack.max_workers}")
    return argv


def start(vegeta: Path, attack: Attack, targets: Path, out_dir: Path) -> subprocess.Popen[bytes]:
    """Start the attack (callers that act during it wait for the process themselves)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    with (out_dir / f"{attack.name}.vegeta.log").open("ab") as log:
        return subprocess.Popen(
            command(vegeta, attack, targets, out_dir / f"{attack.name}.bin"),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )


def collect(vegeta: Path, attack: Attack, out_dir: Path) -> AttackResult:
    """Decode a finished attack's results."""
    binary, csv_path = out_dir / f"{attack.name}.bin", out_dir / f"{attack.name}.csv"
    with csv_path.open("wb") as out:
        subprocess.run([str(vegeta), "encode", "-to=csv", str(binary)], stdout=out, check=True)
    binary.unlink()
    return AttackResult(attack, read_csv(csv_path))


def run(vegeta: Path, attack: Attack, targets: Path, out_dir: Path) -> AttackResult:
    process = start(vegeta, attack, targets, out_dir)
    if process.wait() != 0:
        log = (out_dir / f"{attack.name}.vegeta.log").read_text(errors="replace")
        raise RuntimeError(f"vegeta attack {attack.name} failed:\n{log}")
    return collect(vegeta, attack, out_dir)
