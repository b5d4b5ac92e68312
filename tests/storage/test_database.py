"""The SQLite store: bounded result history, identity, durability across reopen."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path

import pytest

import agent.storage.database as store_module
from agent.result import ProbeResult, Reason, StepResult, TLSInfo
from agent.storage.database import DB_FILENAME, Store


def result(check: str, n: int) -> ProbeResult:
    """The n-th result of ``check``; odd ones failed."""
    r = ProbeResult(check=check, kind="probe", url="ws://127.0.0.1/", started_at=float(n))
    r.phases = {"connect": 0.001 * n}
    if n % 2:
        return r.fail(Reason.CONNECT_REFUSED, "connection refused")
    r.success = True
    return r


def rows_in_db(path: Path, check: str) -> int:
    """Rows physically stored for ``check``."""
    with sqlite3.connect(path) as db:
        (count,) = db.execute(
            "SELECT COUNT(*) FROM results WHERE check_name = ?", (check,)
        ).fetchone()
    db.close()
    return int(count)


@pytest.mark.parametrize(
    ("size", "added", "limit", "expected"),
    [
        (5, 3, 10, [2, 1, 0]),
        (5, 100, 10, [99, 98, 97, 96, 95]),
        (50, 20, 3, [19, 18, 17]),
        (1, 4, 1, [3]),
    ],
    ids=["fewer-than-size", "bounded-to-size", "limit-smaller", "size-one"],
)
def test_history_newest_first_and_bounded(
    tmp_path: Path, size: int, added: int, limit: int, expected: list[int]
) -> None:
    """history() returns at most min(limit, history_size) results, newest first."""
    store = Store(tmp_path, history_size=size)
    for n in range(added):
        store.add_result(result("chat", n))
    store.add_result(result("other", 0))
    got = store.history("chat", limit)
    assert [int(r["started_at"]) for r in got] == expected
    assert rows_in_db(store.path, "chat") <= size + max(8, size // 4)
    store.close()


def test_history_is_to_json_shape(tmp_path: Path) -> None:
    """Stored results come back as ProbeResult.to_json() dicts."""
    store = Store(tmp_path)
    r = result("chat", 1)
    store.add_result(r)
    assert store.history("chat", 1) == [r.to_json()]
    assert store.history("missing", 5) == []
    store.close()


def test_history_and_identity_survive_reopen(tmp_path: Path) -> None:
    """A reopened store keeps its history bound, its results and its agent id."""
    store = Store(tmp_path, history_size=10)
    agent_id = store.agent_id()
    for n in range(15):
        store.add_result(result("chat", n))
    store.close()
    store = Store(tmp_path / DB_FILENAME, history_size=10)
    for n in range(15, 40):
        store.add_result(result("chat", n))
    assert store.agent_id() == agent_id
    assert [int(r["started_at"]) for r in store.history("chat", 3)] == [39, 38, 37]
    assert rows_in_db(store.path, "chat") <= 18
    store.close()


def test_forget_removed_checks(tmp_path: Path) -> None:
    """History of checks removed from the config is deleted."""
    store = Store(tmp_path)
    store.add_result(result("chat", 0))
    store.add_result(result("gone", 0))
    store.forget_checks(["chat"])
    assert store.history("gone", 5) == []
    assert len(store.history("chat", 5)) == 1
    store.close()


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


def test_stored_shape_equals_to_json_for_a_full_result(tmp_path: Path) -> None:
    """The fast encoder stores exactly what ProbeResult.to_json() would, nested parts too."""
    r = result("chat", 1)
    r.tls = TLSInfo(version="TLSv1.3", cipher="TLS_AES_128_GCM_SHA256", cert_not_after=2e9)
    r.steps = [StepResult(index=0, name="subscribe", duration=0.01, ok=False)]
    r.pings = [0.001, 0.002]
    r.degraded = ["handshake"]
    store = Store(tmp_path)
    store.add_result(r)
    assert store.history("chat", 1) == [r.to_json()]
    store.close()


def _wal_bytes(store: Store) -> int:
    wal = store.path.with_name(store.path.name + "-wal")
    return wal.stat().st_size if wal.exists() else 0


def test_wal_is_checkpointed_every_batch_of_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLite's in-COMMIT autocheckpoint is off, and the store's own keeps the WAL bounded."""
    monkeypatch.setattr(store_module, "CHECKPOINT_ROWS", 20)
    store = Store(tmp_path, history_size=1000)
    (auto,) = store._db.execute("PRAGMA wal_autocheckpoint").fetchone()
    assert auto == 0
    sizes = []
    for batch in range(10):
        for n in range(20):
            store.add_result(result("chat", batch * 20 + n))  # no loop: written at once
        sizes.append(_wal_bytes(store))
    # Without a checkpoint the WAL only grows (ten times the first batch); with one
    # every 20 rows it is reset and reused.
    assert sizes[-1] <= 2 * sizes[0], sizes
    assert len(store.history("chat", 1000)) == 200
    store.close()


async def test_history_writes_and_checkpoints_run_off_the_event_loop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Inside a running loop batches and checkpoints are written by a worker thread."""
    monkeypatch.setattr(store_module, "CHECKPOINT_ROWS", 5)
    monkeypatch.setattr(store_module, "HISTORY_FLUSH_INTERVAL", 0.01)
    threads: dict[str, list[str]] = {"write": [], "checkpoint": []}

    class Spy(Store):
        def _write(self, pending: list[tuple[str, str]], trim: list[str]) -> None:
            if pending:
                threads["write"].append(threading.current_thread().name)
            super()._write(pending, trim)

        def checkpoint(self) -> tuple[int, int, int]:
            threads["checkpoint"].append(threading.current_thread().name)
            return super().checkpoint()

    store = Spy(tmp_path)
    for n in range(5):
        store.add_result(result("chat", n))
    assert rows_in_db(store.path, "chat") == 0  # queued, not written on the loop
    deadline = asyncio.get_running_loop().time() + 5.0
    while not threads["checkpoint"] and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.01)
    assert rows_in_db(store.path, "chat") == 5
    # A read waits for the writer: it sees every row handed to it.
    store.add_result(result("chat", 5))
    assert [int(r["started_at"]) for r in store.history("chat", 2)] == [5, 4]
    store.close()
    me = threading.current_thread().name
    assert threads["write"]
    assert me not in threads["write"]
    assert threads["checkpoint"]
    assert me not in threads["checkpoint"]


async def test_a_batch_that_cannot_be_written_is_logged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A background write failure is logged with its cause, and the store keeps working."""
    monkeypatch.setattr(store_module, "HISTORY_FLUSH_INTERVAL", 0.01)
    monkeypatch.setattr(store_module, "BUSY_TIMEOUT_MS", 50)
    store = Store(tmp_path)
    store.add_result(result("chat", 0))
    store.flush()
    # Another connection holds the write lock for longer than the writer waits.
    blocker = sqlite3.connect(store.path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    store.add_result(result("chat", 1))
    deadline = asyncio.get_running_loop().time() + 5.0
    while "could not store" not in caplog.text and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.01)
    blocker.execute("ROLLBACK")
    blocker.close()
    assert "could not store queued results: database is locked" in caplog.text
    store.add_result(result("chat", 2))
    assert [int(r["started_at"]) for r in store.history("chat", 5)] == [2, 0]
    store.close()
