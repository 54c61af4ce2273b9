"""Where the OAuth refresh token lives between runs: one small JSON file, mode 0600.

OC may rotate the refresh token on every refresh (the public client keeps any new one),
so the newest token is written atomically (temporary file, fsync, rename) before it is
used. The file remembers a fingerprint of the bootstrap token it descends from: when an
operator configures a different bootstrap token (a new grant), that one wins.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path


def fingerprint(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class StoredToken:
    refresh_token: str
    seed: str
    """Fingerprint of the bootstrap refresh token this one was rotated from."""


class TokenStore:
    def __init__(self, path: Path) -> None:
        self.path = path

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
        stored = self.load()
        if stored is not None and (not bootstrap or stored.seed == fingerprint(bootstrap)):
            return stored
        return StoredToken(refresh_token=bootstrap, seed=fingerprint(bootstrap))

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
