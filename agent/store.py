"""The agent's one SQLite file: result history, alert state and the alert outbox
(the outbox's queries are in :mod:`agent.outbox_table`).

Writes are synchronous and short (WAL, ``synchronous=NORMAL``): a committed row
survives a process crash, and an operating-system crash loses at most the last
transactions. Everything runs on the event loop thread; each call is one small
transaction so it never holds the loop for long.

History is bounded lazily: each check's rows are trimmed back to ``history_size``
once they exceed it by a slack, so most results cost one INSERT and no DELETE.

History rows are batched: inside a running event loop ``add_result`` queues the row
and one transaction per :data:`HISTORY_FLUSH_INTERVAL` (or per
:data:`HISTORY_FLUSH_ROWS` rows) inserts them all, because a transaction per result
(BEGIN, INSERT, COMMIT) was most of the daemon's per-result cost. A crash can lose
up to that interval of history; reads (``history``), ``forget_checks`` and ``close``
flush first, so nothing else sees the difference. Alert state and the outbox are
never batched: ``save_alert`` commits before it returns.

WAL checkpoints run off the event loop: SQLite's automatic checkpoint (every 1,000
pages) runs inside the COMMIT that crosses it, on the loop thread, and its copy and
fsync stalled the loop for 17-28 ms several times a minute at 10,000 checks. Instead,
after every :data:`CHECKPOINT_ROWS` history rows a ``PASSIVE`` checkpoint runs in a
worker thread on a connection of its own (SQLite releases the GIL while it works, and
WAL writers go on appending meanwhile). Without a running event loop it runs inline.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import threading
import uuid
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from agent.outbox_table import NewOutboxRow, OutboxRow, OutboxTable
from agent.result import ProbeResult, encode_result

__all__ = [
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
        self._db.execute("PRAGMA busy_timeout=5000")
        # Checkpoints are ours (see the module docstring), never inside a COMMIT.
        self._db.execute("PRAGMA wal_autocheckpoint=0")
        self._db.executescript(_SCHEMA)
        #: Rows written since the last checkpoint; the checkpointer's own connection,
        #: lock (the connection is used by one thread at a time) and in-flight flag.
        self._since_checkpoint = 0
        self._ckpt_db: sqlite3.Connection | None = None
        self._ckpt_lock = threading.Lock()
        self._checkpointing = False
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
        with self._ckpt_lock:  # waits for a checkpoint running in a worker thread
            self._closed = True
            if self._ckpt_db is not None:
                self._ckpt_db.close()
                self._ckpt_db = None
        self._db.close()

    def checkpoint(self) -> tuple[int, int, int]:
        """Run a ``PASSIVE`` WAL checkpoint on the checkpointer's own connection.

        Thread-safe; the daemon calls it from a worker thread.

        Returns:
            SQLite's ``(busy, wal_frames, checkpointed_frames)``; zeros once closed.
        """
        with self._ckpt_lock:
            if self._closed:
                return 0, 0, 0
            if self._ckpt_db is None:
                self._ckpt_db = sqlite3.connect(
                    self.path, isolation_level=None, check_same_thread=False
                )
                self._ckpt_db.execute("PRAGMA busy_timeout=5000")
            busy, frames, done = self._ckpt_db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        return int(busy), int(frames), int(done)

    def _checkpoint_soon(self) -> None:
        """Checkpoint in a worker thread (inline without a running loop); one at a time."""
        if self._checkpointing:
            return
        self._since_checkpoint = 0
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.checkpoint()
            return
        self._checkpointing = True
        loop.run_in_executor(None, self.checkpoint).add_done_callback(self._checkpointed)

    def _checkpointed(self, done: asyncio.Future[tuple[int, int, int]]) -> None:
        self._checkpointing = False
        if done.cancelled():
            return
        exc = done.exception()
        if exc is not None:
            # Called from the event loop: nobody to raise to. The next batch retries.
            log.warning("WAL checkpoint failed: %s", exc)

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
        if len(self._pending) >= HISTORY_FLUSH_ROWS:
            self.flush()
        elif self._flush_handle is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:  # no loop to flush later: write now
                self.flush()
                return
            self._flush_handle = loop.call_later(HISTORY_FLUSH_INTERVAL, self._timed_flush)

    def flush(self) -> None:
        """Write every queued history row in one transaction, trimming as needed."""
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        pending, self._pending = self._pending, []
        if not pending:
            return
        counts = self._counts
        added: dict[str, int] = {}
        for check, _ in pending:
            added[check] = added.get(check, 0) + 1
        # Trim in batches: slack of a quarter of N (at least 8) between trims.
        bound = self.history_size + max(8, self.history_size // 4)
        trim = [check for check, n in added.items() if counts.get(check, 0) + n > bound]
        with self._transaction():
            self._db.executemany("INSERT INTO results (check_name, data) VALUES (?, ?)", pending)
            for check in trim:
                self._db.execute(
                    "DELETE FROM results WHERE check_name = ? AND id <= ("
                    " SELECT id FROM results WHERE check_name = ?"
                    " ORDER BY id DESC LIMIT 1 OFFSET ?)",
                    (check, check, self.history_size),
                )
        for check, n in added.items():
            counts[check] = counts.get(check, 0) + n
        for check in trim:
            counts[check] = min(counts[check], self.history_size)
        self._since_checkpoint += len(pending)
        if self._since_checkpoint >= CHECKPOINT_ROWS:
            self._checkpoint_soon()

    def _timed_flush(self) -> None:
        self._flush_handle = None
        try:
            self.flush()
        except Exception:
            # Called from the event loop: there is no caller to raise to.
            log.exception("could not store queued results")

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
