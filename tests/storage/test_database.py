"""The state file: where it goes, how it is opened, what it refuses."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from agent.storage import DB_FILENAME, Store


def test_store_uses_wal_in_a_created_state_dir(tmp_path: Path) -> None:
    """A missing state directory is created and the database runs in WAL mode."""
    store = Store(tmp_path / "state" / DB_FILENAME)
    assert store.path.exists()
    with sqlite3.connect(store.path) as db:
        (mode,) = db.execute("PRAGMA journal_mode").fetchone()
    db.close()
    assert mode == "wal"
    store.close()


def test_missing_state_dir_gets_default_file(tmp_path: Path) -> None:
    """A state_dir path that does not exist yet becomes a directory holding the database."""
    store = Store(tmp_path / ".wsprobe-state")
    assert store.path == tmp_path / ".wsprobe-state" / DB_FILENAME
    store.close()
