"""Scenario: memory per held watch session at 1,000 and 5,000 sessions.

Each level runs in a fresh child process (bench/watch_child.py) pinned to the bench
core: RSS once all sessions are connected and have sat idle for a few seconds minus
RSS before they were created (the check configs already built), divided by the number
of sessions. Counts the WatchSession, its websockets connection, buffers and tasks;
not the check config, not the target server (another process).

Then the same levels as configured ``kind: watch`` checks of the daemon itself
(bench/watch_daemon.py): RSS per check against a daemon with one, which adds the
check's config, metric series, history and alert state to the session.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

from bench import procs

__all__ = ["run"]


def run(url: str, *, quick: bool, loop: str) -> dict[str, Any]:
    """Measure RSS per session at each level in a child process."""
    try:
        from agent.watch import WatchSession  # noqa: F401 - only checks it exists
    except ImportError as exc:
        return {"skipped": f"agent.watch not importable yet ({exc})"}
    levels = [1000] if quick else [1000, 5000]
    out: dict[str, Any] = {"levels": []}
    for count in levels:
        proc = subprocess.run(
            [
                *("taskset", "-c", str(procs.BENCH_CORE)),
                *(sys.executable, "-m", "bench.watch_child", str(count), url),
            ],
            capture_output=True,
            text=True,
            timeout=180,
        )
        lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
        if proc.returncode != 0 or not lines:
            out["levels"].append({"sessions": count, "error": proc.stderr[-1500:]})
            continue
        level = json.loads(lines[-1])
        out["levels"].append(level)
        print(f"  watch {count} sessions: {level}", flush=True)
    from bench import watch_daemon

    out["daemon"] = watch_daemon.run_levels(url, levels)
    return out
