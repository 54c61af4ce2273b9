"""A small file system under the gateway's data directory, and a way to fill it up.

The disk-full run mounts a size-limited tmpfs on the gateway's data directory, fills it
with a file until the kernel answers ENOSPC, and deletes the file to give the room back.
That is a full disk as SQLite meets it (the WAL cannot grow, checkpoints cannot copy
pages back into the database), not a limit SQLite imposes on itself.

Mounting needs CAP_SYS_ADMIN in the mount namespace. As root that is the host's (the
mount is removed after the run); otherwise `python -m bench` runs itself in user and
mount namespaces of its own (`unshare --user --map-root-user --mount`, allowed wherever
unprivileged user namespaces are), where the mount is private to the harness and the
processes it starts. The harness, the gateway and its independent reader must see the
same mount: SQLite resolves symbolic links in a file's path, so a reader cannot reach a
file in another process's mount namespace through `/proc/<pid>/root`.
"""

from __future__ import annotations

import contextlib
import errno
import os
import subprocess
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

_FILLER = "filler"
_CHUNKS = (1 << 20, 1 << 16, 1 << 12)  # write big blocks, then smaller ones into what is left


class DiskError(RuntimeError):
    """The tmpfs could not be mounted; the message says why and what is needed."""


def can_mount() -> bool:
    return os.geteuid() == 0


def in_own_namespaces(argv: Sequence[str]) -> list[str]:
    """`argv` run as root of user and mount namespaces of its own (see the module doc)."""
    return ["unshare", "--user", "--map-root-user", "--mount", "--", sys.executable, *argv]


@contextlib.contextmanager
def tmpfs(path: Path, size_bytes: int) -> Iterator[Disk]:
    """A tmpfs of `size_bytes` on `path` for the block, unmounted afterwards."""
    path.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size_bytes},mode=0755", "tmpfs", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        raise DiskError(
            f"cannot mount a tmpfs on {path} (root, or unprivileged user namespaces, are "
            f"needed for the disk-full run): {mounted.stderr.strip()}"
        )
    try:
        yield Disk(path)
    finally:
        subprocess.run(["umount", "--lazy", str(path)], capture_output=True, check=False)


@dataclass(frozen=True)
class Disk:
    root: Path

    def fill(self) -> int:
        """Write a file until the file system is full; returns the bytes written."""
        written = 0
        fd = os.open(self.root / _FILLER, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            for size in _CHUNKS:
                block = bytes(size)
                while True:
                    try:
                        written += os.write(fd, block)
                    except OSError as exc:
                        if exc.errno != errno.ENOSPC:
                            raise
                        break
        finally:
            os.close(fd)
        return written

    def free(self) -> None:
        """Delete the file `fill` wrote: the room is back."""
        with contextlib.suppress(FileNotFoundError):
            (self.root / _FILLER).unlink()
