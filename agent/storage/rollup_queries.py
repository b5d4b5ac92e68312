"""The status page's reads of :mod:`agent.storage.rollups`' tables.

Plain functions over a connection, run by :class:`~agent.storage.rollups.Rollups` in
its writer thread (which owns the connection), as :mod:`agent.storage.rollup_bound`
holds the SQL of pruning and shedding. Each reads only; none sees the buckets still
pending on the event loop.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from agent.storage.rollup_bucket import Bucket

__all__ = ["availability", "buckets", "incidents", "recent_latency"]

#: Names per ``IN (...)`` list (SQLite allows 32,766 parameters).
_IN_BATCH = 500


def buckets(
    db: sqlite3.Connection, table: str, check: str, since: float, step: int
) -> list[tuple[int, Bucket]]:
    """``check``'s rows of ``table`` from ``since`` on, merged into ``step``-second buckets."""
    rows = db.execute(
        f"SELECT ts, runs, degraded, data FROM {table}"  # noqa: S608 - fixed names
        " WHERE check_name = ? AND ts >= ? ORDER BY ts",
        (check, int(since // step * step)),
    )
    out: dict[int, Bucket] = {}
    for ts, runs, degraded, data in rows:
        slot = ts // step * step
        bucket = out.get(slot)
        if bucket is None:
            out[slot] = Bucket.decode(runs, degraded, data)
        else:
            bucket.merge(Bucket.decode(runs, degraded, data))
    return sorted(out.items())


def availability(
    db: sqlite3.Connection, checks: list[str], now: float
) -> dict[str, dict[str, Any]]:
    """Hourly and daily rows of ``checks`` and their newest incident's reason (see
    :meth:`~agent.storage.rollups.Rollups.availability`)."""
    out: dict[str, dict[str, Any]] = {}
    for start in range(0, len(checks), _IN_BATCH):
        batch = checks[start : start + _IN_BATCH]
        names = f"check_name IN ({','.join('?' * len(batch))})"
        for key, table, span in (
            ("hours", "rollup_hour", 86400),
            ("days", "rollup_day", 91 * 86400),
        ):
            rows = db.execute(
                f"SELECT check_name, ts, runs, fails, lat_sum, lat_n FROM {table}"  # noqa: S608
                f" WHERE {names} AND ts >= ?",
                (*batch, now - span),
            )
            for name, ts, runs, fails, lat_sum, lat_n in rows:
                entry = out.setdefault(name, {"hours": {}, "days": {}, "last_failure": None})
                entry[key][ts] = (runs, fails, lat_sum / lat_n if lat_n else None)
        # SQLite returns the other columns of the row holding MAX().
        rows = db.execute(
            "SELECT check_name, reason, MAX(started_at) FROM incidents"  # noqa: S608
            f" WHERE {names} GROUP BY check_name",
            batch,
        )
        for name, reason, _ in rows:
            if name in out:
                out[name]["last_failure"] = reason
    return out


def recent_latency(
    db: sqlite3.Connection, checks: list[str], since: float, step: int
) -> dict[str, dict[int, float]]:
    """Mean total latency of ``checks`` per ``step`` seconds since ``since``, from minute rows."""
    sums: dict[str, dict[int, list[float]]] = {}
    for start in range(0, len(checks), _IN_BATCH):
        batch = checks[start : start + _IN_BATCH]
        marks = ",".join("?" * len(batch))
        rows = db.execute(
            "SELECT check_name, ts, lat_sum, lat_n FROM rollup_minute"  # noqa: S608
            f" WHERE check_name IN ({marks}) AND ts >= ?",
            (*batch, since),
        )
        for name, ts, lat_sum, lat_n in rows:
            slot = sums.setdefault(name, {}).setdefault(ts // step * step, [0.0, 0])
            slot[0] += lat_sum
            slot[1] += lat_n
    return {
        name: {ts: s / n for ts, (s, n) in buckets.items() if n} for name, buckets in sums.items()
    }


def incidents(db: sqlite3.Connection, check: str, limit: int) -> list[dict[str, Any]]:
    """``check``'s newest ``limit`` incidents first (``ended_at`` null while open)."""
    rows = db.execute(
        "SELECT started_at, ended_at, reason, message, failures FROM incidents"
        " WHERE check_name = ? ORDER BY started_at DESC LIMIT ?",
        (check, limit),
    ).fetchall()
    return [
        {
            "started_at": s,
            "ended_at": e,
            "duration": None if e is None else e - s,
            "reason": r,
            "message": m,
            "failures": f,
        }
        for s, e, r, m, f in rows
    ]
