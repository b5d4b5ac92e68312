"""Result history: newest first, bounded per check, batched off the event loop."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path

import pytest

import agent.storage.database as database_module
import agent.storage.history as history_module
import agent.storage.maintenance as maintenance_module
from agent.result import StepResult, TLSInfo
from agent.storage import DB_FILENAME, Store
from agent.storage.history import History
from agent.storage.maintenance import Maintenance
from tests.storage.conftest import result, rows_in_db


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


async def test_history_writes_and_checkpoints_run_off_the_event_loop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Inside a running loop batches and checkpoints are written by the writer thread."""
    monkeypatch.setattr(maintenance_module, "CHECKPOINT_ROWS", 5)
    monkeypatch.setattr(history_module, "HISTORY_FLUSH_INTERVAL", 0.01)
    threads: dict[str, list[str]] = {"write": [], "checkpoint": []}
    write, checkpoint = History.write, Maintenance.checkpoint

    def spy_write(self: History, pending: list[tuple[str, str]], trim: list[str]) -> None:
        if pending:
            threads["write"].append(threading.current_thread().name)
        write(self, pending, trim)

    def spy_checkpoint(self: Maintenance, mode: str = "PASSIVE") -> tuple[int, int, int]:
        threads["checkpoint"].append(threading.current_thread().name)
        return checkpoint(self, mode)

    monkeypatch.setattr(History, "write", spy_write)
    monkeypatch.setattr(Maintenance, "checkpoint", spy_checkpoint)
    store = Store(tmp_path)
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


async def test_a_batch_that_cannot_be_written_is_reported_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A failed background batch is logged once with its cause; writes resume after it."""
    monkeypatch.setattr(history_module, "HISTORY_FLUSH_INTERVAL", 0.01)
    monkeypatch.setattr(database_module, "BUSY_TIMEOUT_MS", 50)
    store = Store(tmp_path)
    store.add_result(result("chat", 0))
    store.flush()
    # Another connection holds the write lock for longer than the writer waits.
    blocker = sqlite3.connect(store.path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    store.add_result(result("chat", 1))
    deadline = asyncio.get_running_loop().time() + 5.0
    while store.health.healthy and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.01)
    store.add_result(result("chat", 3))  # not even tried while writes fail
    store.flush()
    blocker.execute("ROLLBACK")
    blocker.close()
    failing = [r for r in caplog.records if "cannot write" in r.getMessage()]
    assert len(failing) == 1, caplog.text
    assert "cannot write result history (1 results) (database is locked)" in caplog.text
    assert store.health.write_errors == 1
    assert store.write_back(force=True)
    assert "writing works again" in caplog.text
    assert "2 result(s) of history were not stored" in caplog.text
    store.add_result(result("chat", 2))
    assert [int(r["started_at"]) for r in store.history("chat", 5)] == [2, 0]
    store.close()
