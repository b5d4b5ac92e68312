"""Faults of the state file: its errors classified, the checks at open, moving it aside.

Exception tree::

    Exception
     └── StateError        the state directory or file cannot be used (path, cause)
    sqlite3.DatabaseError
     └── Corrupt           an integrity check found damage the open did not trip over

A write fault (:func:`is_write_fault`) is what a full, read-only, vanished, locked
or damaged file raises; :func:`is_corruption` picks out damage, which no retry
fixes: the file is moved aside (:func:`move_aside`) and a fresh one started.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import time
from pathlib import Path

__all__ = [
    "FULL_CHECK_BYTES",
    "KEEP_CORRUPT",
    "SIDE_FILES",
    "Corrupt",
    "StateError",
    "check_integrity",
    "check_writable",
    "is_corruption",
    "is_write_fault",
    "move_aside",
    "state_error",
]

log = logging.getLogger(__name__)

#: Files up to this size get a full integrity check when opened; larger ones (it reads
#: every page: 3.6 s for a cold 100 MB file) get it for the small tables only, and
#: damage in the history is found when it is read (the file is then moved aside).
FULL_CHECK_BYTES = 16 * 1024 * 1024
_SMALL_TABLES = ("meta", "alert_state", "outbox")
#: Corrupt files moved aside that are kept (older ones are deleted: the state
#: directory's bound must hold even on a disk that corrupts files repeatedly).
KEEP_CORRUPT = 2
#: The WAL and shared-memory files beside the state file.
SIDE_FILES = ("-wal", "-shm")
# SQLite primary result codes (the low byte of an extended code).
_SQLITE_IOERR = 10
_SQLITE_CORRUPT = 11
_SQLITE_FULL = 13
_SQLITE_NOTADB = 26


class StateError(Exception):
    """The state directory or file cannot be used (read-only, not writable, full)."""

    def __init__(self, path: Path, cause: str, *, transient: bool = False) -> None:
        super().__init__(path, cause)
        self.path = path
        self.cause = cause
        #: True when it may pass by itself (disk full, I/O error), False when the
        #: operator must act (read-only, permissions).
        self.transient = transient

    def __str__(self) -> str:
        return f"state directory {self.path}: {self.cause}"


class Corrupt(sqlite3.DatabaseError):
    """An integrity check found damage the open itself did not trip over."""


def is_write_fault(exc: BaseException) -> bool:
    """True for the errors a full, read-only, vanished, locked or corrupted file raises.

    Constraint violations and API misuse are bugs, not faults of the file.
    """
    if isinstance(exc, OSError):
        return True
    return isinstance(exc, sqlite3.DatabaseError) and not isinstance(
        exc, (sqlite3.IntegrityError, sqlite3.ProgrammingError, sqlite3.InterfaceError)
    )


def is_corruption(exc: BaseException) -> bool:
    """True for the errors of a damaged file (as opposed to a full or read-only one)."""
    return isinstance(exc, Corrupt) or (
        isinstance(exc, sqlite3.DatabaseError) and _code(exc) in (_SQLITE_CORRUPT, _SQLITE_NOTADB)
    )


def _code(exc: sqlite3.Error) -> int:
    return int(getattr(exc, "sqlite_errorcode", 0) or 0) & 0xFF


def check_writable(directory: Path) -> None:
    """Create ``directory`` if needed and prove a file can be made in it.

    Raises:
        StateError: it cannot (read-only file system, permissions).
    """
    try:
        directory.mkdir(parents=True, exist_ok=True)
        probe = directory / f".wsprobe-write-test-{os.getpid()}"
        probe.touch()
        probe.unlink()
    except OSError as exc:
        raise StateError(directory, f"cannot write there: {exc.strerror or exc}") from exc


def check_integrity(conn: sqlite3.Connection, *, size: int) -> None:
    """Run SQLite's quick check: the whole file, or its small tables when it is large.

    Raises:
        Corrupt: the check found damage.
        sqlite3.DatabaseError: the file is not a database, or unreadable.
    """
    if size <= FULL_CHECK_BYTES:
        pragmas = ["PRAGMA quick_check(1)"]
    else:
        tables = {name for (name,) in conn.execute("SELECT name FROM sqlite_schema")}
        pragmas = [f"PRAGMA quick_check({t})" for t in _SMALL_TABLES if t in tables]
    for pragma in pragmas:
        (result,) = conn.execute(pragma).fetchone()
        if result != "ok":
            raise Corrupt(f"integrity check failed: {result}")


def state_error(directory: Path, exc: sqlite3.Error) -> StateError:
    """The :class:`StateError` for an error opening the file in ``directory``."""
    # An I/O error or "full" is what a full disk gives; read-only, permission and
    # cannot-open errors need the operator.
    code = _code(exc)
    cause = str(exc) or type(exc).__name__
    if code == _SQLITE_IOERR and _disk_full(directory):
        cause = f"no space left on device ({cause})"
    return StateError(directory, cause, transient=code in (_SQLITE_IOERR, _SQLITE_FULL))


def _disk_full(directory: Path) -> bool:
    try:
        return os.statvfs(directory).f_bavail == 0
    except OSError:
        return False


def move_aside(path: Path, why: str, *, lost: str) -> Path:
    """Rename a corrupt file (and its WAL and index) aside, logged with what was lost.

    Returns:
        The new name.

    Raises:
        StateError: it cannot be renamed.
    """
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    aside = path.with_name(f"{path.name}.corrupt-{stamp}")
    try:
        os.replace(path, aside)
        for suffix in SIDE_FILES:
            side = path.with_name(path.name + suffix)
            if side.exists():
                os.replace(side, aside.with_name(aside.name + suffix))
    except OSError as exc:
        raise StateError(path.parent, f"cannot move a corrupt file aside: {exc}") from exc
    log.error(
        "state file %s is corrupt (%s): moved it to %s and started a fresh one; lost: %s",
        path,
        why,
        aside,
        lost,
    )
    olds = sorted(path.parent.glob(f"{path.name}.corrupt-*[0-9]Z"))
    for old in olds[:-KEEP_CORRUPT]:
        for suffix in ("", *SIDE_FILES):
            with contextlib.suppress(OSError):
                old.with_name(old.name + suffix).unlink()
    return aside
