"""Child process of the watch scenario: hold N WatchSessions, report RSS per session.

``python -m bench.watch_child N URL`` prints one JSON line. A separate process so
the RSS measured holds nothing but the sessions (and the interpreter); the target
server runs in its own process on the other core. Also reported: connection attempts
that failed during the connect storm (each one a reconnect), and the CPU share of
the process while all sessions are connected and idle (a busy loop shows here).
"""

from __future__ import annotations

import asyncio
import gc
import json
import resource
import sys
import time

import uvloop

from bench.procs import rss_kib

__all__: list[str] = []

#: Seconds all sessions sit connected and idle before RSS and idle CPU are read.
IDLE_WINDOW = 3.0


async def _hold(count: int, url: str) -> dict[str, object]:
    from agent.config.models import CheckConfig
    from agent.watch import WatchSession

    def make(i: int) -> CheckConfig:
        return CheckConfig.model_validate(
            {
                "name": f"watch-{i:05d}",
                "kind": "watch",
                "url": f"{url}watch/{i}",
                "interval": 30,
                "timeout": 5,
            }
        )

    # Warm-up: one session connected, so imports and caches are in the baseline.
    warm = WatchSession(make(-1), on_result=lambda _r: None)
    warm.start()
    await _until(lambda: warm.stats().connected, 10.0)
    # Only the checks, no throwaway sessions: freed objects would leave holes in the
    # allocator's arenas that the sessions then fill, hiding part of their cost.
    checks_only = [make(i) for i in range(count)]
    gc.collect()
    before = rss_kib_self()
    sessions = [WatchSession(c, on_result=lambda _r: None) for c in checks_only]
    began = time.perf_counter()
    for s in sessions:
        s.start()
    connected = await _until(lambda: all(s.stats().connected for s in sessions), 60.0)
    took = time.perf_counter() - began
    failed = sum(sum(s.stats().reconnects.values()) for s in sessions)
    # Steady state: nothing due in the window (reports every 30 s, pings every 20 s),
    # so any CPU spent here is a busy loop; RSS is read after it, all sessions idle.
    gc.collect()
    cpu0, t0 = time.process_time(), time.perf_counter()
    await asyncio.sleep(IDLE_WINDOW)
    idle_cpu = (time.process_time() - cpu0) / (time.perf_counter() - t0)
    gc.collect()
    after = rss_kib_self()
    n_connected = sum(1 for s in sessions if s.stats().connected)
    await asyncio.gather(*(s.stop() for s in sessions), warm.stop())
    return {
        "sessions": count,
        "connected": n_connected,
        "all_connected": connected,
        "connect_all_s": round(took, 2),
        "failed_attempts": failed,
        "idle_cpu_share": round(idle_cpu, 4),
        "rss_kib_before": before,
        "rss_kib_after": after,
        "rss_kib_per_session": round((after - before) / count, 2),
    }


def rss_kib_self() -> int:
    """This process's RSS in KiB."""
    import os

    return rss_kib(os.getpid())


async def _until(predicate: object, timeout: float) -> bool:
    assert callable(predicate)
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        if predicate():
            return True
        await asyncio.sleep(0.05)
    return bool(predicate())


def main() -> None:
    """Hold ``argv[1]`` sessions against ``argv[2]`` and print the figures as JSON."""
    count, url = int(sys.argv[1]), sys.argv[2]
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, count * 2 + 256)), hard))
    print(json.dumps(uvloop.run(_hold(count, url))), flush=True)


if __name__ == "__main__":
    main()
