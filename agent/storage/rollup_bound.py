"""What the rollups give up to keep the state directory within its bound.

The SQL of :mod:`agent.storage.rollups`' tables for two jobs, run on that module's own
connection: the per-check cap on incidents in ordinary pruning, and shedding rows
when :class:`~agent.storage.maintenance.Maintenance` finds the file over its bound
after trimming history. Shedding goes in :data:`SHED_ORDER`, the least useful data
first, and moves to the next kind only once the previous one has nothing left to give:

1. ``minute``: per-minute rows, oldest first (the last two days' detail);
2. ``incidents``: ended incidents beyond the newest :data:`BOUND_INCIDENTS` per check;
3. ``hour``: per-hour rows, oldest first (latency histograms, the 24-hour bars);
4. ``day``: per-day rows, oldest first (the 90-day availability bars).

Open incidents are never deleted (the rollups track them in memory).
"""

from __future__ import annotations

import sqlite3

__all__ = [
    "BOUND_INCIDENTS",
    "INCIDENTS_PER_CHECK",
    "ROW_OVERHEAD",
    "SHED_ORDER",
    "cap_incidents",
    "shed",
]

#: Ended incidents kept per check by ordinary pruning.
INCIDENTS_PER_CHECK = 200
#: Ended incidents kept per check once the bound makes the rollups give up incidents.
BOUND_INCIDENTS = 10
#: Bytes a stored row takes besides its text columns (key, numbers, cell header).
ROW_OVERHEAD = 48
#: The kinds of rows given up for the bound, first to last.
SHED_ORDER: tuple[str, ...] = ("minute", "incidents", "hour", "day")
_TABLES = {"minute": "rollup_minute", "hour": "rollup_hour", "day": "rollup_day"}
_OLD_INCIDENTS = """
SELECT check_name, started_at, {size} FROM (
    SELECT check_name, started_at, message, reason, ROW_NUMBER() OVER (
        PARTITION BY check_name ORDER BY started_at DESC) AS n
    FROM incidents WHERE ended_at IS NOT NULL)
WHERE n > ?
"""


def cap_incidents(db: sqlite3.Connection, *, keep: int = INCIDENTS_PER_CHECK) -> int:
    """Delete each check's ended incidents beyond its newest ``keep``.

    Returns:
        Incidents deleted.
    """
    rows = db.execute(_OLD_INCIDENTS.format(size="0"), (keep,)).fetchall()
    db.executemany(
        "DELETE FROM incidents WHERE check_name = ? AND started_at = ?",
        [(name, started) for name, started, _ in rows],
    )
    return len(rows)


def shed(db: sqlite3.Connection, *, nbytes: int) -> dict[str, int]:
    """Delete rollup rows worth about ``nbytes``, in :data:`SHED_ORDER`.

    Runs in one transaction. Sizes are estimates from the stored text, so the caller
    measures the file afterwards and asks again if it is still over.

    Returns:
        Rows deleted per kind, for the kinds that gave something.
    """
    deleted: dict[str, int] = {}
    need = nbytes
    db.execute("BEGIN IMMEDIATE")
    try:
        for kind in SHED_ORDER:
            if need <= 0:
                break
            rows, freed = _shed_incidents(db) if kind == "incidents" else _shed(db, kind, need)
            if rows:
                deleted[kind] = rows
            need -= freed
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    return deleted


def _shed(db: sqlite3.Connection, kind: str, need: int) -> tuple[int, int]:
    """Delete the oldest time slots of one table, all checks at once, until ``need``."""
    table = _TABLES[kind]
    slots = db.execute(
        f"SELECT ts, COUNT(*), SUM(LENGTH(check_name) + LENGTH(data)) FROM {table}"  # noqa: S608
        " GROUP BY ts ORDER BY ts"
    )
    cutoff: int | None = None
    rows = freed = 0
    for ts, count, size in slots:
        cutoff = ts
        rows += count
        freed += size + count * ROW_OVERHEAD
        if freed >= need:
            break
    if cutoff is None:
        return 0, 0
    db.execute(f"DELETE FROM {table} WHERE ts <= ?", (cutoff,))  # noqa: S608 - fixed names
    return rows, freed


def _shed_incidents(db: sqlite3.Connection) -> tuple[int, int]:
    """Keep the newest :data:`BOUND_INCIDENTS` ended incidents per check (all at once:
    which check's to keep more of has no good answer)."""
    size = "LENGTH(check_name) + LENGTH(reason) + LENGTH(message)"
    rows = db.execute(_OLD_INCIDENTS.format(size=size), (BOUND_INCIDENTS,)).fetchall()
    db.executemany(
        "DELETE FROM incidents WHERE check_name = ? AND started_at = ?",
        [(name, started) for name, started, _ in rows],
    )
    return len(rows), sum(s + ROW_OVERHEAD for _, _, s in rows)
