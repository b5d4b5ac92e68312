"""Scenario: probe-engine throughput, wsprobe's engine against a bare websockets loop.

At each concurrency level, ``concurrency`` workers run cycles back to back for a
fixed time; we count cycles/s and CPU-seconds per cycle (this process's CPU, which
also holds the lag monitor's sampling), and keep ping RTTs and loop lag so the cost
of congestion on the figures is visible. Both engines run in the same process, on
the same event loop, one after the other, alternating order between rounds.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from agent.runtime.loop_lag import LoopLagMonitor
from bench.clients import CycleFn, bare_cycle, wsprobe_engine
from bench.stats import summary

__all__ = ["run"]


async def _point(cycle: CycleFn, url: str, concurrency: int, duration: float) -> dict[str, Any]:
    monitor = LoopLagMonitor(budget=1.0, interval=0.02)
    ok = failed = 0
    rtts: list[float] = []
    errors: dict[str, int] = {}
    stop_at = time.perf_counter() + duration

    async def worker() -> None:
        nonlocal ok, failed
        while time.perf_counter() < stop_at:
            try:
                c = await cycle(url)
            except Exception as exc:  # a failed cycle is counted, never fatal
                failed += 1
                errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1
                continue
            if c.ok:
                ok += 1
                rtts.extend(c.pings)
            else:
                failed += 1

    monitor.start()
    cpu0, t0 = time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    await monitor.stop()
    lag = monitor.drain_samples()
    return {
        "cycles": ok,
        "failed": failed,
        "errors": errors,
        "wall_s": round(wall, 3),
        "cycles_per_s": round(ok / wall, 1),
        "cpu_s_per_cycle": round(cpu / ok, 6) if ok else None,
        "cpu_share": round(cpu / wall, 3),
        "ping_rtt": summary(rtts),
        "loop_lag": summary(lag),
    }


async def run(url: str, *, quick: bool) -> dict[str, Any]:
    """Measure both engines at each concurrency level against ``url``."""
    levels = [1, 10, 100, 500]
    duration = 1.5 if quick else 5.0
    rounds = 1 if quick else 2
    engines: dict[str, CycleFn] = {"bare": bare_cycle}
    wsprobe, note = wsprobe_engine()
    if wsprobe is not None:
        engines["wsprobe"] = wsprobe
    # Warm both paths (imports, SSL-free handshake caches, allocator) before measuring.
    for cycle in engines.values():
        await _point(cycle, url, 4, 0.5)
    out: dict[str, Any] = {"duration_s": duration, "rounds": rounds, "wsprobe_engine": note}
    points: list[dict[str, Any]] = []
    for concurrency in levels:
        runs: dict[str, list[dict[str, Any]]] = {name: [] for name in engines}
        for r in range(rounds):
            order = list(engines) if r % 2 == 0 else list(reversed(engines))
            for name in order:
                runs[name].append(await _point(engines[name], url, concurrency, duration))
        point: dict[str, Any] = {"concurrency": concurrency}
        for name, results in runs.items():
            rate = sum(x["cycles_per_s"] for x in results) / len(results)
            cpu = [x["cpu_s_per_cycle"] for x in results if x["cpu_s_per_cycle"]]
            point[name] = {
                "cycles_per_s": round(rate, 1),
                "cpu_s_per_cycle": round(sum(cpu) / len(cpu), 6) if cpu else None,
                "runs": results,
            }
        if "wsprobe" in point and point["bare"]["cycles_per_s"]:
            point["ratio"] = round(
                point["wsprobe"]["cycles_per_s"] / point["bare"]["cycles_per_s"], 3
            )
        points.append(point)
        print(
            f"  engine c={concurrency}: "
            + ", ".join(f"{n}={point[n]['cycles_per_s']}/s" for n in engines)
            + (f" ratio={point['ratio']}" if "ratio" in point else ""),
            flush=True,
        )
    out["points"] = points
    if wsprobe is None:
        out["skipped"] = f"wsprobe engine: {note}"
    return out
