"""CPU cost of the daemon's per-result path: ``Runner.record`` with the real services.

Builds a generated 10,000-check config (``bench.gen``), a real :class:`Metrics`,
:class:`Store` (SQLite in a temp dir) and :class:`AlertService`, then feeds N
realistic successful results round-robin over the checks and reports CPU µs per
``record()`` call. ``--profile`` also prints the top cProfile entries.

``--scheduled`` instead runs the checks through the real :class:`CheckScheduler`
on uvloop at a 5 s interval with a probe that returns at once, and
reports CPU µs per completed run: the whole daemon path minus the probe engine.

``.venv/bin/python -m bench.runner_overhead [N] [--profile] [--scheduled]``
"""

from __future__ import annotations

import asyncio
import cProfile
import pstats
import sys
import tempfile
import time
from pathlib import Path

import uvloop

from agent.alerting import AlertService
from agent.config.loader import load_config
from agent.config.models import CheckConfig
from agent.metrics.registry import Metrics
from agent.result import ProbeResult
from agent.runtime.registries import REGISTRIES
from agent.runtime.runner import Runner
from agent.runtime.scheduler import CheckScheduler
from agent.storage import Store
from bench.gen import write_config

__all__ = ["record_cost"]

CHECKS = 10_000


def _result(name: str, url: str) -> ProbeResult:
    """A successful run shaped like a real one (all phases, three pings)."""
    return ProbeResult(
        check=name,
        kind="probe",
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


async def _main(n: int, profile: bool) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        config = load_config(
            write_config(root, url="ws://127.0.0.1:9/", checks=CHECKS), registries=REGISTRIES
        )
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
        return cpu / n * 1e6


async def record_cost(n: int = 20_000) -> float:
    """CPU µs per ``Runner.record()`` call with the real services (``n`` results)."""
    return await _main(n, False)


async def _scheduled(seconds: float, profile: bool) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        config = load_config(
            write_config(root, url="ws://127.0.0.1:9/", checks=CHECKS), registries=REGISTRIES
        )
        # model_copy skips validation: a 5 s interval with a 1 s timeout is valid anyway.
        checks = [c.model_copy(update={"interval": 5.0, "timeout": 1.0}) for c in config.checks]
        config = config.model_copy(update={"checks": checks})
        metrics = Metrics(location="bench")
        store = Store(root / "state", history_size=config.agent.history_size)
        alerting = AlertService(config, store)
        runs = 0

        async def probe(check: CheckConfig) -> ProbeResult:
            nonlocal runs
            runs += 1
            return _result(check.name, check.url)

        runner = Runner(
            metrics=metrics,
            probes={"probe": probe},
            max_concurrency=256,
            store=store,
            alerting=alerting,
        )
        runner.set_checks(checks)
        scheduler = CheckScheduler(run=runner.run_check, skipped=metrics.skipped)
        await scheduler.apply(checks)
        scheduler.start()
        await asyncio.sleep(6.0)  # one full interval: every job has fired once
        profiler = cProfile.Profile() if profile else None
        if profiler is not None:
            profiler.enable()
        before, cpu, wall = runs, time.process_time(), time.perf_counter()
        await asyncio.sleep(seconds)
        done = runs - before
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        if profiler is not None:
            profiler.disable()
            pstats.Stats(profiler).sort_stats("tottime").print_stats(30)
        print(
            f"scheduled run: {cpu / done * 1e6:.1f} µs CPU per run, {done / wall:.0f} runs/s"
            f" ({done} runs in {wall:.1f} s, {CHECKS} checks at 5 s)"
        )
        scheduler.pause()
        await runner.drain(grace_timeout=1.0)
        await scheduler.shutdown()
        # Runs the scheduler submitted but that had not started yet end with the loop.
        rest = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in rest:
            task.cancel()
        await asyncio.gather(*rest, return_exceptions=True)
        await alerting.aclose()
        store.close()


def main() -> None:
    """Entry point: ``[N] [--profile] [--scheduled]``."""
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    profile = "--profile" in sys.argv
    if "--scheduled" in sys.argv:
        uvloop.run(_scheduled(float(args[0]) if args else 10.0, profile))
        return
    n = int(args[0]) if args else 20_000
    asyncio.run(_main(n, profile))


if __name__ == "__main__":
    main()
