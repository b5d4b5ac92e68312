"""The silences table in the agent's SQLite file: one JSON row per silence.

Self-contained: it opens the state file for each call and creates its table on first
use. Writes are rare (an operator creating or ending a silence), each one statement in
autocommit. A state file recreated while running (deleted, corrupt) keeps the silences:
the store copies them with :meth:`SilenceTable.snapshot` and :meth:`SilenceTable.restore`.

Raises :class:`sqlite3.Error` from every method when the file cannot be read or written.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = ["SilenceTable"]

_BUSY_TIMEOUT_MS = 5000
_SCHEMA = "CREATE TABLE IF NOT EXISTS silences (id TEXT PRIMARY KEY, data TEXT NOT NULL)"


class SilenceTable:
    """Silences stored as JSON records keyed by id.

    Each call opens the file anew (writes are rare): if the state file is recreated
    while the agent runs (deleted, corrupt), the next call reaches the new one.

    Args:
        path: the SQLite state file.
    """

    def __init__(self, path: str | Path) -> None:
        self._path = Path(path)

    @classmethod
    def open(cls, path: str | Path) -> SilenceTable:
        """The table in the SQLite file at ``path`` (created on first use)."""
        return cls(path)

    def close(self) -> None:
        """Nothing to release: no connection is held between calls."""

    @contextlib.contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self._path, isolation_level=None)
        try:
            db.execute(f"PRAGMA busy_timeout={_BUSY_TIMEOUT_MS}")
            db.execute(_SCHEMA)
            yield db
        finally:
            db.close()

    @staticmethod
    def snapshot(db: sqlite3.Connection) -> list[tuple[str, str]]:
        """Every stored row, to copy into a recreated file (none if the table is absent)."""
        if db.execute("SELECT 1 FROM sqlite_schema WHERE name = 'silences'").fetchone() is None:
            return []
        return [(str(i), str(d)) for i, d in db.execute("SELECT id, data FROM silences")]

    @staticmethod
    def restore(db: sqlite3.Connection, rows: list[tuple[str, str]]) -> None:
        """Insert rows taken by :meth:`snapshot` (inside the caller's transaction)."""
        if rows:
            db.execute(_SCHEMA)
            db.executemany("INSERT OR REPLACE INTO silences (id, data) VALUES (?, ?)", rows)

    def load(self) -> list[dict[str, Any]]:
        """Every stored record (unreadable rows are skipped)."""
        out: list[dict[str, Any]] = []
        with self._db() as db:
            rows = db.execute("SELECT data FROM silences ORDER BY rowid").fetchall()
        for (data,) in rows:
            try:
                record = json.loads(data)
            except ValueError:
                continue
            if isinstance(record, dict):
                out.append(record)
        return out

    def save(self, record: dict[str, Any]) -> None:
        """Insert or replace the record with ``record["id"]``."""
        with self._db() as db:
            db.execute(
                "INSERT INTO silences (id, data) VALUES (?, ?)"
                " ON CONFLICT (id) DO UPDATE SET data = excluded.data",
                (record["id"], json.dumps(record, separators=(",", ":"))),
            )

    def delete(self, ids: list[str]) -> None:
        """Remove the records with these ids."""
        with self._db() as db:
            db.executemany("DELETE FROM silences WHERE id = ?", [(i,) for i in ids])
