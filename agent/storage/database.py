"""The state file itself: opening it safely, its schema, its two connections.

One SQLite file in WAL mode (``synchronous=NORMAL``): a committed row survives a
process crash, an operating-system crash loses at most the last transactions.

Two connections: :attr:`Database.conn` belongs to the event loop's thread (alert
state and outbox, one short transaction per call); the writer connection belongs to
the writer thread (history batches, checkpoints, pruning, vacuum), handed out one
thread at a time by :meth:`Database.writer`. SQLite releases the GIL while it works,
so the writer thread's transactions never stall probing.

Opening is where faults meet the operator, so it says what it found:

- a directory that cannot be written (read-only mount, permissions) raises
  :class:`~agent.storage.faults.StateError` naming the path and the cause (the daemon exits 2);
- a corrupt file (garbage header, garbage pages, truncated) is moved aside under a
  name logged at ERROR, with what was lost, and a fresh file is started;
- a file made before incremental vacuum existed is converted once (``VACUUM``), so
  deleted rows give their space back to the file system from then on.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import os
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

from agent.storage.faults import (
    SIDE_FILES,
    StateError,
    check_integrity,
    check_writable,
    is_corruption,
    is_write_fault,
    move_aside,
    state_error,
)
from agent.storage.health import StateHealth

__all__ = [
    "BUSY_TIMEOUT_MS",
    "DB_FILENAME",
    "JOURNAL_SIZE_LIMIT",
    "Database",
    "Transaction",
    "resolve_path",
]

log = logging.getLogger(__name__)

DB_FILENAME = "wsprobe.sqlite3"
#: How long a write waits for another connection's write lock before it fails.
BUSY_TIMEOUT_MS = 5000
#: Bytes the WAL is cut back to after a checkpoint resets it (SQLite keeps it at its
#: high-water mark otherwise).
JOURNAL_SIZE_LIMIT = 4 * 1024 * 1024
_DB_SUFFIXES = (".sqlite3", ".sqlite", ".db")
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS results (
    id INTEGER PRIMARY KEY,
    check_name TEXT NOT NULL,
    data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS results_by_check ON results (check_name, id);
CREATE TABLE IF NOT EXISTS alert_state (check_name TEXT PRIMARY KEY, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    delivery_id TEXT NOT NULL UNIQUE,
    receiver TEXT NOT NULL,
    check_name TEXT NOT NULL,
    event TEXT NOT NULL,
    payload TEXT NOT NULL,
    created_at REAL NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending',
    done_at REAL
);
CREATE INDEX IF NOT EXISTS outbox_by_status ON outbox (status, id);
"""


def resolve_path(path: str | Path) -> Path:
    """The database file for ``path``: a file name as given, else a directory's default."""
    target = Path(path)
    if target.is_dir() or target.suffix not in _DB_SUFFIXES:
        target = target / DB_FILENAME
    return target


class Transaction:
    """BEGIN IMMEDIATE ... COMMIT, ROLLBACK on error."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> sqlite3.Connection:
        self._db.execute("BEGIN IMMEDIATE")
        return self._db

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            self._db.execute("COMMIT")
        elif self._db.in_transaction:
            # A failed COMMIT (disk full) may leave SQLite already rolled back.
            with contextlib.suppress(sqlite3.Error):
                self._db.execute("ROLLBACK")


class Database:
    """The state file, its connections and the writer thread.

    Args:
        path: the database file (``*.sqlite3``, ``*.sqlite``, ``*.db``) or the state
            directory to put ``wsprobe.sqlite3`` in. Missing directories are created.

    Raises:
        StateError: the directory or file cannot be written.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = resolve_path(path)
        #: Whether writes to the file work: failed writes are counted and logged there.
        self.health = StateHealth(self.path)
        #: Whether the file was created (or replaced a corrupt one) by this open.
        self.created = False
        #: Damage found while running (an error of a read or write), until reopened.
        self.corrupt: str | None = None
        #: Why the file could not be opened, while ``conn`` is an in-memory stand-in.
        self.open_error: StateError | None = None
        try:
            self.conn = self._open()
        except StateError as exc:
            if not exc.transient:
                raise
            # A full disk must not stop the agent: it runs on memory until the file
            # can be opened (the store retries).
            self.conn = self._stand_in(exc)
        self._identity = self._file_identity()
        self._wdb: sqlite3.Connection | None = None
        self._wlock = threading.Lock()
        self._closed = False
        #: The writer thread (created when first used from a running loop).
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None

    # -- opening -----------------------------------------------------------------------

    def _open(self) -> sqlite3.Connection:
        check_writable(self.path.parent)
        existed = self.path.exists()
        try:
            conn = self._connect_checked()
        except sqlite3.DatabaseError as exc:
            if not is_corruption(exc):
                raise state_error(self.path.parent, exc) from exc
            move_aside(
                self.path,
                str(exc),
                lost="alert state (a firing alert may be sent again), alert events not yet"
                " delivered, result history",
            )
            existed = False
            try:
                conn = self._connect_checked()
            except sqlite3.DatabaseError as again:
                raise state_error(self.path.parent, again) from again
        self.created = not existed
        return conn

    def _connect_checked(self) -> sqlite3.Connection:
        # isolation_level=None: transactions are explicit (Transaction above).
        size = self.path.stat().st_size if self.path.exists() else 0
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        try:
            check_integrity(conn, size=size)
            fresh = conn.execute("SELECT count(*) FROM sqlite_schema").fetchone()[0] == 0
            if fresh:
                # Only a file without tables takes this; older files are converted below.
                conn.execute("PRAGMA auto_vacuum=INCREMENTAL")
            conn.execute("PRAGMA journal_mode=WAL")
            _configure(conn)
            # Checkpoints run in the writer thread (see agent.storage.maintenance), never
            # inside a COMMIT on the event loop.
            conn.execute("PRAGMA wal_autocheckpoint=0")
            conn.executescript(_SCHEMA)
            (mode,) = conn.execute("PRAGMA auto_vacuum").fetchone()
            if mode != 2:
                log.info("state file %s: converting to incremental vacuum (once)", self.path)
                conn.execute("PRAGMA auto_vacuum=INCREMENTAL")
                conn.execute("VACUUM")
        except BaseException:
            conn.close()
            raise
        return conn

    def _file_identity(self) -> tuple[int, int] | None:
        try:
            st = os.stat(self.path)
        except OSError:
            return None
        return st.st_dev, st.st_ino

    @property
    def broken(self) -> bool:
        """True while the file could not be (re)opened and ``conn`` stands in for it."""
        return self.open_error is not None

    def _stand_in(self, why: StateError) -> sqlite3.Connection:
        """An empty in-memory database with the schema: reads answer, nothing persists."""
        self.open_error = why
        conn = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
        conn.executescript(_SCHEMA)
        return conn

    def note_fault(self, exc: BaseException) -> bool:
        """Classify an error of a read or write on this file.

        Returns:
            True for a fault of the file (full, read-only, locked, corrupt: damage is
            noted for :meth:`replaced`); False for a bug, which the caller re-raises.
        """
        if is_corruption(exc):
            self.mark_corrupt(exc)
        return is_write_fault(exc)

    def write_failed(self, exc: sqlite3.Error, *, what: str) -> None:
        """Report a write that raised ``exc`` to :attr:`health`, or re-raise a bug.

        Args:
            exc: the error of the write.
            what: what could not be written, for the log line.

        Raises:
            sqlite3.Error: ``exc`` itself when it is not a fault of the file.
        """
        if not self.note_fault(exc):
            raise exc
        self.health.failed(exc, what=what)

    def mark_corrupt(self, exc: BaseException) -> None:
        """Note damage found while running: the next :meth:`reopen` moves the file aside."""
        if self.corrupt is None:
            self.corrupt = str(exc) or type(exc).__name__

    def replaced(self) -> bool:
        """True when the open file must be replaced: deleted, swapped or found corrupt."""
        if self.broken:
            return False
        return self.corrupt is not None or self._file_identity() != self._identity

    def reopen(self) -> None:
        """Close both connections and open the file at :attr:`path` again (or anew).

        Raises:
            StateError: the directory cannot be written any more.
        """
        with self._wlock:
            self._close_connections()
            if self.corrupt is not None and self.path.exists():
                try:
                    move_aside(
                        self.path,
                        self.corrupt,
                        lost="the result history, and what could not be read from it",
                    )
                except StateError:
                    self.conn = self._stand_in(
                        StateError(self.path.parent, "cannot move a corrupt file aside")
                    )
                    raise
            self.corrupt = None
            if not self.path.exists():
                # A WAL left beside a deleted file would be replayed into the new one.
                for suffix in SIDE_FILES:
                    with contextlib.suppress(OSError):
                        self.path.with_name(self.path.name + suffix).unlink()
            try:
                self.conn = self._open()
            except StateError as exc:
                # Reads must go on answering (empty) until the file can be opened.
                self.conn = self._stand_in(exc)
                raise
            self.open_error = None
            self._identity = self._file_identity()

    # -- the writer thread ---------------------------------------------------------------

    @contextlib.contextmanager
    def writer(self) -> Iterator[sqlite3.Connection | None]:
        """The writer connection, held by one thread at a time (None once closed)."""
        with self._wlock:
            if self._closed:
                yield None
                return
            if self._wdb is None:
                self._wdb = sqlite3.connect(
                    self.path, isolation_level=None, check_same_thread=False
                )
                _configure(self._wdb)
            yield self._wdb

    def executor(self) -> concurrent.futures.ThreadPoolExecutor | None:
        """The writer thread, started on first use inside a running loop (else None)."""
        if self._executor is None and not self._closed:
            try:
                asyncio.get_running_loop()
            except RuntimeError:
                return None
            self._executor = concurrent.futures.ThreadPoolExecutor(
                max_workers=1, thread_name_prefix="wsprobe-store"
            )
        return self._executor

    def file_sizes(self) -> tuple[int, int]:
        """Bytes of the main file and of its WAL and shared-memory files."""
        sizes = []
        for suffix in ("", "-wal"):
            try:
                sizes.append(os.stat(self.path.with_name(self.path.name + suffix)).st_size)
            except OSError:
                sizes.append(0)
        try:
            shm = os.stat(self.path.with_name(self.path.name + "-shm")).st_size
        except OSError:
            shm = 0
        return sizes[0], sizes[1] + shm

    def free_bytes(self) -> int:
        """Bytes still free on the state directory's file system."""
        try:
            st = os.statvfs(self.path.parent)
        except OSError:
            return 0
        return st.f_bavail * st.f_frsize

    def close(self) -> None:
        """Stop the writer thread, close both connections (checkpoints the WAL)."""
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None
        with self._wlock:
            self._closed = True
            self._close_connections()

    def _close_connections(self) -> None:
        """Close the writer's and the readers' connections; call with ``_wlock`` held."""
        if self._wdb is not None:
            with contextlib.suppress(sqlite3.Error):
                self._wdb.close()
            self._wdb = None
        with contextlib.suppress(sqlite3.Error):
            self.conn.close()


def _configure(conn: sqlite3.Connection) -> None:
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    conn.execute(f"PRAGMA journal_size_limit={JOURNAL_SIZE_LIMIT}")
