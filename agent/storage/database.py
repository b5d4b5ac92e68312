"""The agent's one SQLite file: result history, alert state and the alert outbox
(the outbox's queries are in :mod:`agent.storage.outbox`).

Writes are synchronous and short (WAL, ``synchronous=NORMAL``): a committed row
survives a process crash, and an operating-system crash loses at most the last
transactions. Everything runs on the event loop thread; each call is one small
transaction so it never holds the loop for long.

History is bounded lazily: each check's rows are trimmed back to ``history_size``
once they exceed it by a slack, so most results cost one INSERT and no DELETE.

History rows are batched: inside a running event loop ``add_result`` queues the row
and one transaction per :data:`HISTORY_FLUSH_INTERVAL` (or per
:data:`HISTORY_FLUSH_ROWS` rows) inserts them all, because a transaction per result
(BEGIN, INSERT, COMMIT) was most of the daemon's per-result cost. That transaction
runs in a writer thread on a connection of its own (SQLite releases the GIL while it
works): on the event loop each batch of ~170 rows stalled every probe's callbacks for
1-2.5 ms twice a second at 10,000 checks. A crash can lose up to that interval of
history; reads (``history``), ``forget_checks`` and ``close`` flush and wait first, so
nothing else sees the difference. A batch the writer cannot write (the database
locked by another process for longer than :data:`BUSY_TIMEOUT_MS`, a full disk) is
logged with its cause and dropped: history is a convenience copy of what metrics and
alerts already counted. Alert state and the outbox are never batched:
``save_alert`` commits on the caller's thread before it returns. Without a running
loop every write happens at once, in the caller's thread.

WAL checkpoints run in the writer thread too, never inside a COMMIT on the loop:
SQLite's automatic checkpoint (every 1,000 pages) runs inside the COMMIT that crosses
it, and its copy and fsync stalled the loop for 17-28 ms several times a minute at
10,000 checks. Instead, after every :data:`CHECKPOINT_ROWS` history rows a ``PASSIVE``
checkpoint runs (WAL writers go on appending meanwhile).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import logging
import sqlite3
import threading
import uuid
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from agent.result import ProbeResult, encode_result
from agent.storage.outbox import NewOutboxRow, OutboxRow, OutboxTable, Transaction

__all__ = [
    "BUSY_TIMEOUT_MS",
    "CHECKPOINT_ROWS",
    "DB_FILENAME",
    "DEFAULT_HISTORY_SIZE",
    "HISTORY_FLUSH_INTERVAL",
    "HISTORY_FLUSH_ROWS",
    "NewOutboxRow",
    "OutboxRow",
    "Store",
]

log = logging.getLogger(__name__)

DB_FILENAME = "wsprobe.sqlite3"
DEFAULT_HISTORY_SIZE = 50
#: Delivered, failed and dropped outbox rows are kept this long for inspection.
DONE_RETENTION = 86400.0
#: Seconds a queued history row waits for its batch's transaction at most.
HISTORY_FLUSH_INTERVAL = 0.5
#: Queued history rows that trigger a flush at once (bounds memory and one flush's time).
HISTORY_FLUSH_ROWS = 1000
#: History rows written between two WAL checkpoints: about 1 KiB each, so the WAL
#: stays within a few MiB (SQLite's own default is 1,000 pages of 4 KiB).
CHECKPOINT_ROWS = 2000
#: How long a write waits for another connection's write lock before it fails.
BUSY_TIMEOUT_MS = 5000
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


class Store(OutboxTable):
    """SQLite-backed history, alert state and outbox.

    Args:
        path: the database file (``*.sqlite3``, ``*.sqlite``, ``*.db``) or the state
            directory to put ``wsprobe.sqlite3`` in. Missing directories are created.
        history_size: results kept per check (``agent.history_size``).
    """

    def __init__(self, path: str | Path, *, history_size: int = DEFAULT_HISTORY_SIZE) -> None:
        target = Path(path)
        # A state directory (existing or not) gets the default file name in it.
        if target.is_dir() or target.suffix not in _DB_SUFFIXES:
            target = target / DB_FILENAME
        target.parent.mkdir(parents=True, exist_ok=True)
        self.path = target
        self.history_size = history_size
        # isolation_level=None: transactions are explicit (BEGIN ... COMMIT below).
        self._db = sqlite3.connect(target, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        # Checkpoints are ours (see the module docstring), never inside a COMMIT.
        self._db.execute("PRAGMA wal_autocheckpoint=0")
        self._db.executescript(_SCHEMA)
        #: History rows written since the last checkpoint; the history writer's own
        #: connection, and the lock that gives it to one thread at a time.
        self._since_checkpoint = 0
        self._wdb: sqlite3.Connection | None = None
        self._wlock = threading.Lock()
        #: The writer thread (created when a batch is first written from a loop).
        self._writer: concurrent.futures.ThreadPoolExecutor | None = None
        self._closed = False
        # Rows per check, so trimming runs only once a check exceeds its bound.
        self._counts: dict[str, int] = dict(
            self._db.execute("SELECT check_name, COUNT(*) FROM results GROUP BY check_name")
        )
        #: History rows (check, JSON) not yet written, and the timer that will write them.
        self._pending: list[tuple[str, str]] = []
        self._flush_handle: asyncio.TimerHandle | None = None

    def close(self) -> None:
        """Write queued history, then close the database (checkpoints the WAL)."""
        self.flush()
        if self._writer is not None:
            self._writer.shutdown(wait=True)
            self._writer = None
        with self._wlock:
            self._closed = True
            if self._wdb is not None:
                self._wdb.close()
                self._wdb = None
        self._db.close()

    def checkpoint(self) -> tuple[int, int, int]:
        """Run a ``PASSIVE`` WAL checkpoint on the history writer's connection.

        Thread-safe (the writer thread calls it after every :data:`CHECKPOINT_ROWS`).

        Returns:
            SQLite's ``(busy, wal_frames, checkpointed_frames)``; zeros once closed.
        """
        with self._wlock:
            if self._closed:
                return 0, 0, 0
            busy, frames, done = (
                self._writer_db().execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            )
        return int(busy), int(frames), int(done)

    def _writer_db(self) -> sqlite3.Connection:
        """The history writer's connection (hold ``_wlock``)."""
        if self._wdb is None:
            self._wdb = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            self._wdb.execute("PRAGMA synchronous=NORMAL")
            self._wdb.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            self._wdb.execute("PRAGMA wal_autocheckpoint=0")
        return self._wdb

    # -- agent identity --------------------------------------------------------------

    def agent_id(self) -> str:
        """A UUID created on first use and stable for the life of this state file."""
        row = self._db.execute("SELECT value FROM meta WHERE key = 'agent_id'").fetchone()
        if row:
            return str(row[0])
        value = str(uuid.uuid4())
        self._db.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('agent_id', ?)", (value,))
        return self.agent_id()

    # -- result history --------------------------------------------------------------

    def add_result(self, result: ProbeResult) -> None:
        """Append ``result`` to its check's history, keeping about the last N.

        Inside a running event loop the row is queued and written with its batch
        within :data:`HISTORY_FLUSH_INTERVAL`; otherwise it is written at once.

        Args:
            result: a finished probe result.
        """
        self._pending.append((result.check, encode_result(result)))
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop to flush later: write now
            self.flush()
            return
        if len(self._pending) >= HISTORY_FLUSH_ROWS:
            self._flush_soon()
        elif self._flush_handle is None:
            self._flush_handle = loop.call_later(HISTORY_FLUSH_INTERVAL, self._flush_soon)

    def flush(self) -> None:
        """Write every queued history row, and wait until it and earlier batches are."""
        batch = self._take()
        writer = self._writer_thread()
        if writer is None:
            self._write(*batch)
        else:
            # Through the writer even when empty: it writes in order, so once this is
            # done every batch handed to it before is too.
            writer.submit(self._write, *batch).result()

    def _flush_soon(self) -> None:
        """Hand the queued rows to the writer thread (called on the event loop)."""
        batch = self._take()
        if batch[0]:
            writer = self._writer_thread()
            assert writer is not None  # a loop is running: add_result and its timer
            writer.submit(self._write, *batch).add_done_callback(_log_failure)

    def _writer_thread(self) -> concurrent.futures.ThreadPoolExecutor | None:
        """The writer thread, started on first use inside a running loop (else None)."""
        if self._writer is None:
            try:
                asyncio.get_running_loop()
            except RuntimeError:
                return None
            self._writer = concurrent.futures.ThreadPoolExecutor(
                max_workers=1, thread_name_prefix="wsprobe-store"
            )
        return self._writer

    def _take(self) -> tuple[list[tuple[str, str]], list[str]]:
        """The queued rows and the checks to trim after them; counts updated."""
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        pending, self._pending = self._pending, []
        counts = self._counts
        added: dict[str, int] = {}
        for check, _ in pending:
            added[check] = added.get(check, 0) + 1
        # Trim in batches: slack of a quarter of N (at least 8) between trims.
        bound = self.history_size + max(8, self.history_size // 4)
        trim = [check for check, n in added.items() if counts.get(check, 0) + n > bound]
        for check, n in added.items():
            counts[check] = counts.get(check, 0) + n
        for check in trim:
            counts[check] = min(counts[check], self.history_size)
        return pending, trim

    def _write(self, pending: list[tuple[str, str]], trim: list[str]) -> None:
        """Insert ``pending`` and trim ``trim`` in one transaction (any thread)."""
        if not pending:
            return
        with self._wlock:
            db = self._writer_db()
            with Transaction(db):
                db.executemany("INSERT INTO results (check_name, data) VALUES (?, ?)", pending)
                for check in trim:
                    db.execute(
                        "DELETE FROM results WHERE check_name = ? AND id <= ("
                        " SELECT id FROM results WHERE check_name = ?"
                        " ORDER BY id DESC LIMIT 1 OFFSET ?)",
                        (check, check, self.history_size),
                    )
            self._since_checkpoint += len(pending)
            due = self._since_checkpoint >= CHECKPOINT_ROWS
            if due:
                self._since_checkpoint = 0
        if due:
            self.checkpoint()

    def history(self, check: str, limit: int) -> list[dict[str, Any]]:
        """The newest ``limit`` results of ``check`` (at most ``history_size``), newest first.

        Args:
            check: check name.
            limit: maximum number of results.

        Returns:
            ``ProbeResult.to_json()`` dicts.
        """
        self.flush()
        limit = max(0, min(limit, self.history_size))
        rows = self._db.execute(
            "SELECT data FROM results WHERE check_name = ? ORDER BY id DESC LIMIT ?",
            (check, limit),
        )
        return [json.loads(data) for (data,) in rows]

    def forget_checks(self, keep: Iterable[str]) -> None:
        """Delete the history of every check not in ``keep`` (removed on reload)."""
        self.flush()
        keep_set = set(keep)
        gone = [name for name in self._counts if name not in keep_set]
        with self._transaction():
            for name in gone:
                self._db.execute("DELETE FROM results WHERE check_name = ?", (name,))
        for name in gone:
            del self._counts[name]

    # -- alert state and outbox --------------------------------------------------------

    def load_alert_states(self) -> dict[str, dict[str, Any]]:
        """Every persisted per-check alert state, by check name."""
        rows = self._db.execute("SELECT check_name, data FROM alert_state")
        return {name: json.loads(data) for name, data in rows}

    def save_alert(
        self,
        check: str,
        state: dict[str, Any] | None,
        rows: Sequence[NewOutboxRow] = (),
    ) -> list[OutboxRow]:
        """Persist one check's alert state and enqueue its events in one transaction.

        Args:
            check: check name.
            state: the new state, or None to delete it.
            rows: events to enqueue (due at once).

        Returns:
            The enqueued rows with their ids, in order.
        """
        out: list[OutboxRow] = []
        with self._transaction():
            if state is None:
                self._db.execute("DELETE FROM alert_state WHERE check_name = ?", (check,))
            else:
                self._db.execute(
                    "INSERT INTO alert_state (check_name, data) VALUES (?, ?)"
                    " ON CONFLICT (check_name) DO UPDATE SET data = excluded.data",
                    (check, json.dumps(state, separators=(",", ":"))),
                )
            for r in rows:
                cur = self._db.execute(
                    "INSERT INTO outbox (delivery_id, receiver, check_name, event, payload,"
                    " created_at, next_attempt_at) VALUES (?, ?, ?, ?, ?, ?, 0)",
                    (r.delivery_id, r.receiver, r.check, r.event, r.payload, r.created_at),
                )
                assert cur.lastrowid is not None
                out.append(
                    OutboxRow(
                        cur.lastrowid, r.delivery_id, r.receiver, r.check, r.event, r.created_at
                    )
                )
        return out


def _log_failure(done: concurrent.futures.Future[None]) -> None:
    """Log a background batch that could not be written (nobody to raise to)."""
    exc = None if done.cancelled() else done.exception()
    if exc is not None:
        log.error("could not store queued results: %s", exc, exc_info=exc)
