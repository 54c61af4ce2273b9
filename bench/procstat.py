"""CPU time and memory of a process from /proc (psutil is not a dependency)."""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field

_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True, slots=True)
class ProcSample:
    cpu_s: float  # user + system seconds since the process started
    rss_bytes: int  # resident now
    peak_rss_bytes: int  # the kernel's high-water mark (VmHWM)


def sample(pid: int) -> ProcSample:
    with open(f"/proc/{pid}/stat") as f:
        stat = f.read()
    # The command name (field 2) may contain spaces; the fields after it are plain.
    fields = stat[stat.rindex(")") + 2 :].split()
    utime, stime = int(fields[11]), int(fields[12])
    rss = peak = 0
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1]) * 1024
            elif line.startswith("VmHWM:"):
                peak = int(line.split()[1]) * 1024
    return ProcSample((utime + stime) / _TICKS, rss, peak)


@dataclass
class Sampler:
    """Samples a process every `every_s` on a thread; keeps the highest RSS seen."""

    pid: int
    every_s: float = 0.25
    max_rss_bytes: int = 0
    samples: list[tuple[float, ProcSample]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> Sampler:
        self._thread = threading.Thread(target=self._run, name="procstat", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._take()

    def _take(self) -> None:
        try:
            s = sample(self.pid)
        except (OSError, ValueError, IndexError):
            return  # the process is gone (a fault run killed it)
        self.samples.append((time.time(), s))
        self.max_rss_bytes = max(self.max_rss_bytes, s.rss_bytes)

    def _run(self) -> None:
        while not self._stop.wait(self.every_s):
            self._take()
