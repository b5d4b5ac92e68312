"""Shared helpers of the storage tests: results to store, rows counted in the file."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from agent.result import ProbeResult, Reason


def result(check: str, n: int) -> ProbeResult:
    """The n-th result of ``check``; odd ones failed."""
    r = ProbeResult(check=check, kind="probe", url="ws://127.0.0.1/", started_at=float(n))
    r.phases = {"connect": 0.001 * n}
    if n % 2:
        return r.fail(Reason.CONNECT_REFUSED, "connection refused")
    r.success = True
    return r


def rows_in_db(path: Path, check: str) -> int:
    """Rows physically stored for ``check``."""
    with sqlite3.connect(path) as db:
        (count,) = db.execute(
            "SELECT COUNT(*) FROM results WHERE check_name = ?", (check,)
        ).fetchone()
    db.close()
    return int(count)
