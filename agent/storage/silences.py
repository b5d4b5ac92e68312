"""The silences table in the agent's SQLite file: one JSON row per silence.

Self-contained: it takes a connection to the state file (its own by default,
:meth:`SilenceTable.open`) and creates its table on first use. Writes are rare (an
operator creating or ending a silence), each one statement in autocommit.

Raises :class:`sqlite3.Error` from every method when the file cannot be read or written.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

__all__ = ["SilenceTable"]

_BUSY_TIMEOUT_MS = 5000
_SCHEMA = "CREATE TABLE IF NOT EXISTS silences (id TEXT PRIMARY KEY, data TEXT NOT NULL)"


class SilenceTable:
    """Silences stored as JSON records keyed by id.

    Args:
        db: an open connection to the state file (autocommit: ``isolation_level=None``).
    """

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db
        self._db.execute(_SCHEMA)

    @classmethod
    def open(cls, path: str | Path) -> SilenceTable:
        """A table on a connection of its own to the SQLite file at ``path``."""
        db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        db.execute(f"PRAGMA busy_timeout={_BUSY_TIMEOUT_MS}")
        return cls(db)

    def close(self) -> None:
        """Close the connection."""
        self._db.close()

    def load(self) -> list[dict[str, Any]]:
        """Every stored record (unreadable rows are skipped)."""
        out: list[dict[str, Any]] = []
        for (data,) in self._db.execute("SELECT data FROM silences ORDER BY rowid"):
            try:
                record = json.loads(data)
            except ValueError:
                continue
            if isinstance(record, dict):
                out.append(record)
        return out

    def save(self, record: dict[str, Any]) -> None:
        """Insert or replace the record with ``record["id"]``."""
        self._db.execute(
            "INSERT INTO silences (id, data) VALUES (?, ?)"
            " ON CONFLICT (id) DO UPDATE SET data = excluded.data",
            (record["id"], json.dumps(record, separators=(",", ":"))),
        )

    def delete(self, ids: list[str]) -> None:
        """Remove the records with these ids."""
        self._db.executemany("DELETE FROM silences WHERE id = ?", [(i,) for i in ids])
