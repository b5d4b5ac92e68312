"""Status page and rollup costs: storage per check per 90 days, CPU of writing the
rollups, and ``/`` at 1,000 and 10,000 checks (page weight, render time, loop stalls).

Run: ``.venv/bin/python -m bench.status_page [CHECKS ...] [--no-storage]`` (default
1000 10000).

- ``storage``: 3 checks fed a result every 60 s for 90 simulated days (one always up,
  one failing 10 % of runs with two reasons, one failing 1 %), pruned as the agent
  prunes; bytes of the rollup tables after ``VACUUM``, per check.
- ``write_cpu``: thread CPU per result of ``Rollups.add_result`` on the loop thread, and
  process CPU per result of the writer's merge (flush) during the same run.
- ``page``: a real aiohttp app (``build_app``) whose checks are N generated ones with
  realistic last results, and a state file holding 24 hours of hour rows, 90 day rows
  and 2 hours of minute rows for every check (inserted directly). ``/`` is requested
  three times; reported: wall time, bytes (plain and gzip), and the longest gap of a
  1 ms ticker on the agent's loop during the requests (how long the page held it). The
  heap is frozen first (``freeze_heap``), as the daemon does after building its checks.
"""

from __future__ import annotations

import asyncio
import json
import random
import sqlite3
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from agent.http.auth import Authenticator
from agent.http.server import build_app
from agent.http.status import summary_item
from agent.result import ProbeResult, Reason, TLSInfo
from agent.runtime.gc_policy import freeze_heap
from agent.storage.rollups import Rollups

__all__ = ["main", "page_cost", "storage_cost"]

DAY = 86400
_REASONS = (Reason.CONNECT_REFUSED, Reason.PING_TIMEOUT)


def _result(name: str, at: float, *, ok: bool, rng: random.Random) -> ProbeResult:
    result = ProbeResult(check=name, kind="probe", url="ws://svc.example/ws", started_at=at)
    ms = rng.uniform(0.5, 30.0) / 1000
    result.phases = {"resolve": 0.0002, "connect": ms / 5, "tls": ms / 3, "handshake": ms,
                     "ping": ms / 2, "total": ms * 2}  # fmt: skip
    result.pings = [ms / 2, ms / 2.2, ms / 1.9]
    result.tls = TLSInfo(version="TLSv1.3", cert_not_after=at + 60 * DAY)
    if ok:
        result.success = True
        result.status_code = 101
    else:
        result.fail(rng.choice(_REASONS), "the target refused the connection")
    return result


def storage_cost(*, days: int = 90, interval: float = 60.0) -> dict[str, Any]:
    """Bytes per check per ``days`` of rollups, and the CPU cost of writing them."""
    rng = random.Random(7)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "rollups.sqlite3"
        _wal(path)
        end = time.time() // 3600 * 3600
        start = end - days * DAY
        clock = [start]
        rollups = Rollups.open(path, clock=lambda: clock[0])
        fail_rates = {"steady": 0.0, "flaky": 0.10, "rare": 0.01}
        loop_cpu = 0.0
        flush_cpu = 0.0
        results = 0

        async def feed() -> None:
            nonlocal loop_cpu, flush_cpu, results
            t = start
            while t < end:
                t0 = time.thread_time()
                for name, rate in fail_rates.items():
                    rollups.add_result(_result(name, t, ok=rng.random() >= rate, rng=rng))
                loop_cpu += time.thread_time() - t0
                results += len(fail_rates)
                t += interval
                if int(t) % 600 == 0:  # the agent hands over every 10 s of real time
                    clock[0] = t
                    p0, t0 = time.process_time(), time.thread_time()
                    rollups.flush()
                    flush_cpu += (time.process_time() - p0) - (time.thread_time() - t0)
            clock[0] = end
            rollups.flush()

        asyncio.run(feed())
        rollups.close()
        db = sqlite3.connect(path)
        db.execute("VACUUM")
        tables = ("rollup_minute", "rollup_hour", "rollup_day", "incidents")
        rows = {t: db.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in tables}  # noqa: S608
        # Pages per table (SQLite's dbstat), per check: where the bytes go.
        table_bytes = {
            name: round(size / len(fail_rates))
            for name, size in db.execute("SELECT name, SUM(pgsize) FROM dbstat GROUP BY name")
            if name in tables
        }
        db.close()
        size = path.stat().st_size
    return {
        "days": days,
        "interval_s": interval,
        "checks": len(fail_rates),
        "rows": rows,
        "bytes_per_check": round(size / len(fail_rates)),
        "table_bytes_per_check": table_bytes,
        "loop_us_per_result": round(loop_cpu / results * 1e6, 2),
        "writer_us_per_result": round(flush_cpu / results * 1e6, 2),
    }


def _wal(path: Path) -> None:
    """WAL mode, as the agent's store sets it on the state file."""
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode=WAL")
    db.close()


class _Source:
    """The agent surface the page reads, over generated checks and a real Rollups."""

    def __init__(self, n: int, rollups: Rollups) -> None:
        rng = random.Random(3)
        now = time.time()
        self.rollups = rollups
        self.items: dict[str, dict[str, Any]] = {}
        self.results: dict[str, ProbeResult] = {}
        for i in range(n):
            name = f"check-{i:05d}"
            result = self.results[name] = _result(name, now - 5, ok=i % 10 != 9, rng=rng)
            last = result.to_json()
            self.items[name] = {
                "name": name, "kind": "probe", "url": "ws://svc.example/ws",
                "labels": {"team": f"team-{i % 7}", "shard": str(i % 4)},
                "schedule": {"interval": 30.0, "cron": None}, "timeout": 5.0,
                "state": "up" if last["success"] else "down", "next_run": None,
                "last_result": last, "counts": {"success": 100, "failure": 3},
                "alert": {"status": "ok", "flapping": False, "maintenance": None,
                          "silenced_by": []},
            }  # fmt: skip

    def check_names(self) -> list[str]:
        return list(self.items)

    def checks_json(
        self, *, name: str | None, history: int, names: Any = None
    ) -> list[dict[str, Any]]:
        if names is not None:
            # As the agent's checks_json: a new dict per check, its last result's to_json().
            return [
                {**self.items[n], "last_result": self.results[n].to_json()}
                for n in names
                if n in self.items
            ]
        if name is not None:
            return [self.items[name]] if name in self.items else []
        return list(self.items.values())

    def check_summaries(self, names: Any) -> list[dict[str, Any]]:
        return [
            summary_item(
                n, self.items[n]["labels"], self.results[n], maintenance=False, flapping=False
            )
            for n in names
            if n in self.items
        ]

    def rollup_view(self) -> Rollups:
        return self.rollups

    def agent_location(self) -> str:
        return "bench"

    def silence_view(self) -> None:
        return None


def _fill(path: Path, names: list[str], now: float) -> None:
    """24 h of hour rows, 90 day rows and 2 h of minute rows per check, inserted directly."""
    rng = random.Random(5)
    db = sqlite3.connect(path)
    db.execute("BEGIN")
    hour, day, minute = int(now // 3600 * 3600), int(now // DAY * DAY), int(now // 60 * 60)
    for name in names:
        rows = []
        for table, step, count, runs in (
            ("rollup_hour", 3600, 24, 120), ("rollup_day", DAY, 90, 2880),
            ("rollup_minute", 60, 120, 2),
        ):  # fmt: skip
            base = {"rollup_hour": hour, "rollup_day": day, "rollup_minute": minute}[table]
            for k in range(count):
                fails = 1 if rng.random() < 0.05 else 0
                lat = rng.uniform(0.001, 0.03)
                rows.append((table, name, base - k * step, runs, fails, lat * runs, runs))
        for table, *values in rows:
            db.execute(
                f"INSERT OR REPLACE INTO {table} VALUES (?, ?, ?, ?, 0, ?, ?, '{{}}')",  # noqa: S608
                values,
            )
    db.execute("COMMIT")
    db.close()


async def _measure_page(source: _Source, *, repeats: int = 3) -> dict[str, Any]:
    from aiohttp import web

    app = build_app(source, Authenticator({}))  # type: ignore[arg-type]
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    gaps: list[float] = []
    stop = asyncio.Event()

    async def ticker() -> None:
        last = time.perf_counter()
        while not stop.is_set():
            await asyncio.sleep(0.001)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    tick = asyncio.create_task(ticker())

    def client_side() -> dict[str, Any]:
        # A thread of its own: parsing a large response must not count as the agent's.
        walls: list[float] = []
        size = 0
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120) as client:
            for _ in range(repeats):
                t0 = time.perf_counter()
                plain = client.get("/", headers={"Accept-Encoding": "identity"})
                walls.append(time.perf_counter() - t0)
                size = len(plain.content)
            packed = client.get("/", headers={"Accept-Encoding": "gzip"})
            t0 = time.perf_counter()
            one = client.get("/checks/check-00009")
            check_wall = time.perf_counter() - t0
        return {
            "render_s": [round(w, 3) for w in walls],
            "bytes": size,
            "gzip_bytes": int(packed.headers.get("Content-Length") or len(packed.content)),
            "check_page_s": round(check_wall, 3),
            "check_page_bytes": len(one.content),
        }

    seen = await asyncio.to_thread(client_side)
    stop.set()
    await tick
    await runner.cleanup()
    return {
        **seen,
        "loop_max_gap_ms": round(max(gaps) * 1000, 1),
        "loop_gaps_over_20ms": sum(g > 0.02 for g in gaps),
    }


def page_cost(n: int) -> dict[str, Any]:
    """``/`` at ``n`` checks."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "state.sqlite3"
        _wal(path)
        rollups = Rollups.open(path)
        source = _Source(n, rollups)
        t0 = time.perf_counter()
        _fill(path, source.check_names(), time.time())
        fill = time.perf_counter() - t0
        # As the daemon does once its checks are built: their objects leave the cyclic
        # GC's reach, or each collection walks the 10,000 checks' results.
        freeze_heap()
        result = asyncio.run(_measure_page(source))
        rollups.close()
    return {"checks": n, "fill_s": round(fill, 1), **result}


def main(argv: list[str] | None = None) -> int:
    """Print one JSON document with every figure."""
    args = argv if argv is not None else sys.argv[1:]
    sizes = [int(a) for a in args if a.isdigit()] or [1000, 10000]
    out: dict[str, Any] = {}
    if "--no-storage" not in args:
        out["storage"] = storage_cost()
        print(json.dumps(out["storage"]), flush=True)
    out["page"] = []
    for n in sizes:
        out["page"].append(page_cost(n))
        print(json.dumps(out["page"][-1]), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
