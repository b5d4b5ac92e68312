"""Rollups in a real SQLite file: buckets, incidents, restarts, pruning and forgetting."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from agent.result import ProbeResult, Reason
from agent.storage import Store
from agent.storage.rollup_bucket import LATENCY_BUCKETS, Bucket
from agent.storage.rollups import HOUR_RETENTION, MINUTE_RETENTION, PRUNE_INTERVAL, Rollups

T0 = 1_790_000_000.0 // 86400 * 86400  # a UTC midnight


def _result(
    check: str, at: float, *, ok: bool = True, total: float = 0.02, reason: Reason | None = None
) -> ProbeResult:
    result = ProbeResult(check=check, kind="probe", url="ws://x/", started_at=at)
    result.phases = {"connect": total / 4, "handshake": total / 2, "total": total}
    if ok:
        result.success = True
    else:
        result.fail(reason or Reason.CONNECT_REFUSED, "refused by the target")
    return result


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "wsprobe.sqlite3"


def test_results_add_up_per_minute_hour_and_day(path: Path) -> None:
    """Runs, failures by reason, degraded and phase means land in every resolution."""
    rollups = Rollups.open(path, clock=Clock(T0 + 3600))
    for i in range(6):
        rollups.add_result(_result("echo", T0 + i * 10, total=0.01 * (i + 1)))
    rollups.add_result(_result("echo", T0 + 61, ok=False, reason=Reason.DNS))
    degraded = _result("echo", T0 + 62)
    degraded.degraded = ["handshake"]
    rollups.add_result(degraded)
    minutes = rollups.buckets("echo", since=T0, step=60)
    assert [(ts, b.runs, b.fails) for ts, b in minutes] == [(T0, 6, 0), (T0 + 60, 2, 1)]
    assert minutes[1][1].failures == {"dns": 1}
    assert minutes[1][1].degraded == 1
    assert minutes[0][1].phases["total"] == pytest.approx([0.21, 6])
    hours = rollups.buckets("echo", since=T0, step=3600)
    assert [(ts, b.runs, b.fails) for ts, b in hours] == [(T0, 8, 1)]
    assert sum(hours[0][1].hist["total"].values()) == 8
    avail = rollups.availability(["echo", "other"], now=T0 + 3600)["echo"]
    assert avail["days"][T0][:2] == (8, 1)
    assert avail["last_failure"] == "dns"
    rollups.close()


def test_stored_rows_merge_across_flushes_and_restarts(path: Path) -> None:
    """A bucket written twice (two flushes, a restart between) holds the sum of both."""
    rollups = Rollups.open(path, clock=Clock(T0 + 600))
    rollups.add_result(_result("echo", T0 + 1))
    rollups.close()
    again = Rollups.open(path, clock=Clock(T0 + 600))
    again.add_result(_result("echo", T0 + 2, ok=False))
    [(_, hour)] = again.buckets("echo", since=T0, step=3600)
    assert (hour.runs, hour.fails) == (2, 1)
    again.close()


def test_incident_runs_from_first_failure_to_first_success_across_a_restart(path: Path) -> None:
    """An open incident survives a restart and closes on the next success."""
    rollups = Rollups.open(path, clock=Clock(T0 + 600))
    rollups.add_result(_result("echo", T0, ok=True))
    rollups.add_result(_result("echo", T0 + 10, ok=False, reason=Reason.PING_TIMEOUT))
    rollups.add_result(_result("echo", T0 + 20, ok=False, reason=Reason.CLOSED))
    rollups.close()
    rollups = Rollups.open(path, clock=Clock(T0 + 600))
    [open_incident] = rollups.incidents("echo")
    assert open_incident["ended_at"] is None
    rollups.add_result(_result("echo", T0 + 30, ok=False))
    rollups.add_result(_result("echo", T0 + 40, ok=True))
    [incident] = rollups.incidents("echo")
    assert incident == {
        "started_at": T0 + 10,
        "ended_at": T0 + 40,
        "duration": 30.0,
        "reason": "ping_timeout",
        "message": "refused by the target",
        "failures": 3,
    }
    rollups.close()


def test_forget_removes_every_row_of_removed_checks(path: Path) -> None:
    """A removed (or renamed) check's rows and incidents go; others stay."""
    rollups = Rollups.open(path, clock=Clock(T0 + 600))
    for name in ("keep", "gone"):
        rollups.add_result(_result(name, T0, ok=False))
    rollups.flush()
    rollups.forget(["keep"]).result(timeout=5)
    db = sqlite3.connect(path)
    for table in ("rollup_minute", "rollup_hour", "rollup_day", "incidents"):
        names = {n for (n,) in db.execute(f"SELECT check_name FROM {table}")}  # noqa: S608
        assert names == {"keep"}, table
    db.close()
    rollups.close()


def test_expired_rows_are_pruned(path: Path) -> None:
    """Minute rows older than two days, hour rows older than 90 days are deleted."""
    clock = Clock(T0)
    rollups = Rollups.open(path, clock=clock)
    old = T0 - HOUR_RETENTION - 2 * 86400
    rollups.add_result(_result("echo", old))
    rollups.add_result(_result("echo", T0 - MINUTE_RETENTION - 600))
    rollups.add_result(_result("echo", T0 - 60))
    clock.now = T0 + PRUNE_INTERVAL  # without a loop each result is written at once
    rollups.add_result(_result("echo", T0))  # this write is the first prune since T0
    db = sqlite3.connect(path)
    minute_ts = [ts for (ts,) in db.execute("SELECT ts FROM rollup_minute ORDER BY ts")]
    hour_ts = [ts for (ts,) in db.execute("SELECT ts FROM rollup_hour ORDER BY ts")]
    db.close()
    assert min(minute_ts) >= T0 - MINUTE_RETENTION
    assert min(hour_ts) >= T0 - HOUR_RETENTION - 86400
    assert len(hour_ts) == 3  # two days ago, the last hour and T0
    assert len(minute_ts) == 2
    rollups.close()


async def test_results_on_the_loop_are_written_by_the_writer_thread(path: Path) -> None:
    """On a running loop add_result only queues; the rows are written in another thread."""
    rollups = Rollups.open(path, clock=Clock(T0 + 600))
    rollups.add_result(_result("echo", T0))
    db = sqlite3.connect(path)
    assert db.execute("SELECT COUNT(*) FROM rollup_minute").fetchone() == (0,)
    writers: list[str] = []
    db_trace = rollups._db  # observe which thread runs the statements
    db_trace.set_trace_callback(lambda _: writers.append(threading.current_thread().name))
    rollups.flush()
    assert db.execute("SELECT COUNT(*) FROM rollup_minute").fetchone() == (1,)
    assert writers
    assert all(name.startswith("wsprobe-rollups") for name in writers)
    db.close()
    rollups.close()


async def test_pending_minutes_of_one_check_are_kept_apart(path: Path) -> None:
    """Results of several minutes queued before one flush land in their own minute rows."""
    rollups = Rollups.open(path, clock=Clock(T0 + 600))
    for at, check in [(T0, "a"), (T0 + 61, "a"), (T0 + 5, "a"), (T0 + 62, "b"), (T0 + 1, "gone")]:
        rollups.add_result(_result(check, at, total=0.01))
    rollups.add_result(_result("gone", T0 + 120, ok=False))
    rollups.forget(["a", "b"])
    rollups.flush()
    minutes = rollups.buckets("a", since=T0, step=60)
    assert [(ts, b.runs) for ts, b in minutes] == [(T0, 2), (T0 + 60, 1)]
    assert [(ts, b.runs) for ts, b in rollups.buckets("a", since=T0, step=3600)] == [(T0, 3)]
    assert [(ts, b.runs) for ts, b in rollups.buckets("b", since=T0, step=60)] == [(T0 + 60, 1)]
    assert rollups.buckets("gone", since=T0, step=60) == []
    rollups.close()


def test_rollups_share_the_state_file_with_the_store(tmp_path: Path) -> None:
    """Rollups open on Store.path beside the store's own tables."""
    store = Store(tmp_path)
    rollups = Rollups.open(store.path, clock=Clock(T0 + 600))
    rollups.add_result(_result("echo", T0))
    store.add_result(_result("echo", T0))
    assert store.history("echo", 5)[0]["check"] == "echo"
    assert rollups.buckets("echo", since=T0, step=60)[0][1].runs == 1
    rollups.close()
    store.close()


@pytest.mark.parametrize(
    ("values", "q", "bound"),
    [([0.0004] * 9 + [3.0], 0.5, 0.001), ([0.0004] * 9 + [3.0], 0.95, 5.0), ([20.0], 0.5, 10.0)],
    ids=["p50-fast", "p95-slow-tail", "overflow-bucket"],
)
def test_quantile_is_the_bound_of_the_bucket_holding_it(
    values: list[float], q: float, bound: float
) -> None:
    """Quantiles come from the fixed buckets; the +Inf bucket reads as the last bound."""
    bucket = Bucket()
    for v in values:
        bucket.add(_result("x", T0, total=v), with_hist=True)
    assert bucket.quantile("total", q) == bound
    assert bound in LATENCY_BUCKETS


def test_unreadable_data_decodes_to_counts_only() -> None:
    """A corrupt data column keeps the run counts."""
    bucket = Bucket.decode(5, 1, "{not json")
    assert (bucket.runs, bucket.degraded, bucket.failures) == (5, 1, {})


def test_bucket_encoding_round_trips() -> None:
    """What encode writes, decode reads back (sums to the microsecond)."""
    bucket = Bucket()
    for i, ok in enumerate((True, False, True)):
        result = _result("x", T0, ok=ok, total=0.0123 * (i + 1))
        result.pings = [0.002, 0.004]
        result.lag_suspect = i == 2
        bucket.add(result, with_hist=True)
    again = Bucket.decode(bucket.runs, bucket.degraded, bucket.encode())
    assert again.failures == bucket.failures
    assert again.hist == bucket.hist
    assert again.lag_suspect == 1
    assert again.phases.keys() == bucket.phases.keys()
    for phase, (total, n) in bucket.phases.items():
        assert again.phases[phase] == [pytest.approx(total, abs=1e-6), n]


def test_runs_spoiled_by_the_agent_are_not_counted(path: Path) -> None:
    """A result flagged agent_problem neither counts as a run nor opens an incident."""
    rollups = Rollups.open(path, clock=Clock(T0 + 600))
    spoiled = _result("echo", T0, ok=False, reason=Reason.TIMEOUT)
    spoiled.agent_problem = True
    rollups.add_result(spoiled)
    rollups.add_result(_result("echo", T0 + 1))
    [(_, minute)] = rollups.buckets("echo", since=T0, step=60)
    assert (minute.runs, minute.fails) == (1, 0)
    assert rollups.incidents("echo") == []
    rollups.close()
