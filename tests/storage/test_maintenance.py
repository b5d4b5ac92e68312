"""The state directory stays bounded: WAL checkpoints, pruning, vacuum, the size bound."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from agent.storage import Store
from agent.storage.maintenance import wal_limit
from agent.storage.outbox import DONE_RETENTION, NewOutboxRow
from tests.storage.conftest import result, rows_in_db


def _wal_bytes(store: Store) -> int:
    wal = store.path.with_name(store.path.name + "-wal")
    return wal.stat().st_size if wal.exists() else 0


def _file_bytes(store: Store) -> int:
    return sum(
        p.stat().st_size for p in store.path.parent.iterdir() if p.name.startswith(store.path.name)
    )


def _event(n: int, *, receiver: str = "hook", size: int = 2000) -> NewOutboxRow:
    return NewOutboxRow(
        delivery_id=f"d-{n}",
        receiver=receiver,
        check=f"c{n % 7}",
        event="firing",
        payload="x" * size,
        created_at=float(n),
    )


def test_loop_commits_never_checkpoint_but_a_tick_truncates_the_wal(tmp_path: Path) -> None:
    """No checkpoint runs inside a COMMIT; past its limit the WAL is cut to zero by a tick."""
    store = Store(tmp_path, max_bytes=2 * 1024 * 1024)
    (auto,) = store._db.conn.execute("PRAGMA wal_autocheckpoint").fetchone()
    assert auto == 0
    limit = wal_limit(store.maintenance.max_bytes)
    n = 0
    while _wal_bytes(store) <= limit:
        store.save_alert(f"c{n % 50}", {"status": "firing", "consecutive_failures": n})
        n += 1
    grown = _wal_bytes(store)
    # A passive checkpoint copies the frames but leaves the file at its high-water mark.
    store.checkpoint("PASSIVE")
    assert _wal_bytes(store) == grown
    store.maintain()
    assert _wal_bytes(store) == 0
    assert store.load_alert_states()["c1"]["status"] == "firing"
    store.close()


def test_history_rows_trigger_passive_checkpoints(tmp_path: Path) -> None:
    """Written history batches checkpoint every CHECKPOINT_ROWS rows, so the WAL is reused."""
    import agent.storage.maintenance as maintenance_module

    old = maintenance_module.CHECKPOINT_ROWS
    maintenance_module.CHECKPOINT_ROWS = 20
    try:
        store = Store(tmp_path, history_size=1000)
        sizes = []
        for batch in range(10):
            for n in range(20):
                store.add_result(result("chat", batch * 20 + n))  # no loop: written at once
            sizes.append(_wal_bytes(store))
        # Without a checkpoint the WAL only grows (ten times the first batch).
        assert sizes[-1] <= 2 * sizes[0], sizes
        assert len(store.history("chat", 1000)) == 200
        store.close()
    finally:
        maintenance_module.CHECKPOINT_ROWS = old


def test_finished_events_lose_their_payload_and_are_pruned(tmp_path: Path) -> None:
    """A finished row keeps metadata only; rows older than the retention go at the tick."""
    store = Store(tmp_path)
    rows = store.save_alert("c1", {"status": "firing"}, [_event(1), _event(2)])
    store.outbox_finish(rows[0].id, status="delivered", attempts=1, at=1.0)
    assert store.outbox_payload(rows[0].id) == ""
    assert store.outbox_payload(rows[1].id) == "x" * 2000
    store.maintain()  # the first tick prunes: done at t=1 is long past the retention
    assert [r.id for r in store.outbox_rows()] == [rows[1].id]
    assert DONE_RETENTION > 0
    store.close()


def test_incremental_vacuum_gives_space_back(tmp_path: Path) -> None:
    """Deleted history is handed back to the file system by the maintenance tick."""
    store = Store(tmp_path, history_size=5000)
    with sqlite3.connect(store.path) as db:
        (mode,) = db.execute("PRAGMA auto_vacuum").fetchone()
    db.close()
    assert mode == 2  # incremental
    for n in range(3000):
        store.add_result(result("gone", n))
    store.maintain()
    full = store.path.stat().st_size
    store.forget_checks(["kept"])
    store.maintain()
    assert store.path.stat().st_size < full / 4, (full, store.path.stat().st_size)
    store.close()


def test_an_old_file_is_converted_to_incremental_vacuum(tmp_path: Path) -> None:
    """A file created without auto_vacuum is converted once when opened."""
    path = tmp_path / "wsprobe.sqlite3"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        db.execute("INSERT INTO meta VALUES ('agent_id', 'old-id')")
    db.close()
    store = Store(path)
    (mode,) = store._db.conn.execute("PRAGMA auto_vacuum").fetchone()
    assert mode == 2
    assert store.agent_id() == "old-id"
    store.close()


def test_the_bound_trims_oldest_history_and_keeps_alert_state(tmp_path: Path) -> None:
    """Over state_max_bytes, the oldest history goes; alert state and pending events stay."""
    bound = 1024 * 1024
    store = Store(tmp_path, history_size=10_000, max_bytes=bound)
    queued = store.save_alert("c1", {"status": "firing"}, [_event(1)])
    for n in range(4000):
        store.add_result(result("chat", n))
    assert _file_bytes(store) > bound
    store.maintain()
    assert _file_bytes(store) <= bound
    kept = [int(r["started_at"]) for r in store.history("chat", 10_000)]
    assert kept[:1] == [3999]  # newest kept, oldest gone
    assert len(kept) < 4000
    assert rows_in_db(store.path, "chat") == len(kept)
    assert store.load_alert_states() == {"c1": {"status": "firing"}}
    assert [r.id for r in store.outbox_pending_rows()] == [queued[0].id]
    assert store.maintenance.peak_total <= bound
    store.close()
