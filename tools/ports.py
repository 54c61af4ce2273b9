"""Free TCP ports on 127.0.0.1 for the servers tests and benchmarks start (stdlib only)."""

from __future__ import annotations

import random
import socket
from pathlib import Path

_TRIES_PER_PORT = 200


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_ports(count: int) -> list[int]:
    """`count` distinct ports free now, below the kernel's ephemeral range: all bound at
    once while they are chosen, so two servers of one process never get the same one.
    A port handed out for port 0 comes from the ephemeral range, where an outgoing
    connection can take it before its server binds it; under load (the churn run opens a
    connection per callback) that happened several times in a row."""
    low = _ephemeral_low()
    sockets: list[socket.socket] = []
    try:
        for _ in range(_TRIES_PER_PORT * count):
            if len(sockets) == count:
                break
            candidate = socket.socket()
            try:
                candidate.bind(("127.0.0.1", random.randrange(max(1024, low - 12000), low)))
            except OSError:
                candidate.close()
                continue
            sockets.append(candidate)
        if len(sockets) < count:
            raise OSError(f"no {count} free ports below the ephemeral range ({low})")
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def free_port() -> int:
    return free_ports(1)[0]
