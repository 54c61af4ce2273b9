"""Who may see the console: the token, login sessions and the limit on failures.

The token comes from `GATEWAY_CONSOLE_TOKEN` or, winning over it, the file
`GATEWAY_CONSOLE_TOKEN_FILE` (a mounted Secret), read again when the file changes. A
request is let in by a session cookie (set after a login form posted the token; it holds
a random session id, never the token) or by `Authorization: Bearer <token>`. Tokens are
compared in constant time, as digests, so neither content nor length leaks through timing.
Failures are counted per source address; a source (or everyone together) that failed too
often in the last minute is refused before its token is even looked at.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from gateway.errors import ConfigurationError
from gateway.settings import Settings

WINDOW_S: Final = 60.0
FAILURES_PER_SOURCE: Final = 5
"""Failed attempts one source address may make per window."""
FAILURES_OVERALL: Final = 30
"""Failed attempts all sources together may make per window (many addresses guessing)."""
SESSIONS_KEPT: Final = 64
_FILE_CHECK_S: Final = 5.0


def _digest(value: str) -> bytes:
    return hashlib.sha256(value.encode()).digest()


class ConsoleToken:
    """The configured token, from the settings or the file (re-read when it changes)."""

    def __init__(self, settings: Settings, clock: Callable[[], float] = time.monotonic) -> None:
        self._path = settings.console_token_file
        self._clock = clock
        self._value = settings.console_token.get_secret_value().strip()
        self._stamp: float | None = None
        self._checked = -_FILE_CHECK_S
        if self._path is not None:
            self._read(required=True)

    def _read(self, required: bool = False) -> None:
        assert self._path is not None
        try:
            stamp = self._path.stat().st_mtime
            if stamp != self._stamp:
                self._value = self._path.read_text().strip()
                self._stamp = stamp
        except OSError as exc:
            if required:
                raise ConfigurationError(
                    f"GATEWAY_CONSOLE_TOKEN_FILE {self._path}: {exc.strerror}"
                ) from exc
            # A Secret being swapped by the kubelet: keep the token read last.

    def current(self) -> str:
        now = self._clock()
        if self._path is not None and now - self._checked >= _FILE_CHECK_S:
            self._checked = now
            self._read()
        return self._value

    def matches(self, candidate: str) -> bool:
        """Constant-time: the digests are compared, whatever the lengths."""
        token = self.current()
        return bool(token) and hmac.compare_digest(_digest(candidate), _digest(token))


class FailureLimit:
    """Failed attempts per source in a sliding window, and overall (pure: pass `now`)."""

    def __init__(
        self, per_source: int = FAILURES_PER_SOURCE, overall: int = FAILURES_OVERALL
    ) -> None:
        self._per_source = per_source
        self._overall = overall
        self._by_source: dict[str, deque[float]] = {}
        self._all: deque[float] = deque()

    def _trim(self, times: deque[float], now: float) -> None:
        while times and times[0] <= now - WINDOW_S:
            times.popleft()

    def retry_after(self, source: str, now: float) -> float | None:
        """Seconds until `source` may try again, or None when it may try now."""
        self._trim(self._all, now)
        times = self._by_source.get(source)
        if times is not None:
            self._trim(times, now)
            if not times:
                del self._by_source[source]
        waits = []
        if times and len(times) >= self._per_source:
            waits.append(times[0] + WINDOW_S - now)
        if len(self._all) >= self._overall:
            waits.append(self._all[0] + WINDOW_S - now)
        return max(waits) if waits else None

    def failed(self, source: str, now: float) -> None:
        self._by_source.setdefault(source, deque()).append(now)
        self._all.append(now)


@dataclass(frozen=True, slots=True)
class Session:
    id: str
    csrf: str
    """Carried by the console's forms (logout), checked on every POST."""
    expires_at: float


class Sessions:
    """Logged-in browsers, in memory: a restart (or another replica) asks to log in again."""

    def __init__(self, ttl_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._ttl_s = ttl_s
        self._clock = clock
        self._sessions: OrderedDict[str, Session] = OrderedDict()

    @property
    def ttl_s(self) -> float:
        return self._ttl_s

    def open(self) -> Session:
        session = Session(
            secrets.token_urlsafe(32), secrets.token_urlsafe(24), self._clock() + self._ttl_s
        )
        self._sessions[session.id] = session
        while len(self._sessions) > SESSIONS_KEPT:
            self._sessions.popitem(last=False)
        return session

    def get(self, session_id: str | None) -> Session | None:
        if not session_id:
            return None
        session = self._sessions.get(session_id)
        if session is None:
            return None
        if session.expires_at <= self._clock():
            del self._sessions[session_id]
            return None
        return session

    def close(self, session_id: str) -> None:
        self._sessions.pop(session_id, None)


def same_secret(a: str, b: str) -> bool:
    """Constant-time equality of two form secrets (CSRF tokens)."""
    return bool(a) and hmac.compare_digest(_digest(a), _digest(b))
