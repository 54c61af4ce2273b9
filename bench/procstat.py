"""CPU time, memory and open files of a process from /proc (psutil is not a dependency)."""

from __future__ import annotations

import contextlib
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


def family(pid: int) -> list[int]:
    """`pid` and every process it started, and theirs (a gateway's ingest workers)."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        try:
            with open(f"/proc/{current}/task/{current}/children") as f:
                todo += [int(child) for child in f.read().split()]
        except OSError:
            continue
    return found


def open_fds(pid: int) -> int:
    """File descriptors the process has open (sockets included)."""
    return len(os.listdir(f"/proc/{pid}/fd"))


def total(pids: list[int]) -> ProcSample:
    """CPU and memory of several processes and their children added up (a gateway split
    in two, or with ingest workers). A child that exited takes its CPU time with it: the
    figures are for processes that live through the measurement."""
    found = []
    for pid in pids:
        for member in family(pid):
            with contextlib.suppress(OSError, ValueError, IndexError):
                found.append(sample(member))
    if not found:
        raise OSError(f"no process left of {pids}")
    return ProcSample(
        sum(s.cpu_s for s in found),
        sum(s.rss_bytes for s in found),
        sum(s.peak_rss_bytes for s in found),
    )


@dataclass
class Sampler:
    """Samples processes every `every_s` on a thread; keeps the highest total RSS seen."""

    pids: list[int]
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
            s = total(self.pids)
        except (OSError, ValueError, IndexError):
            return  # the process is gone (a fault run killed it)
        self.samples.append((time.time(), s))
        self.max_rss_bytes = max(self.max_rss_bytes, s.rss_bytes)

    def _run(self) -> None:
        while not self._stop.wait(self.every_s):
            self._take()
