"""The alert outbox's table: its rows and the queries the dispatcher runs on them.

A part of :class:`agent.storage.database.Store` (the one SQLite file), kept in its own module:
:class:`OutboxTable` holds the outbox queries, ``Store`` the connection, the schema,
history and alert state (``save_alert`` enqueues rows in the same transaction as the
alert state it changes). Each method is one short statement or transaction.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

__all__ = ["NewOutboxRow", "OutboxRow", "OutboxTable", "Transaction"]

_SELECT_ROWS = (
    "SELECT id, delivery_id, receiver, check_name, event, created_at, attempts,"
    " next_attempt_at, status FROM outbox"
)


@dataclass(frozen=True, slots=True)
class OutboxRow:
    """One event queued for one receiver (its payload is read only when sent)."""

    id: int
    delivery_id: str
    receiver: str
    check: str
    event: str
    created_at: float
    attempts: int = 0
    next_attempt_at: float = 0.0
    status: str = "pending"


@dataclass(frozen=True, slots=True)
class NewOutboxRow:
    """An event to enqueue; the store assigns the row id."""

    delivery_id: str
    receiver: str
    check: str
    event: str
    payload: str
    created_at: float


class OutboxTable:
    """Outbox queries over ``self._db`` (provided by :class:`agent.storage.database.Store`)."""

    _db: sqlite3.Connection

    def outbox_pending_rows(self) -> list[OutboxRow]:
        """Every pending row, oldest first (the dispatcher's schedule on start)."""
        rows = self._db.execute(_SELECT_ROWS + " WHERE status = 'pending' ORDER BY id")
        return [OutboxRow(*row) for row in rows]

    def outbox_payload(self, row_id: int) -> str | None:
        """The event JSON of one row (None if it is gone)."""
        row = self._db.execute("SELECT payload FROM outbox WHERE id = ?", (row_id,)).fetchone()
        return str(row[0]) if row else None

    def outbox_retry(self, row_id: int, *, attempts: int, next_attempt_at: float) -> None:
        """Record a failed attempt that will be retried at ``next_attempt_at``."""
        self._db.execute(
            "UPDATE outbox SET attempts = ?, next_attempt_at = ? WHERE id = ?",
            (attempts, next_attempt_at, row_id),
        )

    def outbox_retry_now(self, *, at: float) -> int:
        """Make every pending row due at ``at`` (on start: try the backlog at once)."""
        cur = self._db.execute(
            "UPDATE outbox SET next_attempt_at = ?"
            " WHERE status = 'pending' AND next_attempt_at > ?",
            (at, at),
        )
        return cur.rowcount

    def outbox_finish(self, row_id: int, *, status: str, attempts: int, at: float) -> None:
        """Mark a row ``delivered``, ``failed`` or ``dropped``; it is never sent again."""
        self._db.execute(
            "UPDATE outbox SET status = ?, attempts = ?, done_at = ? WHERE id = ?",
            (status, attempts, at, row_id),
        )

    def outbox_drop(self, row_ids: Sequence[int], *, at: float) -> None:
        """Mark many rows ``dropped`` in one transaction (retry budget spent)."""
        with self._transaction():
            self._db.executemany(
                "UPDATE outbox SET status = 'dropped', done_at = ? WHERE id = ?",
                [(at, row_id) for row_id in row_ids],
            )

    def outbox_drop_receivers(self, keep: Iterable[str], *, at: float) -> dict[str, int]:
        """Drop pending rows of receivers not in ``keep``; returns count per receiver."""
        keep_set = set(keep)
        counts = dict(
            self._db.execute(
                "SELECT receiver, COUNT(*) FROM outbox WHERE status = 'pending' GROUP BY receiver"
            )
        )
        gone = {name: n for name, n in counts.items() if name not in keep_set}
        with self._transaction():
            for name in gone:
                self._db.execute(
                    "UPDATE outbox SET status = 'dropped', done_at = ?"
                    " WHERE receiver = ? AND status = 'pending'",
                    (at, name),
                )
        return gone

    def outbox_pending(self) -> int:
        """Rows still waiting for delivery, over all receivers."""
        (count,) = self._db.execute(
            "SELECT COUNT(*) FROM outbox WHERE status = 'pending'"
        ).fetchone()
        return int(count)

    def outbox_rows(self, *, receiver: str | None = None) -> list[OutboxRow]:
        """Every row, oldest first (for inspection and tests)."""
        if receiver is None:
            rows = self._db.execute(_SELECT_ROWS + " ORDER BY id")
        else:
            rows = self._db.execute(_SELECT_ROWS + " WHERE receiver = ? ORDER BY id", (receiver,))
        return [OutboxRow(*row) for row in rows]

    def outbox_prune(self, *, before: float) -> int:
        """Delete finished rows done before ``before``; returns how many."""
        cur = self._db.execute(
            "DELETE FROM outbox WHERE status != 'pending' AND done_at < ?", (before,)
        )
        return cur.rowcount

    def _transaction(self) -> Transaction:
        return Transaction(self._db)


class Transaction:
    """BEGIN IMMEDIATE ... COMMIT, ROLLBACK on error."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self._db.execute("COMMIT" if exc_type is None else "ROLLBACK")
