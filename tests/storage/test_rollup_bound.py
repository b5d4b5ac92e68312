"""The size bound holds with rollups in the file: they give rows up in the documented order."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from agent.result import ProbeResult, Reason
from agent.storage import Store
from agent.storage.outbox import NewOutboxRow
from agent.storage.rollup_bound import BOUND_INCIDENTS, INCIDENTS_PER_CHECK, SHED_ORDER
from agent.storage.rollup_bucket import Bucket
from agent.storage.rollups import PRUNE_INTERVAL, Rollups
from tests.storage.conftest import result

T0 = 1_790_000_000.0 // 86400 * 86400  # a UTC midnight
BOUND = 4 * 1024 * 1024  # the smallest bound the config accepts
CHECKS = [f"check-{n:02d}" for n in range(10)]


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _bucket(ts: float, *, with_hist: bool) -> str:
    """A realistic stored bucket: a minute's (or hour's) runs with every phase measured."""
    bucket = Bucket()
    for n in range(6):
        r = ProbeResult(check="c", kind="probe", url="ws://127.0.0.1/", started_at=ts + n)
        r.phases = {p: 0.001 * (n + 1) for p in ("resolve", "connect", "handshake", "total")}
        r.pings = [0.002]
        if n == 5:
            r.fail(Reason.CONNECT_REFUSED, "refused")
        else:
            r.success = True
        bucket.add(r, with_hist=with_hist)
    return bucket.encode()


def _fill(path: Path, *, minutes: int, incidents: int, hours: int, days: int) -> None:
    """Rows per check in each table, oldest first, written as the rollups write them."""
    minute_data, hour_data = _bucket(T0, with_hist=False), _bucket(T0, with_hist=True)
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("BEGIN")
    for table, count, step, data in (
        ("rollup_minute", minutes, 60, minute_data),
        ("rollup_hour", hours, 3600, hour_data),
        ("rollup_day", days, 86400, hour_data),
    ):
        db.executemany(
            f"INSERT INTO {table} VALUES (?, ?, 6, 1, 0, 0.024, 6, ?)",  # noqa: S608
            [(c, int(T0 - (count - i) * step), data) for c in CHECKS for i in range(count)],
        )
    message = "connection refused by 10.0.0.1:443 " * 6
    db.executemany(
        "INSERT INTO incidents VALUES (?, ?, ?, 'connect_refused', ?, 3)",
        [
            (c, T0 - (incidents - i) * 3600, T0 - (incidents - i) * 3600 + 60, message)
            for c in CHECKS
            for i in range(incidents)
        ],
    )
    # Each check's current incident is open: the rollups track it, it must stay.
    db.executemany(
        "INSERT INTO incidents VALUES (?, ?, NULL, 'connect_refused', 'down', 1)",
        [(c, T0) for c in CHECKS],
    )
    db.execute("COMMIT")
    db.close()


def _counts(path: Path) -> dict[str, tuple[int, int | None, int | None]]:
    """Rows, oldest and newest time of each table (incidents: ended ones)."""
    db = sqlite3.connect(path)
    out = {}
    for kind, query in (
        ("minute", "SELECT COUNT(*), MIN(ts), MAX(ts) FROM rollup_minute"),
        ("hour", "SELECT COUNT(*), MIN(ts), MAX(ts) FROM rollup_hour"),
        ("day", "SELECT COUNT(*), MIN(ts), MAX(ts) FROM rollup_day"),
        (
            "incidents",
            "SELECT COUNT(*), MIN(started_at), MAX(started_at) FROM incidents"
            " WHERE ended_at IS NOT NULL",
        ),
        (
            "open",
            "SELECT COUNT(*), MIN(started_at), MAX(started_at) FROM incidents"
            " WHERE ended_at IS NULL",
        ),
    ):
        out[kind] = db.execute(query).fetchone()
    db.close()
    return out


def _file_bytes(store: Store) -> int:
    return sum(
        p.stat().st_size for p in store.path.parent.iterdir() if p.name.startswith(store.path.name)
    )


def _setup(tmp_path: Path) -> tuple[Store, Rollups, int]:
    store = Store(tmp_path, history_size=1000, max_bytes=BOUND)
    rollups = Rollups.open(store.path, clock=Clock(T0))
    store.add_shedder(rollups)
    event = NewOutboxRow(
        delivery_id="d-1",
        receiver="hook",
        check="check-00",
        event="firing",
        payload="{}",
        created_at=T0,
    )
    (queued,) = store.save_alert("check-00", {"status": "firing"}, [event])
    for n in range(200):
        store.add_result(result("check-00", n))
    return store, rollups, queued.id


def _assert_kept_alerting(store: Store, queued: int) -> None:
    assert _file_bytes(store) <= BOUND
    assert store.maintenance.peak_total <= BOUND
    assert store.load_alert_states() == {"check-00": {"status": "firing"}}
    assert [r.id for r in store.outbox_pending_rows()] == [queued]


def test_over_the_bound_oldest_minute_rows_go_first(tmp_path: Path) -> None:
    """A little over: only the oldest minute rows go; incidents, hours and days stay."""
    store, rollups, queued = _setup(tmp_path)
    _fill(store.path, minutes=2880, incidents=100, hours=300, days=90)
    before = _counts(store.path)
    assert _file_bytes(store) > BOUND
    store.maintain()
    after = _counts(store.path)
    _assert_kept_alerting(store, queued)
    assert 0 < after["minute"][0] < before["minute"][0]
    assert after["minute"][1] > before["minute"][1]  # oldest gone
    assert after["minute"][2] == before["minute"][2]  # newest kept
    for kind in ("incidents", "open", "hour", "day"):
        assert after[kind] == before[kind], kind
    rollups.close()
    store.close()


def test_far_over_the_bound_rollups_go_in_the_documented_order(tmp_path: Path) -> None:
    """Far over: every minute row, incidents beyond the newest few, then the oldest hours;
    day rows and open incidents stay."""
    assert SHED_ORDER == ("minute", "incidents", "hour", "day")
    store, rollups, queued = _setup(tmp_path)
    _fill(store.path, minutes=600, incidents=300, hours=2160, days=90)
    before = _counts(store.path)
    assert _file_bytes(store) > BOUND
    store.maintain()
    after = _counts(store.path)
    _assert_kept_alerting(store, queued)
    assert after["minute"][0] == 0
    assert after["incidents"][0] == BOUND_INCIDENTS * len(CHECKS)
    assert after["incidents"][2] == before["incidents"][2]  # the newest kept
    assert after["open"] == before["open"]
    assert 0 < after["hour"][0] < before["hour"][0]
    assert after["hour"][1] > before["hour"][1]
    assert after["hour"][2] == before["hour"][2]
    assert after["day"] == before["day"]
    # Pages in use are what the next rounds see: the file is under the target, not
    # just momentarily under the bound.
    store.maintain()
    assert _counts(store.path) == after
    rollups.close()
    store.close()


def test_a_closed_rollups_gives_nothing_and_does_not_break_the_round(tmp_path: Path) -> None:
    """A shedder closed before it was removed gives nothing: history still goes."""
    store, rollups, _ = _setup(tmp_path)
    rollups.close()
    assert rollups.shed(nbytes=BOUND) == {}
    store.maintain()
    store.remove_shedder(rollups)
    store.close()


def test_pruning_keeps_the_newest_incidents_per_check(tmp_path: Path) -> None:
    """Ordinary pruning keeps INCIDENTS_PER_CHECK ended incidents a check, and open ones."""
    path = tmp_path / "wsprobe.sqlite3"
    clock = Clock(T0)
    rollups = Rollups.open(path, clock=clock)
    _fill(path, minutes=1, incidents=INCIDENTS_PER_CHECK + 50, hours=1, days=1)
    before = _counts(path)
    clock.now = T0 + PRUNE_INTERVAL  # without a loop each result is written at once
    rollups.add_result(result("check-00", int(T0)))  # that write prunes
    after = _counts(path)
    assert after["incidents"][0] == INCIDENTS_PER_CHECK * len(CHECKS)
    assert after["incidents"][1] > before["incidents"][1]
    assert after["incidents"][2] == before["incidents"][2]
    assert after["open"] == before["open"]
    rollups.close()
