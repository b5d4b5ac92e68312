"""The alert outbox's table: its rows, the dispatcher's queries, and a memory fallback.

Each event queued for a receiver is a row; the dispatcher reads the pending ones on
start and marks each one ``delivered``, ``failed`` or ``dropped`` exactly once.
A finished row keeps its metadata for inspection but not its payload (the bulk of a
row), and is pruned after :data:`DONE_RETENTION` or beyond the newest
:data:`DONE_KEEP` rows.

When the file does not take writes (disk full), new events get negative ids and
live in memory (``durable=False``): they are still delivered, and written to the
file by :meth:`Outbox.write_back` once it takes writes again. A finish that could
not be recorded is kept too, so a delivered event is not sent again after a restart.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

__all__ = ["DONE_KEEP", "DONE_RETENTION", "NewOutboxRow", "Outbox", "OutboxRow"]

#: Finished (delivered, failed, dropped) rows are kept this long for inspection...
DONE_RETENTION = 86400.0
#: ...and at most this many of them (a busy day would otherwise grow the file).
DONE_KEEP = 10_000

_SELECT_ROWS = (
    "SELECT id, delivery_id, receiver, check_name, event, created_at, attempts,"
    " next_attempt_at, status FROM outbox"
)
# Every column, payload included: a recreated file gets the rows as they were.
_SELECT_ALL = (
    "SELECT id, delivery_id, receiver, check_name, event, created_at, attempts,"
    " next_attempt_at, status, payload, done_at FROM outbox"
)
_RESTORE = (
    "INSERT OR IGNORE INTO outbox (id, delivery_id, receiver, check_name, event, created_at,"
    " attempts, next_attempt_at, status, payload, done_at)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
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
    #: False while the row exists only in memory (the file did not take the write).
    durable: bool = True


@dataclass(frozen=True, slots=True)
class NewOutboxRow:
    """An event to enqueue; the store assigns the row id."""

    delivery_id: str
    receiver: str
    check: str
    event: str
    payload: str
    created_at: float


@dataclass(slots=True)
class _MemoryRow:
    row: NewOutboxRow
    #: Its id in the file once written back.
    db_id: int | None = None


class Outbox:
    """Queries on ``outbox`` plus the rows and finishes the file has not taken yet."""

    def __init__(self) -> None:
        self._memory: dict[int, _MemoryRow] = {}
        self._next_memory_id = -1
        #: file row id -> (status, attempts, at) of finishes not yet recorded.
        self._unsaved_finish: dict[int, tuple[str, int, float]] = {}

    @property
    def in_memory(self) -> int:
        """Pending events not (yet) in the file."""
        return sum(1 for m in self._memory.values() if m.db_id is None)

    # -- inside a transaction of the caller's --------------------------------------------

    @staticmethod
    def insert(db: sqlite3.Connection, rows: Sequence[NewOutboxRow]) -> list[OutboxRow]:
        """Insert ``rows`` (due at once); returns them with their ids, in order."""
        out: list[OutboxRow] = []
        for r in rows:
            cur = db.execute(
                "INSERT INTO outbox (delivery_id, receiver, check_name, event, payload,"
                " created_at, next_attempt_at) VALUES (?, ?, ?, ?, ?, ?, 0)",
                (r.delivery_id, r.receiver, r.check, r.event, r.payload, r.created_at),
            )
            assert cur.lastrowid is not None
            out.append(
                OutboxRow(cur.lastrowid, r.delivery_id, r.receiver, r.check, r.event, r.created_at)
            )
        return out

    def remember(self, rows: Sequence[NewOutboxRow]) -> list[OutboxRow]:
        """Keep ``rows`` in memory only; they get negative ids and ``durable=False``."""
        out: list[OutboxRow] = []
        for r in rows:
            row_id = self._next_memory_id
            self._next_memory_id -= 1
            self._memory[row_id] = _MemoryRow(r)
            out.append(
                OutboxRow(
                    row_id, r.delivery_id, r.receiver, r.check, r.event, r.created_at, durable=False
                )
            )
        return out

    def write_back(self, db: sqlite3.Connection) -> Callable[[], int]:
        """Insert the memory rows and record the kept finishes.

        Returns:
            Call it after the COMMIT succeeded: it links the memory rows to their new
            ids and returns how many events were written.
        """
        new = [(mid, m) for mid, m in self._memory.items() if m.db_id is None]
        ids = [row.id for row in self.insert(db, [m.row for _, m in new])]
        finishes = dict(self._unsaved_finish)
        for row_id, (status, attempts, at) in finishes.items():
            _finish(db, row_id, status, attempts, at)

        def committed() -> int:
            for (_, m), db_id in zip(new, ids, strict=True):
                m.db_id = db_id
            for row_id in finishes:
                self._unsaved_finish.pop(row_id, None)
            return len(new)

        return committed

    @staticmethod
    def snapshot(db: sqlite3.Connection) -> list[tuple[object, ...]]:
        """Every pending row with its payload, to copy into a recreated file."""
        rows = db.execute(_SELECT_ALL + " WHERE status = 'pending'")
        return [tuple(row) for row in rows]

    @staticmethod
    def restore(db: sqlite3.Connection, rows: list[tuple[object, ...]]) -> None:
        """Insert rows taken by :meth:`snapshot`, keeping their ids."""
        db.executemany(_RESTORE, rows)

    @staticmethod
    def prune(db: sqlite3.Connection, *, before: float, keep: int | None = DONE_KEEP) -> int:
        """Delete finished rows done before ``before`` or beyond the newest ``keep``."""
        if keep is None:
            cur = db.execute(
                "DELETE FROM outbox WHERE status != 'pending' AND done_at < ?", (before,)
            )
            return cur.rowcount
        cur = db.execute(
            "DELETE FROM outbox WHERE status != 'pending' AND (done_at < ? OR id <= ("
            " SELECT id FROM outbox WHERE status != 'pending' ORDER BY id DESC"
            " LIMIT 1 OFFSET ?))",
            (before, keep),
        )
        return cur.rowcount

    # -- the dispatcher's calls (each one statement or transaction) ------------------------

    def pending_rows(self, db: sqlite3.Connection) -> list[OutboxRow]:
        """Every pending row in the file, oldest first (the schedule on start)."""
        rows = db.execute(_SELECT_ROWS + " WHERE status = 'pending' ORDER BY id")
        return [OutboxRow(*row) for row in rows]

    def payload(self, db: sqlite3.Connection, row_id: int) -> str | None:
        """The event JSON of one row (None if it is gone)."""
        memory = self._memory.get(row_id)
        if memory is not None:
            return memory.row.payload
        row = db.execute("SELECT payload FROM outbox WHERE id = ?", (row_id,)).fetchone()
        return str(row[0]) if row else None

    def file_id(self, row_id: int) -> int | None:
        """The row's id in the file (None while it lives in memory only)."""
        if row_id > 0:
            return row_id
        memory = self._memory.get(row_id)
        return memory.db_id if memory is not None else None

    @staticmethod
    def retry(db: sqlite3.Connection, row_id: int, *, attempts: int, at: float) -> None:
        """Record a failed attempt that will be retried at ``at``."""
        db.execute(
            "UPDATE outbox SET attempts = ?, next_attempt_at = ? WHERE id = ?",
            (attempts, at, row_id),
        )

    @staticmethod
    def retry_now(db: sqlite3.Connection, *, at: float) -> int:
        """Make every pending row due at ``at``."""
        cur = db.execute(
            "UPDATE outbox SET next_attempt_at = ?"
            " WHERE status = 'pending' AND next_attempt_at > ?",
            (at, at),
        )
        return cur.rowcount

    def forget(self, row_id: int) -> int | None:
        """Drop a memory row once finished; returns its id in the file, if it has one."""
        memory = self._memory.pop(row_id, None)
        if memory is None:
            return row_id if row_id > 0 else None
        return memory.db_id

    @staticmethod
    def finish(
        db: sqlite3.Connection, row_id: int, *, status: str, attempts: int, at: float
    ) -> None:
        """Mark a row in the file ``delivered``, ``failed`` or ``dropped``."""
        _finish(db, row_id, status, attempts, at)

    def keep_finish(self, row_id: int, *, status: str, attempts: int, at: float) -> None:
        """Remember a finish the file did not take, for :meth:`write_back`."""
        self._unsaved_finish[row_id] = (status, attempts, at)

    def memory_receivers(self, keep: Iterable[str]) -> dict[str, list[int]]:
        """Memory rows of receivers not in ``keep``, by receiver."""
        keep_set = set(keep)
        gone: dict[str, list[int]] = {}
        for row_id, memory in self._memory.items():
            if memory.row.receiver not in keep_set:
                gone.setdefault(memory.row.receiver, []).append(row_id)
        return gone

    def pending(self, db: sqlite3.Connection) -> int:
        """Events still waiting for delivery, in the file and in memory."""
        (count,) = db.execute("SELECT COUNT(*) FROM outbox WHERE status = 'pending'").fetchone()
        return max(0, int(count) - len(self._unsaved_finish)) + self.in_memory

    @staticmethod
    def rows(db: sqlite3.Connection, *, receiver: str | None = None) -> list[OutboxRow]:
        """Every row in the file, oldest first (for inspection and tests)."""
        if receiver is None:
            rows = db.execute(_SELECT_ROWS + " ORDER BY id")
        else:
            rows = db.execute(_SELECT_ROWS + " WHERE receiver = ? ORDER BY id", (receiver,))
        return [OutboxRow(*row) for row in rows]


def _finish(db: sqlite3.Connection, row_id: int, status: str, attempts: int, at: float) -> None:
    # The payload is only needed to send: a finished row keeps just its metadata.
    db.execute(
        "UPDATE outbox SET status = ?, attempts = ?, done_at = ?, payload = '' WHERE id = ?",
        (status, attempts, at, row_id),
    )
