"""The embedded log's SQLite file: how it is opened, what its errors mean, and the
housekeeping that keeps it bounded. Everything here runs on the log's own thread.

- Opening: WAL with `synchronous=FULL`, and incremental auto-vacuum so freed pages can
  go back to the file system. A file created without it is converted once by a VACUUM,
  which needs free space of twice the file's size on its volume (a copy, and the WAL
  that carries it back; the copy is made next to the file, not in /tmp). Without that
  room, or when the VACUUM fails, the log works as before: retention still keeps the
  file from growing (SQLite reuses freed pages), it just cannot shrink, and the next
  start tries again.
- Transactions: `transaction` rolls back only what is still open. SQLite itself rolls a
  transaction back on some errors (SQLITE_FULL, SQLITE_IOERR, ...), and a ROLLBACK then
  fails with "no transaction is active" and hides the error that matters.
- Errors: `error_reason` maps SQLite's result code onto a short, fixed reason (metrics).
- Retention: `expire` deletes, in short transactions, records older than a cutoff that
  every consumer group has committed past; never a topic's newest record (the next
  offset counts on from it), and in compacted topics only tombstones (as Kafka does).
- Reclaiming: `reclaim` returns free pages to the file system and truncates the WAL.
"""

from __future__ import annotations

import contextlib
import shutil
import sqlite3
from collections.abc import Collection, Iterator, Mapping
from pathlib import Path

from gateway.ops.logs import get_logger

logger = get_logger("gateway.log")

SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    topic   TEXT    NOT NULL,
    offset  INTEGER NOT NULL,
    key     BLOB,
    value   BLOB    NOT NULL,
    headers TEXT    NOT NULL,
    ts      INTEGER NOT NULL,
    PRIMARY KEY (topic, offset)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS records_by_key ON records (topic, key);
CREATE TABLE IF NOT EXISTS positions (
    grp    TEXT    NOT NULL,
    topic  TEXT    NOT NULL,
    offset INTEGER NOT NULL,
    PRIMARY KEY (grp, topic)
) WITHOUT ROWID;
"""
_AUTO_VACUUM_INCREMENTAL = 2
_CONVERT_MARGIN_BYTES = 64 * 1024 * 1024
# A checkpoint leaves the WAL at most this long (a large batch would otherwise leave it
# at its size forever).
_WAL_LIMIT_BYTES = 4 * 1024 * 1024
_EXPIRE_CHUNK = 2000  # offsets per delete transaction: appends wait for one chunk at most
_VACUUM_CHUNK_PAGES = 2048  # pages moved per incremental-vacuum transaction (8 MiB)
PROBE_BYTES = 64 * 1024  # the size of the write that tells whether the log takes writes
PROBE_TOPIC = "__probe"  # where it goes (no consumer reads it); deleted at once

# SQLite's primary result codes (the low byte of an extended one) -> reason label.
_REASONS = {
    sqlite3.SQLITE_FULL: "disk_full",
    sqlite3.SQLITE_IOERR: "io_error",
    sqlite3.SQLITE_BUSY: "busy",
    sqlite3.SQLITE_LOCKED: "busy",
    sqlite3.SQLITE_READONLY: "read_only",
    sqlite3.SQLITE_CORRUPT: "corrupt",
    sqlite3.SQLITE_NOTADB: "corrupt",
    sqlite3.SQLITE_CANTOPEN: "cannot_open",
    sqlite3.SQLITE_NOMEM: "out_of_memory",
}
REASONS = frozenset(_REASONS.values()) | {"other"}


def error_reason(exc: sqlite3.Error) -> str:
    """The reason label of an SQLite error; `other` when it carries no known code."""
    code: int | None = getattr(exc, "sqlite_errorcode", None)
    return "other" if code is None else _REASONS.get(code & 0xFF, "other")


def connect(path: Path) -> sqlite3.Connection:
    """Open (or create) the log's file with the pragmas the log's promises rest on."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA busy_timeout=5000")
    # Before anything writes the header: a new file gets incremental auto-vacuum at once.
    conn.execute("PRAGMA auto_vacuum=INCREMENTAL")
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute(f"PRAGMA journal_size_limit={_WAL_LIMIT_BYTES}")
    conn.executescript(SCHEMA)
    _convert_to_incremental_vacuum(conn, path)
    return conn


def _convert_to_incremental_vacuum(conn: sqlite3.Connection, path: Path) -> None:
    """A file created before auto-vacuum was set needs one VACUUM to take it."""
    if conn.execute("PRAGMA auto_vacuum").fetchone()[0] == _AUTO_VACUUM_INCREMENTAL:
        return
    size = file_bytes(path)
    needed = 2 * size + _CONVERT_MARGIN_BYTES
    free = shutil.disk_usage(path.parent).free
    if free < needed:
        logger.warning(
            "log file not converted to incremental auto-vacuum for lack of room; it "
            "cannot shrink until a start with room converts it",
            path=str(path),
            needed_bytes=needed,
            free_bytes=free,
        )
        return
    logger.info("converting the log file to incremental auto-vacuum", path=str(path), bytes=size)
    # VACUUM copies the database to a temporary file first: next to it, where the room
    # was checked, not in /tmp (small, or read-only, in a container).
    where = str(path.parent.resolve()).replace("'", "''")
    try:
        conn.execute(f"PRAGMA temp_store_directory = '{where}'")
        conn.execute("VACUUM")
    except sqlite3.Error as exc:
        logger.warning(
            "log file not converted to incremental auto-vacuum; it cannot shrink until it is",
            path=str(path),
            error=str(exc),
        )
    finally:
        conn.execute("PRAGMA temp_store_directory = ''")


@contextlib.contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[None]:
    """BEGIN IMMEDIATE ... COMMIT; on any error, roll back what SQLite left open and
    raise the original error."""
    if conn.in_transaction:  # left open by a ROLLBACK that itself failed
        conn.execute("ROLLBACK")
    # IMMEDIATE takes the write lock at once, so what is read inside stays true even
    # when another process (a CLI command) writes to the same file.
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
        raise


def probe(conn: sqlite3.Connection) -> None:
    """Write `PROBE_BYTES` and delete them again, each in a transaction of its own:
    raises when the log cannot take a write of about one batch (no free pages, the WAL
    cannot grow, I/O errors)."""
    with transaction(conn):
        conn.execute(
            "INSERT OR REPLACE INTO records (topic, offset, key, value, headers, ts) "
            "VALUES (?, 0, NULL, zeroblob(?), '[]', 0)",
            (PROBE_TOPIC, PROBE_BYTES),
        )
    with transaction(conn):
        conn.execute("DELETE FROM records WHERE topic = ?", (PROBE_TOPIC,))


def file_bytes(path: Path) -> int:
    """Bytes on disk of the database file and its WAL."""
    total = 0
    for part in (path, path.with_name(path.name + "-wal")):
        with contextlib.suppress(FileNotFoundError):
            total += part.stat().st_size
    return total


# --- retention ---------------------------------------------------------------------------


def topics(conn: sqlite3.Connection) -> list[str]:
    """Every topic with records (one index seek per topic)."""
    found: list[str] = []
    row = conn.execute("SELECT MIN(topic) FROM records").fetchone()
    while row[0] is not None:
        found.append(row[0])
        row = conn.execute("SELECT MIN(topic) FROM records WHERE topic > ?", (row[0],)).fetchone()
    return found


def _retention_stop(conn: sqlite3.Connection, topic: str, holders: Collection[str]) -> int:
    """The offset retention stays below in `topic`: its newest record's, and the
    position of every group that committed on it or must (`holders`: a holder with no
    position yet holds the whole topic)."""
    (last,) = conn.execute("SELECT MAX(offset) FROM records WHERE topic = ?", (topic,)).fetchone()
    positions: Mapping[str, int] = dict(
        conn.execute("SELECT grp, offset FROM positions WHERE topic = ?", (topic,)).fetchall()
    )
    waiting = [0 for group in holders if group not in positions]
    return min([-1 if last is None else int(last), *positions.values(), *waiting])


def expire_chunk(
    conn: sqlite3.Connection,
    topic: str,
    start: int,
    cutoff_ms: int,
    holders: Collection[str],
    tombstones_only: bool,
) -> tuple[int, int | None]:
    """Delete expired records of `topic` among a chunk of offsets from `start`, in one
    transaction; returns how many went and where the next chunk starts (None: done)."""
    with transaction(conn):
        stop = _retention_stop(conn, topic, holders)
        (first,) = conn.execute(
            "SELECT MIN(offset) FROM records WHERE topic = ? AND offset >= ?", (topic, start)
        ).fetchone()
        if first is None or first >= stop:
            return 0, None
        end = min(stop, int(first) + _EXPIRE_CHUNK)
        tombstones = " AND value = x''" if tombstones_only else ""
        cursor = conn.execute(
            "DELETE FROM records WHERE topic = ? AND offset >= ? AND offset < ? AND ts < ?"
            + tombstones,
            (topic, first, end, cutoff_ms),
        )
    return cursor.rowcount, end if end < stop else None


def vacuum_chunk(conn: sqlite3.Connection) -> int:
    """Return up to one chunk of free pages to the file system; how many stay free (0
    also when none could go: a file not converted to incremental auto-vacuum)."""
    with transaction(conn):
        (free,) = conn.execute("PRAGMA freelist_count").fetchone()
        if free == 0:
            return 0
        # Each step of the pragma frees one page, so it must be read to the end.
        conn.execute(f"PRAGMA incremental_vacuum({_VACUUM_CHUNK_PAGES})").fetchall()
        (left,) = conn.execute("PRAGMA freelist_count").fetchone()
    return int(left) if left < free else 0


def checkpoint(conn: sqlite3.Connection) -> None:
    """Copy the WAL into the database (which shrinks the file after a vacuum) and
    truncate the WAL. A reader in another process may hold it back; the next run
    finishes then."""
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
