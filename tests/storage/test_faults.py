"""A full, read-only, corrupt or deleted state file: real files on real file systems."""

from __future__ import annotations

import logging
import os
import sqlite3
from pathlib import Path

import pytest

import agent.storage.faults as faults_module
from agent.storage import DB_FILENAME, NewOutboxRow, StateError, Store
from agent.storage.faults import KEEP_CORRUPT
from agent.storage.silences import SilenceTable
from tests.storage.conftest import fill_disk, mounted_tmpfs, remount_read_only, result


def _event(n: int, *, check: str = "c1") -> NewOutboxRow:
    return NewOutboxRow(
        delivery_id=f"d-{n}",
        receiver="hook",
        check=check,
        event="firing",
        payload=f'{{"n": {n}}}',
        created_at=float(n),
    )


def _messages(caplog: pytest.LogCaptureFixture, text: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if text in r.getMessage()]


def test_disk_full_keeps_alerts_in_memory_and_writes_them_back(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """On a full tmpfs events stay deliverable, one line says so, one says it recovered."""
    caplog.set_level(logging.INFO)
    with mounted_tmpfs(tmp_path / "state", size="300k") as state:
        store = Store(state)
        (first,) = store.save_alert("c1", {"status": "firing", "n": 0}, [_event(0)])
        assert first.durable
        filler = fill_disk(state)
        memory = [store.save_alert("c1", {"status": "firing", "n": n}, [_event(n)])[0]
                  for n in range(1, 20)]  # fmt: skip
        for n in range(50):
            store.add_result(result("c1", n))
        store.maintain()
        assert all(not row.durable and row.id < 0 for row in memory)
        assert store.outbox_payload(memory[0].id) == '{"n": 1}'  # deliverable from memory
        assert store.outbox_pending() == 20
        store.outbox_finish(first.id, status="delivered", attempts=1, at=5.0)
        store.outbox_finish(memory[0].id, status="delivered", attempts=1, at=5.0)
        healthy, errors = store.health.snapshot()
        assert not healthy
        assert errors >= 1
        assert len(_messages(caplog, "cannot write")) == 1
        assert "database or disk is full" in _messages(caplog, "cannot write")[0]

        filler.unlink()
        assert store.write_back(force=True)
        assert store.health.healthy
        (recovered,) = _messages(caplog, "writing works again")
        # The event delivered while in memory only is never written.
        assert "1 alert state(s) and 18 alert event(s)" in recovered
        assert store.load_alert_states() == {"c1": {"status": "firing", "n": 19}}
        status = {r.delivery_id: r.status for r in store.outbox_rows()}
        assert status["d-0"] == "delivered"  # the finish kept in memory was recorded
        assert "d-1" not in status
        assert [status[f"d-{n}"] for n in range(2, 20)] == ["pending"] * 18
        # A memory row's later finish reaches its row in the file.
        store.outbox_finish(memory[1].id, status="delivered", attempts=1, at=6.0)
        assert {r.delivery_id: r.status for r in store.outbox_rows()}["d-2"] == "delivered"
        store.close()
        reopened = Store(state)
        assert reopened.load_alert_states() == {"c1": {"status": "firing", "n": 19}}
        assert len(reopened.outbox_pending_rows()) == 17
        reopened.close()
    assert len(_messages(caplog, "cannot write")) == 1


@pytest.mark.parametrize("existing", [False, True], ids=["empty-dir", "existing-file"])
def test_read_only_state_dir_is_one_clear_error(tmp_path: Path, existing: bool) -> None:
    """A read-only state directory raises StateError naming the path and the cause."""
    with mounted_tmpfs(tmp_path / "state", size="1m") as state:
        if existing:
            Store(state).close()
        remount_read_only(state)
        with pytest.raises(StateError) as caught:
            Store(state)
    assert (
        str(caught.value) == f"state directory {state}: cannot write there: Read-only file system"
    )


def _valid_file(state: Path) -> Path:
    store = Store(state)
    for n in range(200):
        store.add_result(result("chat", n))
    store.save_alert("chat", {"status": "firing"})
    store.close()
    return state / DB_FILENAME


def _garbage_header(path: Path) -> None:
    path.write_bytes(os.urandom(4096) + path.read_bytes()[4096:])


def _garbage_pages(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[4096 * 2 : 4096 * 6] = os.urandom(4096 * 4)
    path.write_bytes(bytes(data))


def _truncated(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])


@pytest.mark.parametrize(
    "damage", [_garbage_header, _garbage_pages, _truncated], ids=["header", "pages", "truncated"]
)
def test_corrupt_file_is_moved_aside_and_a_fresh_one_started(
    tmp_path: Path, damage: object, caplog: pytest.LogCaptureFixture
) -> None:
    """A damaged file is renamed (named in the log, with what was lost); the store works."""
    path = _valid_file(tmp_path)
    assert callable(damage)
    damage(path)
    store = Store(tmp_path)
    (line,) = _messages(caplog, "is corrupt")
    (aside,) = tmp_path.glob(f"{DB_FILENAME}.corrupt-*")
    assert str(aside) in line
    assert "a firing alert may be sent again" in line
    assert store.load_alert_states() == {}
    store.add_result(result("chat", 1))
    assert len(store.history("chat", 5)) == 1
    store.close()


def test_only_the_newest_corrupt_files_are_kept(tmp_path: Path) -> None:
    """Moved-aside files do not pile up: the state directory's bound must hold."""
    for n in range(KEEP_CORRUPT + 2):
        (tmp_path / f"{DB_FILENAME}.corrupt-2026010{n}T000000Z").write_bytes(b"old")
    (tmp_path / DB_FILENAME).write_bytes(b"not a database at all" * 300)
    Store(tmp_path).close()
    assert len(list(tmp_path.glob(f"{DB_FILENAME}.corrupt-*"))) == KEEP_CORRUPT


@pytest.mark.parametrize("which", ["file", "file-wal-shm"], ids=["file", "all-three"])
def test_deleted_file_is_recreated_from_memory(
    tmp_path: Path, which: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Deleting the file while open: detected, recreated with alert state, events, silences."""
    store = Store(tmp_path)
    silences = SilenceTable.open(store.path)
    silences.save({"id": "s1", "comment": "deploy"})
    agent_id = store.agent_id()
    store.save_alert("c1", {"status": "firing"})
    queued = store.save_alert("c2", {"status": "firing"}, [_event(1, check="c2")])
    store.add_result(result("c1", 0))
    assert not store.check_file()
    for suffix in ("", "-wal", "-shm") if which == "file-wal-shm" else ("",):
        (tmp_path / (DB_FILENAME + suffix)).unlink()
    assert store.check_file()
    (line,) = _messages(caplog, "was deleted or replaced")
    assert "2 alert state(s), 1 queued alert event(s) and 1 silence(s)" in line
    silences.save({"id": "s2", "comment": "after"})  # reaches the new file
    assert [r["id"] for r in silences.load()] == ["s1", "s2"]
    assert store.outbox_payload(queued[0].id) == '{"n": 1}'  # same ids as before
    store.save_alert("c3", {"status": "ok"})
    store.close()
    with sqlite3.connect(tmp_path / DB_FILENAME) as db:
        states = dict(db.execute("SELECT check_name, data FROM alert_state"))
        (meta,) = db.execute("SELECT value FROM meta WHERE key = 'agent_id'").fetchone()
    db.close()
    assert set(states) == {"c1", "c2", "c3"}
    assert meta == agent_id


def test_full_disk_at_start_runs_on_memory_until_the_file_opens(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A file that cannot even be opened (disk full) does not stop the store: memory, then file."""
    with mounted_tmpfs(tmp_path / "state", size="300k") as state:
        before = Store(state)
        agent_id = before.agent_id()
        before.save_alert("old", {"status": "firing"})
        before.close()
        filler = fill_disk(state)
        store = Store(state)
        (line,) = _messages(caplog, "cannot write")
        assert "or read it at start, so its alert state is not loaded" in line
        assert "no space left on device" in line
        assert not store.health.healthy
        (row,) = store.save_alert("c1", {"status": "firing"}, [_event(1)])
        assert not row.durable
        assert not store.write_back(force=True)  # still full
        filler.unlink()
        assert store.write_back(force=True)
        assert store.load_alert_states() == {
            "old": {"status": "firing"},
            "c1": {"status": "firing"},
        }
        assert [r.delivery_id for r in store.outbox_pending_rows()] == ["d-1"]
        store.close()
        reopened = Store(state)
        assert reopened.agent_id() == agent_id
        reopened.close()
    assert len(_messages(caplog, "cannot write")) == 1


def _damage_history(path: Path) -> None:
    """Overwrite pages past the small tables' with bytes no b-tree page can hold."""
    with path.open("r+b") as out:
        out.seek(4096 * 20)
        out.write(b"\xff" * 4096 * 40)


def _with_history(tmp_path: Path) -> tuple[Store, list[int]]:
    store = Store(tmp_path, history_size=10_000)
    store.save_alert("c1", {"status": "firing"})
    queued = store.save_alert("c2", {"status": "firing"}, [_event(1, check="c2")])
    for n in range(2000):
        store.add_result(result("chat", n))
    store.checkpoint("TRUNCATE")  # every page in the main file, where the damage goes
    return store, [row.id for row in queued]


def test_damage_found_while_running_moves_the_file_aside(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A read that meets a damaged page: the file is replaced, alert state and events kept."""
    store, queued = _with_history(tmp_path)
    _damage_history(store.path)
    assert store.history("chat", 10_000) == []  # reads every page of it
    assert store.check_file()
    (aside,) = tmp_path.glob(f"{DB_FILENAME}.corrupt-*")
    (moved,) = _messages(caplog, "is corrupt")
    assert str(aside) in moved
    (line,) = _messages(caplog, "was found corrupt while wsprobe ran")
    assert "2 alert state(s), 1 queued alert event(s) and 0 silence(s)" in line
    assert set(store.load_alert_states()) == {"c1", "c2"}
    assert store.outbox_payload(queued[0]) == '{"n": 1}'
    store.add_result(result("chat", 1))
    assert len(store.history("chat", 5)) == 1
    store.close()


def test_a_large_file_is_checked_in_its_small_tables_at_open(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Past FULL_CHECK_BYTES only alert state and outbox are checked at open; damaged
    history is found on first read and the file replaced, keeping the alert state."""
    store, _ = _with_history(tmp_path)
    store.close()
    _damage_history(tmp_path / DB_FILENAME)
    monkeypatch.setattr(faults_module, "FULL_CHECK_BYTES", 0)
    store = Store(tmp_path, history_size=10_000)
    assert _messages(caplog, "is corrupt") == []  # opened: the small tables are sound
    assert store.history("chat", 10_000) == []
    assert store.check_file()
    assert set(store.load_alert_states()) == {"c1", "c2"}
    assert len(list(tmp_path.glob(f"{DB_FILENAME}.corrupt-*"))) == 1
    store.close()
