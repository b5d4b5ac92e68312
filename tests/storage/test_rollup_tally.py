"""The rollups' pending tally: the same buckets as counting each result, in few bytes."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import pytest

from agent.result import ProbeResult, Reason
from agent.storage.rollup_bucket import KEPT_PHASES, Bucket
from agent.storage.rollup_tally import Pending, Tally
from agent.storage.rollups import Rollups

T0 = 1_790_000_000.0 // 86400 * 86400  # a UTC midnight

#: What a tally may cost per check once a result with every phase is counted; a bucket
#: per resolution (dicts of lists per phase) cost ~3.6 KB.
_MAX_PENDING_BYTES_PER_CHECK = 1200


def _result(check: str, at: float, *, i: int) -> ProbeResult:
    result = ProbeResult(check=check, kind="watch", url="ws://x/", started_at=at)
    result.phases = {p: 0.0007 * (n + 1) * (i + 1) for n, p in enumerate(KEPT_PHASES)}
    result.pings = [0.002, 0.004 * (i + 1)] if i % 2 else []
    result.degraded = ["handshake"] if i == 3 else []
    result.lag_suspect = i == 4
    if i % 3 == 2:
        result.fail(Reason.PING_TIMEOUT if i < 4 else Reason.CLOSED, "no pong")
    else:
        result.success = True
    return result


@pytest.mark.parametrize("with_hist", [True, False], ids=["hour", "minute-or-day"])
@pytest.mark.parametrize("runs", [1, 7], ids=["one-run", "mixed-runs"])
def test_tally_makes_the_bucket_that_counting_each_result_makes(runs: int, with_hist: bool) -> None:
    """A tally's bucket equals a bucket that added the same results one by one."""
    tally, expected = Tally(), Bucket()
    for i in range(runs):
        result = _result("x", T0, i=i)
        tally.add(result)
        expected.add(result, with_hist=with_hist)
    got = tally.bucket(with_hist=with_hist)
    assert got.encode() == expected.encode()
    assert (got.runs, got.degraded, got.lag_suspect) == (
        expected.runs,
        expected.degraded,
        expected.lag_suspect,
    )
    assert got.phases == expected.phases
    assert got.hist == expected.hist


def test_pending_holds_a_lone_result_as_it_is() -> None:
    """A check's one result of a minute is held uncounted; a second makes a tally; both
    give the buckets counting each result gives, per check and minute, in order."""
    pending = Pending()
    lone, first, second, later = (
        _result("lone", T0, i=0),
        _result("x", T0 + 1, i=1),
        _result("x", T0 + 2, i=2),
        _result("x", T0 + 61, i=3),
    )
    for result in (lone, first, later, second):
        pending.add(result)
    assert pending._held["lone"] is lone
    assert isinstance(pending._held["x"], Tally)
    got = [(check, t.minute, t.bucket(with_hist=True).encode()) for check, t in pending.tallies()]
    expected = []
    for check, minute, results in [
        ("lone", T0, [lone]),
        ("x", T0, [first, second]),
        ("x", T0 + 60, [later]),
    ]:
        bucket = Bucket()
        for result in results:
            bucket.add(result, with_hist=True)
        expected.append((check, minute, bucket.encode()))
    assert got == expected
    pending.keep({"x"})
    assert [check for check, _ in pending.tallies()] == ["x", "x"]


def test_tally_is_slotted() -> None:
    """A tally carries no instance dict (one is held per active check)."""
    assert not hasattr(Tally(), "__dict__")


async def test_pending_results_cost_little_per_check(tmp_path: Path) -> None:
    """Between flushes, the rollups hold about a kilobyte per check, not a bucket per
    resolution."""
    rollups = Rollups.open(tmp_path / "state.sqlite3", clock=lambda: T0 + 3700)
    results = [_result(f"check-{n}", T0 + 5, i=1) for n in range(500)]
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for result in results:
            rollups.add_result(result)
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert held / len(results) <= _MAX_PENDING_BYTES_PER_CHECK
    rollups.close()


async def test_minutes_of_one_flush_merge_into_their_hour_and_day(tmp_path: Path) -> None:
    """Results of several minutes handed over in one flush add up in their hour and day."""
    rollups = Rollups.open(tmp_path / "state.sqlite3", clock=lambda: T0 + 3700)
    for i, offset in enumerate((5, 65, 130, 3605)):
        rollups.add_result(_result("echo", T0 + offset, i=i))
    rollups.flush()
    minutes = rollups.buckets("echo", since=T0, step=60)
    hours = rollups.buckets("echo", since=T0, step=3600)
    assert [(ts - T0, b.runs, b.fails) for ts, b in minutes] == [
        (0, 1, 0),
        (60, 1, 0),
        (120, 1, 1),
        (3600, 1, 0),
    ]
    assert [(ts - T0, b.runs, b.fails) for ts, b in hours] == [(0, 3, 1), (3600, 1, 0)]
    assert sum(hours[0][1].hist["total"].values()) == 3
    avail = rollups.availability(["echo"], now=T0 + 3700)["echo"]
    assert avail["days"][T0][:2] == (4, 1)
    rollups.close()
