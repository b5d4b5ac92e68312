"""Child process of the watch scenario: hold N WatchSessions, report RSS per session.

``python -m bench.watch_child N URL`` prints one JSON line. A separate process so
the RSS measured holds nothing but the sessions (and the interpreter).
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


async def _hold(count: int, url: str) -> dict[str, object]:
    from agent.config.models import CheckConfig
    from agent.watch import WatchSession

    def make(i: int) -> WatchSession:
        check = CheckConfig.model_validate(
            {
                "name": f"watch-{i:05d}",
                "kind": "watch",
                "url": f"{url}watch/{i}",
                "interval": 30,
                "timeout": 5,
            }
        )
        return WatchSession(check, on_result=lambda _r: None)

    # Warm-up: one session connected, so imports and caches are in the baseline.
    warm = make(-1)
    warm.start()
    await _until(lambda: warm.stats().connected, 10.0)
    checks_only = [make(i).check for i in range(count)]
    gc.collect()
    before = rss_kib_self()
    sessions = [WatchSession(c, on_result=lambda _r: None) for c in checks_only]
    began = time.perf_counter()
    for s in sessions:
        s.start()
    connected = await _until(lambda: all(s.stats().connected for s in sessions), 60.0)
    took = time.perf_counter() - began
    gc.collect()
    after = rss_kib_self()
    n_connected = sum(1 for s in sessions if s.stats().connected)
    await asyncio.gather(*(s.stop() for s in sessions), warm.stop())
    return {
        "sessions": count,
        "connected": n_connected,
        "all_connected": connected,
        "connect_all_s": round(took, 2),
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
