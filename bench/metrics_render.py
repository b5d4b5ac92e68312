"""`/metrics` exposition cost: bytes and render CPU for 1,000 and 10,000 checks.

Run: ``.venv/bin/python -m bench.metrics_render [CHECKS ...]`` (default 1000 10000).
Served: ``.venv/bin/python -m bench.metrics_render --served [--rounds R] [--tree DIR] [CHECKS]``.
Heap: ``.venv/bin/python -m bench.metrics_render --heap [CHECKS]`` (default 1000).

Builds :class:`agent.metrics.registry.Metrics` over a real alert service (as the daemon
wires them) with generated checks shaped like the capacity
bench's (``labels: {shard}``, 3 pings), feeds each a realistic result (80 % ``ws://``
successes, 10 % ``wss://`` successes with TLS, 10 % refused connections), then measures
three scrapes the way the web handler consumes them (piece by piece):

- ``cold``: the first scrape after every check got a result;
- ``warm``: a second scrape with no new result in between;
- ``half``: after half of the checks got a new result (a 30 s interval scraped every
  15 s).

For each: exposition bytes, CPU seconds (``time.process_time``) for the whole scrape,
the number of pieces and the p99 / longest CPU time to produce one piece (how long the
event loop is blocked at once). Thread CPU time, not wall time: on a shared machine a
piece's wall time includes preemption by other processes (4 ms ticks here); cyclic GC
pauses are included, as in the daemon. Also the memory the cached text holds per check
(``cache_bytes_per_check``, from ``sys.getsizeof``).

``--heap`` measures what the metrics keep per check (tracemalloc): the checks' configs,
results and alert service are made first; then the series of N checks, one result each,
and one scrape (which caches every check's text and the alert-state families' text).
Two shapes: ``probe`` (the mix above) and ``watch`` (a watch check's first report after
connecting: success, upgrade phases, no ping yet), each with per-check histograms off
(the default) and on. Bytes per check, then the biggest allocation sites.

``--served`` measures the scrape as Prometheus gets it: a child process on the bench
core holds the same checks behind the agent's own ``/metrics`` handler on uvloop, its
loop kept about half busy by short callbacks and fed new results at a 30 s interval's
rate (N / 30 per second); this process, on the other core, scrapes it ``--rounds``
times alternating plain and ``Accept-Encoding: gzip``, while a process of its own
(:mod:`bench.poller`) asks ``/healthz`` 100 times a second. Per scrape: serve time,
bytes on the wire, and the longest ``/healthz`` answer while it was served (the
longest the loop was held, seen from outside). ``--tree DIR`` runs the child on the
``agent`` package in ``DIR`` (e.g. a ``git archive`` of an older commit), for
before/after on the same machine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from agent.config.models import CheckConfig
from agent.metrics.registry import Metrics
from agent.result import ProbeResult, Reason, TLSInfo
from bench import procs
from bench.poller import Poller
from bench.stats import ms, pct

__all__ = ["main", "measure", "served"]

#: Busy callbacks on the served child's loop: CPU seconds each, started per second.
WORK_S = 0.0003
WORK_HZ = 1600.0
HEALTHZ_HZ = 100.0


def _result(check: CheckConfig, i: int, rng: random.Random) -> ProbeResult:
    result = ProbeResult(check=check.name, kind="probe", url=check.url, started_at=time.time())
    ms = rng.uniform(0.5, 3.0) / 1000.0
    if i % 10 == 9:
        result.phases = {"resolve": 0.00002, "connect": ms / 4, "total": ms / 3}
        return result.fail(Reason.CONNECT_REFUSED, "connection refused")
    result.success = True
    result.status_code = 101
    result.phases = {"resolve": 0.00002, "connect": ms / 5, "handshake": ms,
                     "ping": ms / 2, "close": ms / 4, "total": ms * 2}  # fmt: skip
    if i % 10 == 8:
        result.phases["tls"] = ms * 3
        result.tls = TLSInfo(version="TLSv1.3", cert_not_after=1_900_000_000.0)
    result.pings = [rng.uniform(0.00005, 0.0005) for _ in range(3)]
    return result


def _scrape(metrics: Metrics) -> dict[str, float]:
    size = 0
    times: list[float] = []
    cpu0 = time.process_time()
    pieces = metrics.render_chunks()
    while True:
        t0 = time.thread_time()
        piece = next(pieces, None)
        times.append(time.thread_time() - t0)
        if piece is None:
            break
        size += len(piece.encode("utf-8"))
    return {
        "bytes": size,
        "cpu_s": round(time.process_time() - cpu0, 4),
        "pieces": len(times),
        "piece_p99_ms": ms(pct(times, 99)),
        "piece_max_ms": ms(max(times)),
    }


def _checks(n: int) -> list[CheckConfig]:
    return [
        CheckConfig(
            name=f"gen-{i:05d}",
            url=f"ws://127.0.0.1:9/gen/{i}",
            interval=30.0,
            timeout=5.0,
            pings=3,
            labels={"shard": f"s{i % 16}"},
        )
        for i in range(n)
    ]


def _alerting_metrics(checks: list[CheckConfig], state_dir: str) -> Metrics:
    """Metrics over a real AlertService wired the way the daemon wires them.

    No receivers, windows or silences, as in a plain configuration. On an older tree
    (``--tree``) the alert-state families ask the service one check at a time.
    """
    from agent.alerting import AlertService
    from agent.config import Config
    from agent.storage import Store

    service = AlertService(Config(checks=tuple(checks)), Store(Path(state_dir)))
    wiring: dict[str, Any] = {"alert_flags": getattr(service, "flagged", None)}
    if wiring["alert_flags"] is None:
        wiring = {
            "alert_firing": service.firing,
            "alert_flags": {
                "flapping": service.flapping,
                "maintenance": service.in_maintenance,
                "silenced": service.silenced,
            },
        }
    return Metrics(
        location="bench",
        alert_suppressed=service.suppressed_counts,
        queue_depth=service.queue_depth,
        **wiring,
    )


def _watch_result(check: CheckConfig, rng: random.Random) -> ProbeResult:
    result = ProbeResult(check=check.name, kind="watch", url=check.url, started_at=time.time())
    result.success = True
    result.status_code = 101
    ms = rng.uniform(0.5, 3.0) / 1000.0
    result.phases = {"resolve": 0.00002, "connect": ms / 5, "handshake": ms, "total": ms * 2}
    return result


def heap(n: int, *, shape: str, histograms: bool, top: int = 0) -> dict[str, object]:
    """Bytes per check the metrics hold for ``n`` checks of ``shape`` (module docstring)."""
    import gc
    import tracemalloc

    from agent.config.models import CheckMetricsConfig

    rng = random.Random(7)
    checks = [
        c.model_copy(
            update={
                "kind": "watch" if shape == "watch" else "probe",
                "metrics": CheckMetricsConfig(histograms=histograms),
            }
        )
        for c in _checks(n)
    ]
    if shape == "watch":
        results = [_watch_result(c, rng) for c in checks]
    else:
        results = [_result(c, i, rng) for i, c in enumerate(checks)]
    state = tempfile.TemporaryDirectory()
    metrics = _alerting_metrics(checks, state.name)
    # The agent-wide series exist before the first check: not a cost per check.
    metrics.set_checks([])
    sum(map(len, metrics.render_chunks()))
    tracemalloc.start(1)
    before = tracemalloc.take_snapshot()
    metrics.set_checks(checks)
    for check, result in zip(checks, results, strict=True):
        metrics.observe(check, result, duration=0.003)
    size = sum(map(len, metrics.render_chunks()))
    gc.collect()
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    diff = after.compare_to(before, "lineno")
    out: dict[str, object] = {
        "checks": n,
        "shape": shape,
        "histograms": histograms,
        "heap_bytes_per_check": round(sum(d.size_diff for d in diff) / n),
        "exposition_bytes_per_check": round(size / n),
    }
    if top:
        out["sites"] = [
            f"{d.size_diff / n:7.1f} B  {d.traceback[0].filename.rsplit('/', 2)[-1]}"
            f":{d.traceback[0].lineno}"
            for d in diff[:top]
        ]
    del metrics
    state.cleanup()
    return out


def measure(n: int) -> dict[str, object]:
    """Bytes and CPU of three scrapes of ``n`` checks (see the module docstring)."""
    rng = random.Random(7)
    checks = _checks(n)
    state = tempfile.TemporaryDirectory()
    metrics = _alerting_metrics(checks, state.name)
    metrics.set_checks(checks)
    for i, check in enumerate(checks):
        metrics.observe(check, _result(check, i, rng), duration=0.003)
    out: dict[str, object] = {"checks": n, "cold": _scrape(metrics), "warm": _scrape(metrics)}
    for i, check in enumerate(checks[::2]):
        metrics.observe(check, _result(check, 2 * i, rng), duration=0.003)
    out["half"] = _scrape(metrics)
    cache = 0
    for check in checks:
        series = metrics.series(check)
        block = getattr(series, "block", None)  # absent before caching existed
        if block is not None:
            cache += sys.getsizeof(block) + sum(sys.getsizeof(text) for text in block if text)
    out["cache_bytes_per_check"] = round(cache / n)
    cold = out["cold"]
    assert isinstance(cold, dict)
    out["bytes_per_check"] = round(cold["bytes"] / n)
    state.cleanup()
    return out


def _serve_child(n: int, options: list[str]) -> None:
    """The served agent: /metrics and /healthz over ``n`` checks on a busy uvloop.

    ``options``: ``pause=S`` (the handler's pause between pieces), ``chunk=BYTES``
    (characters per piece at most), to compare settings of the same tree; ``state=DIR``
    (the alert service's state directory, given by the parent).
    """
    import uvloop
    from aiohttp import web

    from agent.http import server
    from agent.http.server import build_app

    try:
        from agent.http.auth import Authenticator
    except ImportError:  # an older tree (--tree), before auth had its own module
        from agent.http.server import Authenticator  # type: ignore[attr-defined,no-redef]

    chunk: dict[str, int] = {}
    state_dir = ""
    for option in options:
        key, _, value = option.partition("=")
        if key == "pause":
            server.SCRAPE_PAUSE = float(value)
        elif key == "chunk":
            chunk["chunk_bytes"] = int(value)
        elif key == "state":
            state_dir = value
    from agent.metrics.process import with_process

    rng = random.Random(7)
    checks = _checks(n)
    metrics = _alerting_metrics(checks, state_dir)
    metrics.set_checks(checks)
    for i, check in enumerate(checks):
        metrics.observe(check, _result(check, i, rng), duration=0.003)

    class View:
        def ready(self) -> tuple[bool, str]:
            return True, "ready"

        def metrics_chunks(self) -> Iterator[str]:
            return with_process(metrics.render_chunks(**chunk))  # type: ignore[arg-type]

        def silence_view(self) -> None:
            return None

    async def main() -> None:
        loop = asyncio.get_running_loop()
        runner = web.AppRunner(build_app(View(), Authenticator({})), access_log=None)  # type: ignore[arg-type]
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        print(f"PORT {port}", flush=True)

        def busy() -> None:
            until = time.perf_counter() + WORK_S
            while time.perf_counter() < until:
                pass

        step, per_result = 2.0 / WORK_HZ, 30.0 / n
        next_at = time.perf_counter()
        owed = 0.0
        while True:
            for _ in range(2):
                loop.call_soon(busy)
            owed += step / per_result
            while owed >= 1.0:  # new results at a 30 s interval's rate
                i = rng.randrange(n)
                metrics.observe(checks[i], _result(checks[i], i, rng), duration=0.003)
                owed -= 1.0
            next_at += step
            await asyncio.sleep(max(0.0, next_at - time.perf_counter()))

    uvloop.run(main())


def served(
    n: int, *, rounds: int, tree: str | None, options: list[str] | None = None
) -> dict[str, Any]:
    """Serve time, bytes and outside-seen stall of plain and gzip scrapes of ``n`` checks."""
    root = Path(__file__).resolve().parent.parent
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (tree, str(root)) if p)}
    # -P: the working directory is not put on the path, so ``agent`` comes from ``tree``.
    argv = [sys.executable, "-P", "-m", "bench.metrics_render", "--serve-child", str(n)]
    argv += [f"--option={o}" for o in options or []]
    state = tempfile.TemporaryDirectory()
    argv.append(f"--option=state={state.name}")
    child = procs.spawn(argv, core=procs.BENCH_CORE, what="served metrics", env=env)
    poller: Poller | None = None
    runs: dict[str, list[dict[str, float]]] = {"plain": [], "gzip": []}
    try:
        time.sleep(2.0)
        poller = Poller(child.port, hz=HEALTHZ_HZ)
        for rnd in range(rounds):
            for kind in ("plain", "gzip") if rnd % 2 == 0 else ("gzip", "plain"):
                headers = {"Accept-Encoding": "gzip"} if kind == "gzip" else {}
                url = f"http://127.0.0.1:{child.port}/metrics"
                idle_cpu = procs.cpu_seconds(child.pid)
                time.sleep(1.0)
                cpu0 = procs.cpu_seconds(child.pid)
                background = cpu0 - idle_cpu  # CPU per second without a scrape
                t0 = time.perf_counter()
                request = urllib.request.Request(url, headers=headers)
                with urllib.request.urlopen(request, timeout=120) as resp:  # noqa: S310 - http://
                    size = len(resp.read())
                t1 = time.perf_counter()
                cpu = procs.cpu_seconds(child.pid) - cpu0 - background * (t1 - t0)
                time.sleep(0.5)
                held = [d for start, d in list(poller.polls) if start <= t1 and start + d >= t0]
                runs[kind].append(
                    {
                        "s": t1 - t0,
                        "bytes": size,
                        "held_ms": ms(max(held)) if held else 0.0,
                        "cpu_s": cpu,
                    }
                )
                time.sleep(0.5)
    finally:
        if poller is not None:
            poller.stop()
        procs.stop(child)
        state.cleanup()
    assert poller is not None
    between = [d for _, d in poller.polls]
    out: dict[str, Any] = {"checks": n, "tree": tree or "this", "options": options or []}
    for kind, scrapes in runs.items():
        out[kind] = {
            "serve_s_median": round(statistics.median(r["s"] for r in scrapes), 3),
            "serve_s_all": [round(r["s"], 3) for r in scrapes],
            "bytes": scrapes[-1]["bytes"],
            # The child's CPU during the scrape beyond its rate without one (1 s before):
            # on a busy loop it includes the probes' work the scrape displaced, roughly.
            "scrape_cpu_s_median": round(statistics.median(r["cpu_s"] for r in scrapes), 3),
            "healthz_max_ms_median": statistics.median(r["held_ms"] for r in scrapes),
        }
    out["healthz_p50_ms"] = ms(pct(between, 50))
    out["loadavg"] = round(os.getloadavg()[0], 2)
    return out


def main(argv: list[str]) -> None:
    """Print one JSON line per check count."""
    parser = argparse.ArgumentParser(prog="python -m bench.metrics_render")
    parser.add_argument("checks", nargs="*", type=int)
    parser.add_argument("--served", action="store_true")
    parser.add_argument("--heap", action="store_true", help="bytes the metrics keep per check")
    parser.add_argument("--top", type=int, default=0, help="allocation sites shown with --heap")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--tree")
    parser.add_argument("--option", action="append", default=[], help="pause=S, chunk=BYTES")
    parser.add_argument("--serve-child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_child:
        _serve_child(args.serve_child, args.option)
        return
    if args.heap:
        for n in args.checks or [1000]:
            for shape in ("watch", "probe"):
                for histograms in (False, True):
                    result = heap(n, shape=shape, histograms=histograms, top=args.top)
                    print(json.dumps(result), flush=True)
        return
    if args.served:
        procs.pin_self(procs.SERVER_CORE)
        for n in args.checks or [10000]:
            result = served(n, rounds=args.rounds, tree=args.tree, options=args.option)
            print(json.dumps(result), flush=True)
        return
    for n in args.checks or [1000, 10000]:
        print(json.dumps(measure(n)), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
