"""The store: one state file, composed of its tables, kept healthy and bounded.

:class:`Store` is the one object the rest of the agent holds. It composes
:class:`~agent.storage.database.Database` (the file and its connections),
:class:`~agent.storage.history.History`, :class:`~agent.storage.alert_state.AlertStates`,
:class:`~agent.storage.outbox.Outbox` and :class:`~agent.storage.maintenance.Maintenance`,
and owns the policy for faults of the file, so that a full, deleted or failing file
never stops probing or alerting:

- every write on the event loop's thread goes through one gate
  (:class:`~agent.storage.recovery.Recovery`): a write the file refuses leaves what it
  carried in memory, to be written back once the file takes writes again;
- every :data:`MAINTENANCE_INTERVAL` on the loop the store checks that the file on
  disk is still the one it has open (a deleted one is recreated), tries the
  write-back while writes fail, and hands
  :class:`~agent.storage.maintenance.Maintenance` to the writer thread (checkpoints,
  pruning, vacuum, the size bound).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import sqlite3
import uuid
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from agent.result import ProbeResult
from agent.storage.alert_state import AlertStates
from agent.storage.database import Database
from agent.storage.history import DEFAULT_HISTORY_SIZE, History
from agent.storage.maintenance import DEFAULT_STATE_MAX_BYTES, Maintenance, Shedder
from agent.storage.outbox import NewOutboxRow, Outbox, OutboxRow
from agent.storage.recovery import Recovery, put_agent_id

__all__ = ["MAINTENANCE_INTERVAL", "Store"]

log = logging.getLogger(__name__)

#: Seconds between two looks at the file (replaced?) and two maintenance rounds.
MAINTENANCE_INTERVAL = 1.0


class Store:
    """SQLite-backed history, alert state and outbox.

    Args:
        path: the database file (``*.sqlite3``, ``*.sqlite``, ``*.db``) or the state
            directory to put ``wsprobe.sqlite3`` in. Missing directories are created.
        history_size: results kept per check (``agent.history_size``).
        max_bytes: bound for the state file with its WAL (``agent.state_max_bytes``).

    Raises:
        agent.storage.faults.StateError: the state directory cannot be written
            (read-only, permissions).
    """

    def __init__(
        self,
        path: str | Path,
        *,
        history_size: int = DEFAULT_HISTORY_SIZE,
        max_bytes: int = DEFAULT_STATE_MAX_BYTES,
    ) -> None:
        self._db = Database(path)
        self.path = self._db.path
        self.health = self._db.health
        self._maintenance: Maintenance | None = None
        self._history = History(self._db, history_size=history_size, on_written=self._rows_written)
        self._alerts = AlertStates()
        self._outbox = Outbox()
        self._maintenance = Maintenance(self._db, self._history, self._outbox, max_bytes=max_bytes)
        self._recovery = Recovery(self._db, self._history, self._alerts, self._outbox)
        self._attempt = self._recovery.attempt
        if self._db.open_error is not None:
            self.health.failed(
                self._db.open_error,
                what="or read it at start, so its alert state is not loaded (a firing alert"
                " may be sent again)",
            )
        self._agent_id = self._recovery.agent_id = self._load_agent_id()
        self._tick_handle: asyncio.TimerHandle | None = None
        self._closed = False

    @property
    def maintenance(self) -> Maintenance:
        """Checkpoints, pruning and the size bound of this file."""
        assert self._maintenance is not None
        return self._maintenance

    def add_shedder(self, shedder: Shedder) -> None:
        """Count ``shedder``'s tables (the rollups) in the size bound: once history is
        trimmed, the bound deletes their rows in the order they document."""
        self.maintenance.add_shedder(shedder)

    def remove_shedder(self, shedder: Shedder) -> None:
        """Stop taking rows from ``shedder`` (before closing it)."""
        self.maintenance.remove_shedder(shedder)

    @property
    def history_size(self) -> int:
        """Results kept per check."""
        return self._history.history_size

    @history_size.setter
    def history_size(self, value: int) -> None:
        self._history.history_size = value

    def _rows_written(self, count: int) -> None:
        if self._maintenance is not None:
            self._maintenance.rows_written(count)

    # -- identity ----------------------------------------------------------------------

    def _load_agent_id(self) -> str:
        row = self._db.conn.execute("SELECT value FROM meta WHERE key = 'agent_id'").fetchone()
        if row:
            return str(row[0])
        value = str(uuid.uuid4())
        self._attempt("the agent id", lambda db: put_agent_id(db, value))
        return value

    def agent_id(self) -> str:
        """A UUID created on first use and stable for the life of this state file."""
        return self._agent_id

    # -- result history ----------------------------------------------------------------

    def add_result(self, result: ProbeResult) -> None:
        """Append ``result`` to its check's history (see :mod:`agent.storage.history`)."""
        self._history.add(result)
        self._arm()

    def flush(self) -> None:
        """Write every queued history row, and wait until it and earlier batches are."""
        self._history.flush()

    def history(self, check: str, limit: int) -> list[dict[str, Any]]:
        """The newest ``limit`` results of ``check``, newest first (``to_json()`` dicts)."""
        return self._history.get(check, limit)

    def forget_checks(self, keep: Iterable[str]) -> None:
        """Delete the history of every check not in ``keep`` (removed on reload)."""
        self._history.forget(keep)

    # -- alert state -------------------------------------------------------------------

    def load_alert_states(self) -> dict[str, dict[str, Any]]:
        """Every persisted per-check alert state, by check name."""
        return AlertStates.load(self._db.conn)

    def save_alert(
        self,
        check: str,
        state: dict[str, Any] | None,
        rows: Sequence[NewOutboxRow] = (),
    ) -> list[OutboxRow]:
        """Persist one check's alert state and enqueue its events in one transaction.

        When the file does not take the write, both stay in memory: the events come
        back with ``durable=False`` and are delivered all the same.

        Args:
            check: check name.
            state: the new state, or None to delete it.
            rows: events to enqueue (due at once).

        Returns:
            The enqueued rows with their ids, in order.
        """
        self._arm()
        data = AlertStates.encode(state)

        def write(db: sqlite3.Connection) -> list[OutboxRow]:
            self._alerts.put(db, check, data)
            return Outbox.insert(db, rows)

        ok, out = self._attempt("alert state", write)
        if ok and out is not None:
            return out
        self._alerts.remember(check, data)
        return self._outbox.remember(rows)

    # -- outbox (the dispatcher's calls) -----------------------------------------------

    def outbox_pending_rows(self) -> list[OutboxRow]:
        """Every pending row in the file, oldest first (the dispatcher's schedule on start)."""
        return self._outbox.pending_rows(self._db.conn)

    def outbox_payload(self, row_id: int) -> str | None:
        """The event JSON of one row (None if it is gone)."""
        return self._outbox.payload(self._db.conn, row_id)

    def outbox_retry(self, row_id: int, *, attempts: int, next_attempt_at: float) -> None:
        """Record a failed attempt that will be retried at ``next_attempt_at``."""
        file_id = self._outbox.file_id(row_id)
        if file_id is not None:  # a lost attempt count only restarts the backoff
            self._attempt(
                "an alert retry",
                lambda db: Outbox.retry(db, file_id, attempts=attempts, at=next_attempt_at),
            )

    def outbox_retry_now(self, *, at: float) -> int:
        """Make every pending row due at ``at`` (on start: try the backlog at once)."""
        ok, count = self._attempt("the alert backlog", lambda db: Outbox.retry_now(db, at=at))
        return count if ok and count is not None else 0

    def outbox_finish(self, row_id: int, *, status: str, attempts: int, at: float) -> None:
        """Mark a row ``delivered``, ``failed`` or ``dropped``; it is never sent again."""
        self._finish([row_id], status=status, attempts=attempts, at=at)

    def outbox_drop(self, row_ids: Sequence[int], *, at: float) -> None:
        """Mark many rows ``dropped`` in one transaction (retry budget spent)."""
        self._finish(row_ids, status="dropped", attempts=None, at=at)

    def _finish(
        self, row_ids: Sequence[int], *, status: str, attempts: int | None, at: float
    ) -> None:
        ids = [i for i in map(self._outbox.forget, row_ids) if i is not None]
        if not ids:
            return

        def write(db: sqlite3.Connection) -> bool:
            for file_id in ids:
                if attempts is None:
                    db.execute(
                        "UPDATE outbox SET status = ?, done_at = ?, payload = '' WHERE id = ?",
                        (status, at, file_id),
                    )
                else:
                    Outbox.finish(db, file_id, status=status, attempts=attempts, at=at)
            return True

        ok, _ = self._attempt("alert delivery status", write)
        if not ok:
            for file_id in ids:
                self._outbox.keep_finish(file_id, status=status, attempts=attempts or 0, at=at)

    def outbox_drop_receivers(self, keep: Iterable[str], *, at: float) -> dict[str, int]:
        """Drop pending rows of receivers not in ``keep``; returns count per receiver."""
        keep_set = set(keep)
        db = self._db.conn
        counts: dict[str, int] = {
            receiver: int(n)
            for receiver, n in db.execute(
                "SELECT receiver, COUNT(*) FROM outbox WHERE status = 'pending' GROUP BY receiver"
            )
            if receiver not in keep_set
        }
        file_ids = [
            row_id
            for receiver in counts
            for (row_id,) in db.execute(
                "SELECT id FROM outbox WHERE receiver = ? AND status = 'pending'", (receiver,)
            )
        ]
        for receiver, ids in self._outbox.memory_receivers(keep_set).items():
            for row_id in ids:
                if self._outbox.forget(row_id) is None:  # only in memory: not counted above
                    counts[receiver] = counts.get(receiver, 0) + 1
        if file_ids:
            self.outbox_drop(file_ids, at=at)
        return counts

    def outbox_pending(self) -> int:
        """Events still waiting for delivery, over all receivers (file and memory)."""
        return self._outbox.pending(self._db.conn)

    def outbox_rows(self, *, receiver: str | None = None) -> list[OutboxRow]:
        """Every row in the file, oldest first (for inspection and tests)."""
        return Outbox.rows(self._db.conn, receiver=receiver)

    def outbox_prune(self, *, before: float) -> int:
        """Delete finished rows done before ``before``; returns how many."""
        ok, count = self._attempt(
            "outbox pruning", lambda db: Outbox.prune(db, before=before, keep=None)
        )
        return count if ok and count is not None else 0

    # -- faults and maintenance --------------------------------------------------------

    def _arm(self) -> None:
        """Start the maintenance tick once a loop runs (the store works without one)."""
        if self._tick_handle is None and not self._closed:
            with contextlib.suppress(RuntimeError):
                loop = asyncio.get_running_loop()
                self._tick_handle = loop.call_later(MAINTENANCE_INTERVAL, self._on_tick)

    def _on_tick(self) -> None:
        self._tick_handle = None
        if self._closed:
            return
        try:
            self.check_file()
            self.write_back()
        except Exception:
            log.exception("state file %s: maintenance failed", self.path)
        writer = self._db.executor()
        if writer is not None and self._maintenance is not None:
            writer.submit(self._maintenance.tick).add_done_callback(self._log_bug)
        self._arm()

    def _log_bug(self, done: concurrent.futures.Future[None]) -> None:
        """Log a maintenance round that failed for a reason other than the file."""
        exc = None if done.cancelled() else done.exception()
        if exc is not None:
            log.error("state file %s: maintenance failed: %s", self.path, exc, exc_info=exc)

    def maintain(self) -> None:
        """One maintenance round now, in this thread (the tick does it every second)."""
        self.check_file()
        self.write_back(force=True)
        self.maintenance.tick()

    def write_back(self, *, force: bool = False) -> bool:
        """While writes fail: try to write what memory holds (see :mod:`.recovery`).

        Returns:
            True when the file takes writes (again).
        """
        return self._recovery.write_back(force=force)

    def check_file(self) -> bool:
        """Recreate the state file if it was deleted or replaced while open.

        Returns:
            True when the file was recreated.
        """
        return self._recovery.check_file()

    def checkpoint(self, mode: str = "PASSIVE") -> tuple[int, int, int]:
        """Run a WAL checkpoint (thread-safe); SQLite's ``(busy, frames, checkpointed)``."""
        return self.maintenance.checkpoint(mode)

    def close(self) -> None:
        """Write queued history and what memory holds, then close the file."""
        self._closed = True
        if self._tick_handle is not None:
            self._tick_handle.cancel()
            self._tick_handle = None
        self._history.flush()
        if not self.write_back(force=True):
            log.error(
                "state file %s: stopping with %d alert state(s) and %d alert event(s) that"
                " could not be written; after the restart a firing alert may be sent again",
                self.path,
                self._alerts.unsaved,
                self._outbox.in_memory,
            )
        self._db.close()
