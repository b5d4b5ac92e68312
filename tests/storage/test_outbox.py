"""The outbox table: rows in the file, and rows kept in memory while the file refuses writes."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

import agent.storage.database as database_module
from agent.storage import NewOutboxRow, Store


def _event(n: int, receiver: str) -> NewOutboxRow:
    return NewOutboxRow(
        delivery_id=f"{receiver}-{n}",
        receiver=receiver,
        check=f"c{n}",
        event="firing",
        payload=f'{{"n": {n}}}',
        created_at=float(n),
    )


@contextmanager
def _locked(store: Store) -> Iterator[None]:
    """Another process-like connection holds the write lock: every write of the store fails."""
    blocker = sqlite3.connect(store.path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        yield
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Store]:
    """A store whose writes give up after 50 ms of waiting for a lock."""
    monkeypatch.setattr(database_module, "BUSY_TIMEOUT_MS", 50)
    s = Store(tmp_path)
    try:
        yield s
    finally:
        s.close()


def test_rows_of_a_removed_receiver_are_dropped_in_file_and_memory(store: Store) -> None:
    """Reload without a receiver: its rows, written or only in memory, are counted and gone."""
    written = store.save_alert("c0", None, [_event(0, "gone"), _event(0, "kept")])
    with _locked(store):
        memory = store.save_alert("c1", None, [_event(1, "gone"), _event(1, "kept")])
    assert [r.durable for r in written + memory] == [True, True, False, False]
    assert store.outbox_pending() == 4
    assert store.write_back(force=True)  # the kept receiver's memory row reaches the file
    with _locked(store):
        late = store.save_alert("c2", None, [_event(2, "gone")])
    assert not late[0].durable
    assert store.write_back(force=True)
    dropped = store.outbox_drop_receivers(["kept"], at=10.0)
    assert dropped == {"gone": 3}
    status = {r.delivery_id: r.status for r in store.outbox_rows()}
    assert status == {
        "gone-0": "dropped",
        "kept-0": "pending",
        "gone-1": "dropped",
        "kept-1": "pending",
        "gone-2": "dropped",
    }
    assert store.outbox_pending() == 2


def test_memory_rows_dropped_before_the_file_recovers_never_reach_it(store: Store) -> None:
    """A memory-only row dropped (budget spent) is not written back later."""
    with _locked(store):
        rows = store.save_alert("c1", {"status": "firing"}, [_event(1, "hook"), _event(2, "hook")])
        store.outbox_drop([rows[0].id], at=5.0)
        store.outbox_retry(rows[1].id, attempts=1, next_attempt_at=9.0)  # nothing to record yet
    assert store.outbox_pending() == 1
    assert store.write_back(force=True)
    assert [(r.delivery_id, r.status) for r in store.outbox_rows()] == [("hook-2", "pending")]
    store.outbox_retry(rows[1].id, attempts=2, next_attempt_at=20.0)
    (row,) = store.outbox_pending_rows()
    assert (row.attempts, row.next_attempt_at) == (2, 20.0)


def test_old_finished_rows_are_pruned_pending_ones_never(store: Store) -> None:
    """outbox_prune deletes finished rows done before the cut-off, and nothing pending."""
    rows = store.save_alert("c1", None, [_event(n, "hook") for n in range(3)])
    store.outbox_finish(rows[0].id, status="delivered", attempts=1, at=1.0)
    store.outbox_finish(rows[1].id, status="failed", attempts=1, at=100.0)
    assert store.outbox_prune(before=50.0) == 1
    assert [r.delivery_id for r in store.outbox_rows()] == ["hook-1", "hook-2"]
