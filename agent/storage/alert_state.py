"""The ``alert_state`` table: one JSON document per check, and what could not be saved.

The documents are whatever the alerting layer hands over (storage does not interpret
them). A state that could not be written (disk full) is kept here until
:meth:`AlertStates.write_back` succeeds, so the file catches up with memory and a
restart after the fault does not repeat a firing.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from typing import Any

__all__ = ["AlertStates"]


class AlertStates:
    """Queries on ``alert_state``; each runs inside the caller's transaction."""

    def __init__(self) -> None:
        #: check -> JSON (None: delete) not yet in the file, newest value only.
        self._unsaved: dict[str, str | None] = {}

    @property
    def unsaved(self) -> int:
        """States waiting to be written back."""
        return len(self._unsaved)

    @staticmethod
    def load(db: sqlite3.Connection) -> dict[str, dict[str, Any]]:
        """Every persisted state, by check name."""
        rows = db.execute("SELECT check_name, data FROM alert_state")
        return {name: json.loads(data) for name, data in rows}

    @staticmethod
    def encode(state: dict[str, Any] | None) -> str | None:
        """The stored form of ``state`` (None deletes)."""
        return None if state is None else json.dumps(state, separators=(",", ":"))

    def put(self, db: sqlite3.Connection, check: str, data: str | None) -> None:
        """Write (or with None delete) one check's state; supersedes an unsaved one."""
        _put(db, check, data)
        self._unsaved.pop(check, None)

    def remember(self, check: str, data: str | None) -> None:
        """Keep a state that could not be written, for :meth:`write_back`."""
        self._unsaved[check] = data

    def write_back(self, db: sqlite3.Connection) -> Callable[[], int]:
        """Write every unsaved state; call the result after the COMMIT succeeded.

        Returns:
            A function that forgets the written states and returns how many.
        """
        written = dict(self._unsaved)
        for check, data in written.items():
            _put(db, check, data)

        def committed() -> int:
            for check, data in written.items():
                if self._unsaved.get(check, "") == data:
                    del self._unsaved[check]
            return len(written)

        return committed

    @staticmethod
    def snapshot(db: sqlite3.Connection) -> list[tuple[str, str]]:
        """Every stored row, to copy into a recreated file."""
        return [(str(name), str(data)) for name, data in db.execute(
            "SELECT check_name, data FROM alert_state"
        )]  # fmt: skip

    @staticmethod
    def restore(db: sqlite3.Connection, rows: list[tuple[str, str]]) -> None:
        """Insert rows taken by :meth:`snapshot`."""
        db.executemany("INSERT OR REPLACE INTO alert_state (check_name, data) VALUES (?, ?)", rows)


def _put(db: sqlite3.Connection, check: str, data: str | None) -> None:
    if data is None:
        db.execute("DELETE FROM alert_state WHERE check_name = ?", (check,))
    else:
        db.execute(
            "INSERT INTO alert_state (check_name, data) VALUES (?, ?)"
            " ON CONFLICT (check_name) DO UPDATE SET data = excluded.data",
            (check, data),
        )
