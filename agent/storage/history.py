"""Recent results per check: batched writes off the event loop, bounded per check.

History is bounded lazily: each check's rows are trimmed back to ``history_size``
once they exceed it by a slack, so most results cost one INSERT and no DELETE.

Rows are batched: inside a running event loop :meth:`History.add` queues the row
and one transaction per :data:`HISTORY_FLUSH_INTERVAL` (or per
:data:`HISTORY_FLUSH_ROWS` rows) inserts them all, because a transaction per result
was most of the daemon's per-result cost. That transaction runs in the writer thread
on its own connection: on the event loop each batch of ~170 rows stalled every
probe's callbacks for 1-2.5 ms twice a second at 10,000 checks. A crash can lose up
to that interval of history; reads, :meth:`History.forget` and close flush and wait
first, so nothing else sees the difference.

History is a convenience copy of what metrics and alerts already counted: a batch
that cannot be written (disk full, the file locked by another process for longer
than the busy timeout) is dropped and reported to :class:`StateHealth`, and while
writes fail batches are dropped without trying. Without a running loop every write
happens at once, in the caller's thread.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import logging
import sqlite3
from collections.abc import Callable, Iterable
from typing import Any

from agent.result import ProbeResult, encode_result
from agent.storage.database import Database, Transaction

__all__ = [
    "DEFAULT_HISTORY_SIZE",
    "HISTORY_FLUSH_INTERVAL",
    "HISTORY_FLUSH_ROWS",
    "History",
]

log = logging.getLogger(__name__)

DEFAULT_HISTORY_SIZE = 50
#: Seconds a queued history row waits for its batch's transaction at most.
HISTORY_FLUSH_INTERVAL = 0.5
#: Queued history rows that trigger a flush at once (bounds memory and one flush's time).
HISTORY_FLUSH_ROWS = 1000

_Batch = tuple[list[tuple[str, str]], list[str]]


class History:
    """The ``results`` table.

    Args:
        db: the state file.
        history_size: results kept per check (``agent.history_size``).
        on_written: called in the writer thread with the rows of each written batch.
    """

    def __init__(
        self,
        db: Database,
        *,
        history_size: int = DEFAULT_HISTORY_SIZE,
        on_written: Callable[[int], None] | None = None,
    ) -> None:
        self._db = db
        self.history_size = history_size
        self._on_written = on_written
        #: Rows per check, so trimming runs only once a check exceeds its bound.
        self._counts: dict[str, int] = {}
        self.recount()
        #: Rows (check, JSON) not yet written, and the timer that will write them.
        self._pending: list[tuple[str, str]] = []
        self._flush_handle: asyncio.TimerHandle | None = None
        #: Rows dropped because writes were failing (reported when they work again).
        self.dropped = 0

    def recount(self) -> None:
        """Re-read the rows per check (after the file was replaced)."""
        try:
            self._counts = dict(
                self._db.conn.execute(
                    "SELECT check_name, COUNT(*) FROM results GROUP BY check_name"
                )
            )
        except sqlite3.DatabaseError as exc:
            if not self._db.note_fault(exc):
                raise
            self._counts = {}  # a damaged history: the file is replaced at the next tick

    def add(self, result: ProbeResult) -> None:
        """Append ``result`` to its check's history, keeping about the last N.

        Inside a running event loop the row is queued and written with its batch
        within :data:`HISTORY_FLUSH_INTERVAL`; otherwise it is written at once.
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
        """Write every queued row, and wait until it and earlier batches are."""
        batch = self._take()
        writer = self._db.executor()
        if writer is None:
            self.write(*batch)
        else:
            # Through the writer even when empty: it writes in order, so once this is
            # done every batch handed to it before is too.
            writer.submit(self.write, *batch).result()

    def _flush_soon(self) -> None:
        """Hand the queued rows to the writer thread (called on the event loop)."""
        batch = self._take()
        if batch[0]:
            writer = self._db.executor()
            if writer is None:  # closed meanwhile
                return
            writer.submit(self.write, *batch).add_done_callback(_log_bug)

    def _take(self) -> _Batch:
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

    def write(self, pending: list[tuple[str, str]], trim: list[str]) -> None:
        """Insert ``pending`` and trim ``trim`` in one transaction (writer thread)."""
        if not pending:
            return
        if not self._db.health.healthy:
            self.dropped += len(pending)
            return
        with self._db.writer() as db:
            if db is None:
                return
            try:
                with Transaction(db):
                    db.executemany("INSERT INTO results (check_name, data) VALUES (?, ?)", pending)
                    for check in trim:
                        db.execute(
                            "DELETE FROM results WHERE check_name = ? AND id <= ("
                            " SELECT id FROM results WHERE check_name = ?"
                            " ORDER BY id DESC LIMIT 1 OFFSET ?)",
                            (check, check, self.history_size),
                        )
            except sqlite3.Error as exc:
                if not self._db.note_fault(exc):
                    raise
                self.dropped += len(pending)
                self._db.health.failed(exc, what=f"result history ({len(pending)} results)")
                return
        if self._on_written is not None:
            self._on_written(len(pending))

    def shrink(self, db: sqlite3.Connection, *, keep_fraction: float) -> int:
        """Delete the oldest results over all checks, keeping ``keep_fraction`` of rows.

        Used when the state directory is over its bound (writer thread).

        Returns:
            Rows deleted.
        """
        (total,) = db.execute("SELECT COUNT(*) FROM results").fetchone()
        drop = int(total * (1.0 - keep_fraction))
        if drop <= 0:
            return 0
        with Transaction(db):
            cur = db.execute(
                "DELETE FROM results WHERE id <= (SELECT id FROM results ORDER BY id LIMIT 1"
                " OFFSET ?)",
                (drop - 1,),
            )
        return cur.rowcount

    def get(self, check: str, limit: int) -> list[dict[str, Any]]:
        """The newest ``limit`` results of ``check`` (at most ``history_size``), newest first.

        Returns:
            ``ProbeResult.to_json()`` dicts.
        """
        self.flush()
        limit = max(0, min(limit, self.history_size))
        try:
            rows = self._db.conn.execute(
                "SELECT data FROM results WHERE check_name = ? ORDER BY id DESC LIMIT ?",
                (check, limit),
            ).fetchall()
        except sqlite3.DatabaseError as exc:
            if not self._db.note_fault(exc):
                raise
            return []  # a damaged history: the file is replaced at the next tick
        return [json.loads(data) for (data,) in rows]

    def forget(self, keep: Iterable[str]) -> None:
        """Delete the history of every check not in ``keep`` (removed on reload)."""
        self.flush()
        keep_set = set(keep)
        gone = [name for name in self._counts if name not in keep_set]
        for name in gone:
            del self._counts[name]
        if not gone:
            return
        try:
            with Transaction(self._db.conn) as db:
                for name in gone:
                    db.execute("DELETE FROM results WHERE check_name = ?", (name,))
        except sqlite3.Error as exc:
            self._db.write_failed(exc, what="the history of removed checks")


def _log_bug(done: concurrent.futures.Future[None]) -> None:
    """Log a background batch that failed for a reason other than the file (a bug)."""
    exc = None if done.cancelled() else done.exception()
    if exc is not None:
        log.error("could not store queued results: %s", exc, exc_info=exc)
