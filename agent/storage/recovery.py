"""What the store does when its file fails: one write gate, write-back, recreation.

- Every write on the event loop's thread goes through :meth:`Recovery.attempt`: a
  write the file refuses is counted and reported once by
  :class:`~agent.storage.health.StateHealth`, and the caller keeps what it carried
  in memory (alert state, events flagged ``durable=False``, finishes). While writes
  fail the file is not tried on every result, only by :meth:`Recovery.write_back`
  every :data:`RECOVERY_INTERVAL`, which also ends the failing period (and opens the
  file first if it could not be opened at start).
- :meth:`Recovery.check_file` notices a file deleted or replaced while open and
  recreates it from what the open connection still reads (alert state, pending
  events, with their ids) and from memory, so a restart afterwards neither repeats a
  firing nor loses a queued event.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Callable
from typing import TypeVar

from agent.storage.alert_state import AlertStates
from agent.storage.database import Database, Transaction
from agent.storage.faults import StateError
from agent.storage.history import History
from agent.storage.outbox import Outbox
from agent.storage.silences import SilenceTable

__all__ = ["RECOVERY_INTERVAL", "Recovery", "put_agent_id"]

log = logging.getLogger(__name__)

#: Seconds between two attempts to write back what a failing file did not take.
RECOVERY_INTERVAL = 2.0

_T = TypeVar("_T")


class Recovery:
    """The fault policy of one state file.

    Args:
        db: the state file.
        history: the results table (its counts and dropped rows).
        alerts: alert states not yet written.
        outbox: events and finishes not yet written.
    """

    def __init__(self, db: Database, history: History, alerts: AlertStates, outbox: Outbox) -> None:
        self._db = db
        self._history = history
        self._alerts = alerts
        self._outbox = outbox
        #: Written into a recreated file (set by the store once known).
        self.agent_id = ""
        self._last_recovery = 0.0

    def attempt(
        self, what: str, write: Callable[[sqlite3.Connection], _T]
    ) -> tuple[bool, _T | None]:
        """Run ``write`` in one transaction on the loop's connection.

        Args:
            what: what the write carries, for the log line if it fails.
            write: the statements, given the connection inside the transaction.

        Returns:
            ``(True, its result)``, or ``(False, None)`` when the file refused it (or is
            known to refuse writes: then it is not tried).
        """
        if not self._db.health.healthy:
            return False, None
        try:
            with Transaction(self._db.conn) as db:
                return True, write(db)
        except sqlite3.Error as exc:
            self._db.write_failed(exc, what=what)
            return False, None

    def write_back(self, *, force: bool = False) -> bool:
        """While writes fail: try to write what memory holds (every RECOVERY_INTERVAL).

        Args:
            force: try now, however recently the last attempt was.

        Returns:
            True when the file takes writes (again).
        """
        if self._db.health.healthy:
            return True
        now = time.monotonic()
        if not force and now - self._last_recovery < RECOVERY_INTERVAL:
            return False
        self._last_recovery = now
        if self._db.broken:
            try:
                self._db.reopen()
            except StateError as exc:
                self._db.health.failed(exc, what="the state file")
                return False
            self._history.recount()
        try:
            with Transaction(self._db.conn) as db:
                put_agent_id(db, self.agent_id)
                states = self._alerts.write_back(db)
                events = self._outbox.write_back(db)
        except sqlite3.Error as exc:
            self._db.write_failed(exc, what="alert state kept in memory")
            return False
        n_states, n_events = states(), events()
        lost, self._history.dropped = self._history.dropped, 0
        self._db.health.recovered(
            f": wrote back {n_states} alert state(s) and {n_events} alert event(s) kept in"
            f" memory; {lost} result(s) of history were not stored"
        )
        return True

    def check_file(self) -> bool:
        """Recreate the state file if it was deleted, replaced or found corrupt.

        Returns:
            True when the file was recreated.
        """
        if not self._db.replaced():
            return False
        what = "found corrupt" if self._db.corrupt else "deleted or replaced"
        self._history.flush()
        states: list[tuple[str, str]] = []
        events: list[tuple[object, ...]] = []
        # Each table on its own: damage in one must not lose what the other holds.
        try:
            states = AlertStates.snapshot(self._db.conn)
        except sqlite3.Error as exc:
            log.error("state file %s: alert state unreadable (%s)", self._db.path, exc)
        try:
            events = Outbox.snapshot(self._db.conn)
        except sqlite3.Error as exc:
            log.error("state file %s: queued alert events unreadable (%s)", self._db.path, exc)
        silences: list[tuple[str, str]] = []
        try:
            silences = SilenceTable.snapshot(self._db.conn)
        except sqlite3.Error as exc:
            log.error("state file %s: silences unreadable (%s)", self._db.path, exc)
        try:
            self._db.reopen()
        except StateError as exc:
            self._db.health.failed(exc, what="a new state file")
            for check, data in states:
                self._alerts.remember(check, data)
            return False
        try:
            with Transaction(self._db.conn) as db:
                put_agent_id(db, self.agent_id)
                AlertStates.restore(db, states)
                Outbox.restore(db, events)
                SilenceTable.restore(db, silences)
        except sqlite3.Error as exc:
            self._db.write_failed(exc, what="the recreated state file")
            for check, data in states:
                self._alerts.remember(check, data)
        self._history.recount()
        log.warning(
            "state file %s was %s while wsprobe ran: recreated it from memory with %d"
            " alert state(s), %d queued alert event(s) and %d silence(s); the result"
            " history starts empty",
            self._db.path,
            what,
            len(states),
            len(events),
            len(silences),
        )
        return True


def put_agent_id(db: sqlite3.Connection, value: str) -> bool:
    """Store the agent id unless the file already has one (inside a transaction)."""
    # OR IGNORE: a file opened late (full disk at start) keeps the id it already had.
    db.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('agent_id', ?)", (value,))
    return True
