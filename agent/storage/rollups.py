"""Long-term aggregates of each check's results ("rollups") and its incidents.

Self-contained like :mod:`agent.storage.silences`: its own tables in the agent's
SQLite file and its own connection, used only by its own writer thread.

    rollup_minute  (check, ts)  kept MINUTE_RETENTION (2 days)   runs, failures, phase means
    rollup_hour    (check, ts)  kept HOUR_RETENTION (90 days)    the same + latency histograms
    rollup_day     (check, ts)  kept HOUR_RETENTION              runs, failures, degraded
    incidents      (check, started_at)  newest 200 ended per check  first failure -> first success

When the state directory passes its bound, :meth:`Rollups.shed` gives rows up in the
order :mod:`agent.storage.rollup_bound` documents (minute rows first, day rows last).

On the event loop :meth:`Rollups.add_result` only adds the result to what is pending
for its check and minute (:class:`~agent.storage.rollup_tally.Pending`); every
:data:`FLUSH_INTERVAL` that goes to the writer thread, which makes each tally's minute,
hour and day buckets and merges each into its stored row (read, add, replace) in one
transaction. What a bucket holds is :class:`agent.storage.rollup_bucket.Bucket`
(per-phase latency sums, and per hour fixed-bucket histograms that merge by addition).
Reads go through the writer thread too, after what :meth:`Rollups.submit_pending`
handed it (the page calls it on the loop first); they block, so callers on the loop
use ``asyncio.to_thread``; their SQL is :mod:`agent.storage.rollup_queries`. Rows are
keyed by check name: a renamed check starts fresh and :meth:`Rollups.forget` prunes
removed ones. A crash loses at most one flush interval.

Raises :class:`sqlite3.Error` from :meth:`Rollups.open` and :meth:`Rollups.shed` only;
a failed background write is logged and dropped (the rollups are a summary, never the
source of alerts).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from agent.result import ProbeResult
from agent.storage import rollup_bound, rollup_queries
from agent.storage.rollup_bucket import CHART_PHASES, LATENCY_BUCKETS, Bucket
from agent.storage.rollup_tally import Pending

__all__ = [
    "CHART_PHASES",
    "FLUSH_INTERVAL",
    "HOUR_RETENTION",
    "LATENCY_BUCKETS",
    "MINUTE_RETENTION",
    "PRUNE_INTERVAL",
    "Bucket",
    "Rollups",
]

log = logging.getLogger(__name__)

_T = TypeVar("_T")

#: Seconds between two hand-overs of the in-memory buckets to the writer thread.
FLUSH_INTERVAL = 10.0
MINUTE_RETENTION = 2 * 86400.0
HOUR_RETENTION = 90 * 86400.0
#: Seconds between two prunes of expired rows (in the writer thread).
PRUNE_INTERVAL = 600.0
_BUSY_TIMEOUT_MS = 5000
_TABLES = {
    "minute": ("rollup_minute", 60),
    "hour": ("rollup_hour", 3600),
    "day": ("rollup_day", 86400),
}
_SCHEMA = """
CREATE TABLE IF NOT EXISTS rollup_minute (check_name TEXT NOT NULL, ts INTEGER NOT NULL,
    runs INTEGER NOT NULL, fails INTEGER NOT NULL, degraded INTEGER NOT NULL,
    lat_sum REAL NOT NULL, lat_n INTEGER NOT NULL, data TEXT NOT NULL,
    PRIMARY KEY (check_name, ts)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS rollup_hour (check_name TEXT NOT NULL, ts INTEGER NOT NULL,
    runs INTEGER NOT NULL, fails INTEGER NOT NULL, degraded INTEGER NOT NULL,
    lat_sum REAL NOT NULL, lat_n INTEGER NOT NULL, data TEXT NOT NULL,
    PRIMARY KEY (check_name, ts)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS rollup_day (check_name TEXT NOT NULL, ts INTEGER NOT NULL,
    runs INTEGER NOT NULL, fails INTEGER NOT NULL, degraded INTEGER NOT NULL,
    lat_sum REAL NOT NULL, lat_n INTEGER NOT NULL, data TEXT NOT NULL,
    PRIMARY KEY (check_name, ts)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS incidents (check_name TEXT NOT NULL, started_at REAL NOT NULL,
    ended_at REAL, reason TEXT NOT NULL, message TEXT NOT NULL, failures INTEGER NOT NULL,
    PRIMARY KEY (check_name, started_at)) WITHOUT ROWID;
"""
_MAX_MESSAGE = 300
_Ops = list[tuple[str, str, tuple[Any, ...]]]


class Rollups:
    """Per-check rollups and incidents in the state file.

    Args:
        db: a connection to the state file, used only by this object's writer thread.
        clock: Unix time.
    """

    def __init__(self, db: sqlite3.Connection, *, clock: Callable[[], float] = time.time) -> None:
        self._db = db
        self._clock = clock
        self._db.executescript(_SCHEMA)
        # The results since the last flush, per check and minute (which feeds its hour
        # and day too).
        self._pending = Pending()
        self._ops: _Ops = []
        self._open: dict[str, float] = dict(
            self._db.execute("SELECT check_name, started_at FROM incidents WHERE ended_at IS NULL")
        )
        self._lock = threading.Lock()
        self._writer = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="wsprobe-rollups"
        )
        self._timer: asyncio.TimerHandle | None = None
        self._last_prune = 0.0
        self._closed = False

    @classmethod
    def open(cls, path: str | Path, *, clock: Callable[[], float] = time.time) -> Rollups:
        """Rollups on a connection of their own to the SQLite file at ``path``.

        Raises:
            sqlite3.Error: when the file cannot be opened or its tables created.
        """
        db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        db.execute(f"PRAGMA busy_timeout={_BUSY_TIMEOUT_MS}")
        # As the store's connections: the file is in WAL mode, a commit needs no fsync.
        db.execute("PRAGMA synchronous=NORMAL")
        return cls(db, clock=clock)

    # -- writing (event loop) ------------------------------------------------------------

    def add_result(self, result: ProbeResult) -> None:
        """Count ``result`` in its minute, hour and day, and track its check's incident.

        A run the agent's own overload spoiled (``agent_problem``) says nothing about
        the check: it is left out, as alerting leaves it out.
        """
        if result.agent_problem:
            return
        at = result.started_at
        self._pending.add(result)
        started = self._open.get(result.check)
        if not result.success and started is None:
            self._open[result.check] = at
            reason = result.reason.value if result.reason else "internal"
            args = (result.check, at, reason, result.message[:_MAX_MESSAGE])
            self._ops.append(
                (result.check, "INSERT OR IGNORE INTO incidents VALUES (?, ?, NULL, ?, ?, 1)", args)
            )
        elif not result.success and started is not None:
            self._ops.append(
                (
                    result.check,
                    "UPDATE incidents SET failures = failures + 1"
                    " WHERE check_name = ? AND started_at = ?",
                    (result.check, started),
                )
            )
        elif result.success and started is not None:
            del self._open[result.check]
            self._ops.append(
                (
                    result.check,
                    "UPDATE incidents SET ended_at = ? WHERE check_name = ? AND started_at = ?",
                    (at, result.check, started),
                )
            )
        if self._timer is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                self.flush()
                return
            self._timer = loop.call_later(FLUSH_INTERVAL, self._flush_soon)

    def _take(self) -> tuple[Pending, _Ops]:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        pending, self._pending = self._pending, Pending()
        ops, self._ops = self._ops, []
        return pending, ops

    def _flush_soon(self) -> None:
        if self._closed:
            return
        pending, ops = self._take()
        if pending or ops:
            self._writer.submit(self._write, pending, ops).add_done_callback(_log_failure)

    def submit_pending(self) -> None:
        """Hand the pending buckets to the writer now, without waiting (loop thread).

        The writer works in order, so a read queued after this sees every result
        added before it: the status page calls it before reading.
        """
        self._flush_soon()

    def flush(self) -> None:
        """Write every pending bucket and wait until it is (blocks: not on the loop)."""
        if not self._closed:
            self._writer.submit(self._write, *self._take()).result()

    def _write(self, pending: Pending, ops: _Ops) -> None:
        with self._lock:
            if self._closed:
                return
            db = self._db
            db.execute("BEGIN IMMEDIATE")
            try:
                # One bucket at a time: several minutes of a check that share an
                # hour each merge into its row, which the next read sees.
                for check, tally in pending.tallies():
                    minute = tally.minute
                    for resolution, (table, step) in _TABLES.items():
                        bucket = tally.bucket(with_hist=resolution == "hour")
                        self._merge_row(table, check, minute // step * step, bucket)
                for _, sql, args in ops:
                    db.execute(sql, args)
                now = self._clock()
                if now - self._last_prune >= PRUNE_INTERVAL:
                    self._last_prune = now
                    self._prune(now)
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise

    def _merge_row(self, table: str, check: str, ts: int, bucket: Bucket) -> None:
        db = self._db
        row = db.execute(
            f"SELECT runs, degraded, data FROM {table}"  # noqa: S608 - fixed names
            " WHERE check_name = ? AND ts = ?",
            (check, ts),
        ).fetchone()
        if row is not None:
            bucket.merge(Bucket.decode(*row))
        lat_sum, lat_n = bucket.phases.get("total", (0.0, 0))
        db.execute(
            f"INSERT OR REPLACE INTO {table} VALUES (?, ?, ?, ?, ?, ?, ?, ?)",  # noqa: S608
            (
                check,
                ts,
                bucket.runs,
                bucket.fails,
                bucket.degraded,
                lat_sum,
                lat_n,
                bucket.encode(),
            ),
        )

    def _prune(self, now: float) -> None:
        self._db.execute("DELETE FROM rollup_minute WHERE ts < ?", (now - MINUTE_RETENTION,))
        for table in ("rollup_hour", "rollup_day"):
            self._db.execute(
                f"DELETE FROM {table} WHERE ts < ?",  # noqa: S608 - fixed names
                (now - HOUR_RETENTION - 86400,),
            )
        self._db.execute(
            "DELETE FROM incidents WHERE ended_at IS NOT NULL AND ended_at < ?",
            (now - HOUR_RETENTION,),
        )
        rollup_bound.cap_incidents(self._db)

    def forget(self, keep: Iterable[str]) -> concurrent.futures.Future[None]:
        """Delete everything of the checks not in ``keep`` (removed or renamed).

        Call it on the thread that adds results; the rows go in the writer thread after
        every batch handed to it before, and the returned future says when.
        """
        keep_set = set(keep)
        self._pending.keep(keep_set)
        self._ops = [op for op in self._ops if op[0] in keep_set]
        for name in [n for n in self._open if n not in keep_set]:
            del self._open[name]

        def run() -> None:
            with self._lock:
                if not self._closed:
                    self._forget(keep_set)

        return self._writer.submit(run)

    def _forget(self, keep: set[str]) -> None:
        tables = (*(t for t, _ in _TABLES.values()), "incidents")
        names: set[str] = set()
        for table in tables:
            query = f"SELECT DISTINCT check_name FROM {table}"  # noqa: S608 - fixed names
            names.update(n for (n,) in self._db.execute(query))
        gone = [(n,) for n in names - keep]
        for table in tables:
            self._db.executemany(f"DELETE FROM {table} WHERE check_name = ?", gone)  # noqa: S608

    def shed(self, *, nbytes: int) -> dict[str, int]:
        """Give up rows worth about ``nbytes`` for the state directory's bound, least
        useful first (:data:`agent.storage.rollup_bound.SHED_ORDER`). Blocks until done.

        Returns:
            Rows deleted per kind; empty once closed or when nothing is left.
        """

        def run() -> dict[str, int]:
            with self._lock:
                if self._closed:
                    return {}
                return rollup_bound.shed(self._db, nbytes=nbytes)

        try:
            return self._writer.submit(run).result()
        except RuntimeError:  # the writer was shut down: closing
            return {}

    def close(self) -> None:
        """Write what is pending and close the connection."""
        if self._closed:
            return
        self.flush()
        self._writer.shutdown(wait=True)
        with self._lock:
            self._closed = True
            self._db.close()

    # -- reading (blocks: call from a worker thread) --------------------------------------
    # Reads see what the writer has been handed: call submit_pending on the loop first
    # to include the latest results. They never take the pending buckets themselves,
    # which belong to the loop thread.

    def _call(self, fn: Callable[..., _T], *args: Any) -> _T:
        def run() -> _T:
            with self._lock:
                return fn(*args)

        return self._writer.submit(run).result()

    def buckets(self, check: str, *, since: float, step: int) -> list[tuple[int, Bucket]]:
        """``check``'s buckets from ``since`` on, merged into ``step``-second buckets.

        Minute rows serve steps under an hour, hour rows the rest.
        """
        table = "rollup_minute" if step < 3600 else "rollup_hour"
        return self._call(rollup_queries.buckets, self._db, table, check, since, step)

    def availability(self, checks: Sequence[str], *, now: float) -> dict[str, dict[str, Any]]:
        """``checks``' runs and failures: 24 hours by hour, 91 days by day (UTC), and
        their newest incident's reason (one page of the status page at a time).

        Returns:
            check -> ``{"hours": {ts: row}, "days": {ts: row}, "last_failure": reason}``,
            each row ``(runs, fails, mean total latency or None)``.
        """
        return self._call(rollup_queries.availability, self._db, list(checks), now)

    def recent_latency(
        self, checks: list[str], *, since: float, step: int
    ) -> dict[str, dict[int, float]]:
        """Mean total latency of ``checks`` per ``step`` seconds since ``since`` (minutes).

        Returns:
            check -> {bucket_ts: mean seconds}; buckets without a measured run are absent.
        """
        return self._call(rollup_queries.recent_latency, self._db, checks, since, step)

    def incidents(self, check: str, *, limit: int = 50) -> list[dict[str, Any]]:
        """``check``'s newest incidents first (``ended_at`` null while open)."""
        return self._call(rollup_queries.incidents, self._db, check, limit)


def _log_failure(done: concurrent.futures.Future[None]) -> None:
    exc = None if done.cancelled() else done.exception()
    if exc is not None:
        log.error("could not store rollups: %s", exc, exc_info=exc)
