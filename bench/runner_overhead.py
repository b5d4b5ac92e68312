"""CPU cost of the daemon's per-result path: ``Runner.record`` with the real services.

Builds a generated 10,000-check config (``bench.gen``), a real :class:`Metrics`,
:class:`Store` (SQLite in a temp dir) and :class:`AlertService`, then feeds N
realistic successful results round-robin over the checks and reports CPU µs per
``record()`` call. ``--profile`` prints the top cProfile entries instead of timing.

``.venv/bin/python -m bench.runner_overhead [N] [--profile]``
"""

from __future__ import annotations

import asyncio
import cProfile
import pstats
import sys
import tempfile
import time
from pathlib import Path

from agent.alerting import AlertService
from agent.config.loader import load_config
from agent.metrics import Metrics
from agent.result import ProbeResult
from agent.runner import Runner
from agent.store import Store
from bench.gen import write_config

__all__: list[str] = []

CHECKS = 10_000


def _result(name: str, url: str) -> ProbeResult:
    """A successful run shaped like a real one (all phases, three pings)."""
    return ProbeResult(
        check=name,
        kind="websocket",
        url=url,
        started_at=time.time(),
        success=True,
        phases={
            "dns": 0.0001,
            "connect": 0.0003,
            "handshake": 0.0009,
            "ping": 0.0004,
            "close": 0.0002,
            "total": 0.0021,
        },
        pings=[0.00012, 0.00011, 0.00013],
        status_code=101,
        close_code=1000,
        peer_ip="127.0.0.1",
    )


async def _main(n: int, profile: bool) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        config = load_config(write_config(root, url="ws://127.0.0.1:9/", checks=CHECKS))
        metrics = Metrics(location="bench")
        store = Store(root / "state", history_size=config.agent.history_size)
        alerting = AlertService(config, store)
        runner = Runner(
            metrics=metrics, probes={}, max_concurrency=256, store=store, alerting=alerting
        )
        runner.set_checks(config.checks)
        checks = list(config.checks)
        results = [_result(c.name, c.url) for c in checks]
        # Warm up: one result per check (first rows, first histograms).
        for check, result in zip(checks, results, strict=True):
            runner.record(check, result, duration=0.003)
        work = [(checks[i % CHECKS], results[i % CHECKS]) for i in range(n)]
        profiler = cProfile.Profile() if profile else None
        if profiler is not None:
            profiler.enable()
        cpu = time.process_time()
        wall = time.perf_counter()
        for check, result in work:
            runner.record(check, result, duration=0.003)
        flush = getattr(store, "flush", None)
        if flush is not None:  # batched history: the pending rows are part of the cost
            flush()
        cpu = time.process_time() - cpu
        wall = time.perf_counter() - wall
        if profiler is not None:
            profiler.disable()
            pstats.Stats(profiler).sort_stats("tottime").print_stats(25)
        print(
            f"record(): {cpu / n * 1e6:.1f} µs CPU, {wall / n * 1e6:.1f} µs wall per result"
            f" (N={n}, {CHECKS} checks)"
        )
        await alerting.aclose()
        store.close()


def main() -> None:
    """Entry point: ``[N] [--profile]``."""
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    n = int(args[0]) if args else 20_000
    asyncio.run(_main(n, "--profile" in sys.argv))


if __name__ == "__main__":
    main()
