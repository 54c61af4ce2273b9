"""Where the OAuth refresh token lives between runs: one small JSON file, mode 0600.

OC may rotate the refresh token on every refresh (the public client keeps any new one),
so the newest token is written atomically (temporary file, fsync, rename) before it is
used. The file remembers the seed of its grant: a fingerprint of the grant's first
refresh token (the configured bootstrap token, or the one `gateway oc login` received).
When an operator configures a different bootstrap token (a new grant), that one wins.

Several processes may share one store (replicas mounting one volume, or `gateway oc
check` beside `gateway serve`): each refresh holds the lock file `<store>.lock` and starts
from the token stored now, so a rotated token reaches every process before its
predecessor is used again (`newest`).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import json
import os
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

LOCK_POLL_S: Final = 0.05
LOCK_TIMEOUT_S: Final = 60.0


class StoreLocked(Exception):
    """Another holder kept the store's lock file for longer than the wait allowed."""


def fingerprint(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class StoredToken:
    refresh_token: str
    seed: str
    """Fingerprint of the bootstrap refresh token this one was rotated from."""


def newest(stored: StoredToken | None, bootstrap: str, held: StoredToken | None) -> StoredToken:
    """The refresh token to refresh with (pure).

    At start (`held` None): the stored token when it descends from `bootstrap` (or no
    bootstrap is configured), else `bootstrap`. In a running process: the stored token
    when it belongs to the held one's grant (another process rotated it meanwhile) or, with
    no bootstrap configured, when a new login replaced the grant; else the held one."""
    if held is None:
        if stored is not None and (not bootstrap or stored.seed == fingerprint(bootstrap)):
            return stored
        return StoredToken(refresh_token=bootstrap, seed=fingerprint(bootstrap))
    if stored is not None and (stored.seed == held.seed or not bootstrap):
        return stored
    return held


class TokenStore:
    def __init__(self, path: Path) -> None:
        self.path = path

    @property
    def lock_path(self) -> Path:
        return self.path.with_name(self.path.name + ".lock")

    def load(self) -> StoredToken | None:
        """The stored token, or None when there is none (or it cannot be read)."""
        try:
            raw = json.loads(self.path.read_bytes())
            return StoredToken(refresh_token=str(raw["refresh_token"]), seed=str(raw["seed"]))
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def starting_point(self, bootstrap: str) -> StoredToken:
        """The refresh token to start from, and the seed its successors are stored under:
        the stored token when it descends from `bootstrap` (or no bootstrap is
        configured), else `bootstrap` itself."""
        return newest(self.load(), bootstrap, None)

    def save_grant(self, refresh_token: str) -> None:
        """Store the first refresh token of a new grant (from `gateway oc login`): it is
        its own seed, so a bootstrap setting equal to it keeps its stored successors."""
        self.save(refresh_token, fingerprint(refresh_token))

    @contextlib.asynccontextmanager
    async def locked(self, timeout_s: float = LOCK_TIMEOUT_S) -> AsyncIterator[None]:
        """Hold the store's lock file for one refresh; other holders (other processes, or
        other stores on the same path) wait. When the lock file cannot be opened (a
        read-only directory), go on unlocked: then nothing can be saved either. Raises
        `StoreLocked` when the lock is not free within `timeout_s`."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError:
            yield
            return
        try:
            deadline = time.monotonic() + timeout_s
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise StoreLocked(f"{self.lock_path} stayed locked") from None
                    # Polled, not a blocking flock in a thread: a cancelled wait must
                    # not leave a thread behind that takes the lock later.
                    await asyncio.sleep(LOCK_POLL_S)
            try:
                yield
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    def save(self, refresh_token: str, seed: str) -> None:
        """Replace the stored token atomically; the file is readable by its owner only."""
        directory = self.path.parent
        directory.mkdir(parents=True, exist_ok=True)
        document = {
            "refresh_token": refresh_token,
            "seed": seed,
            "saved_at": datetime.now(UTC).isoformat(),
        }
        fd, temporary = tempfile.mkstemp(dir=directory, prefix=f".{self.path.name}.")
        try:
            with os.fdopen(fd, "wb") as file:  # mkstemp created it with mode 0600
                file.write(json.dumps(document).encode())
                file.flush()
                os.fsync(file.fileno())
            os.replace(temporary, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            raise
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
