"""Scenario: are wsprobe's latencies true? Errors against a delay proxy, per load level.

Ground truth: the delay proxy (bench/proxy.py, its own process) adds ``DELAY`` each
way, so the HTTP upgrade and every ping/pong cost ``2 x DELAY`` plus loopback and
server time, and TCP connect costs loopback time only (the proxy's kernel accepts).
The exact path cost per phase is calibrated first, on an idle loop, with a minimal
hand-written client (``raw_cycle``): its medians are the truth.

Then, for each load level (N checks at a 30 s interval, i.e. N/30 probes/s run by
wsprobe's engine against the direct server on this same loop, open loop), measuring
probes go through the proxy every ``CADENCE`` seconds the way the daemon's runner
runs them: ``admit()`` by the lag monitor, probe, ``overlapped()`` for lag_suspect.
Reported: signed error (measured - truth) p50/p99/max for connect, handshake and ping
RTT, over all results and over those not flagged lag_suspect.
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import time
from typing import Any

from agent.lag import LoopLagMonitor
from bench.clients import Cycle, CycleFn, bare_cycle, raw_cycle, wsprobe_engine
from bench.stats import ms, summary

__all__ = ["DELAY", "run"]

DELAY = 0.005  # seconds added each way by the proxy
CADENCE = 0.1  # one measuring probe every 100 ms
INTERVAL = 30.0  # the generated checks' interval: N checks = N/30 probes/s
BUDGET = 0.05  # agent.loop_lag_budget default
MAX_IN_FLIGHT = 256  # agent.max_concurrency default


async def _calibrate(url: str, samples: int) -> dict[str, Any]:
    cycles = [await raw_cycle(url) for _ in range(samples)]
    good = [c for c in cycles if c.ok]
    if not good:
        raise RuntimeError("calibration through the delay proxy failed")
    return {
        "connect": statistics.median(c.connect for c in good if c.connect is not None),
        "handshake": statistics.median(c.handshake for c in good if c.handshake is not None),
        "ping": statistics.median(p for c in good for p in c.pings),
        # The setup's own noise: how far the truth-meter itself strays from the median.
        "_cycles": good,
    }


def _errors(measured: list[Cycle], truth: dict[str, float]) -> dict[str, Any]:
    per: dict[str, list[float]] = {"connect": [], "handshake": [], "ping": []}
    for c in measured:
        if c.connect is not None:
            per["connect"].append(c.connect - truth["connect"])
        if c.handshake is not None:
            per["handshake"].append(c.handshake - truth["handshake"])
        per["ping"].extend(p - truth["ping"] for p in c.pings)
    return {phase: summary(values) for phase, values in per.items()}


async def _level(
    load: CycleFn,
    measure: CycleFn,
    *,
    direct_url: str,
    proxy_url: str,
    checks: int,
    duration: float,
    truth: dict[str, float],
) -> dict[str, Any]:
    monitor = LoopLagMonitor(budget=BUDGET)
    monitor.start()
    rate = checks / INTERVAL
    in_flight: set[asyncio.Task[Any]] = set()
    launched = dropped = 0
    measured: list[Cycle] = []
    admit_waits: list[float] = []
    stop_at = time.perf_counter() + duration

    async def one_load() -> None:
        await monitor.admit()
        with contextlib.suppress(Exception):  # load cycles only make load
            await load(direct_url)

    async def one_measure() -> None:
        admit_waits.append(await monitor.admit())
        t0 = time.perf_counter()
        try:
            c = await measure(proxy_url)
        except Exception:
            c = Cycle(ok=False)
        c.lag_suspect = c.lag_suspect or monitor.overlapped(t0, time.perf_counter())
        measured.append(c)

    def spawn(coro: Any) -> None:
        task = asyncio.create_task(coro)
        in_flight.add(task)
        task.add_done_callback(in_flight.discard)

    cpu0, t0 = time.process_time(), time.perf_counter()
    next_measure = t0
    owed = 0.0
    last = t0
    while (now := time.perf_counter()) < stop_at:
        owed += (now - last) * rate
        last = now
        while owed >= 1.0:
            owed -= 1.0
            if len(in_flight) < MAX_IN_FLIGHT:
                spawn(one_load())
                launched += 1
            else:
                dropped += 1
        if now >= next_measure:
            spawn(one_measure())
            next_measure += CADENCE
        await asyncio.sleep(0.005)
    if in_flight:
        await asyncio.wait(in_flight, timeout=15)
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    await monitor.stop()
    ok = [c for c in measured if c.ok]
    clean = [c for c in ok if not c.lag_suspect]
    return {
        "checks": checks,
        "target_probes_per_s": round(rate, 1),
        "load_launched": launched,
        "load_dropped_at_max_in_flight": dropped,
        "cpu_share": round(cpu / wall, 3),
        "measured": len(measured),
        "measured_ok": len(ok),
        "lag_suspect": len(ok) - len(clean),
        "admit_wait": summary(admit_waits),
        "loop_lag": summary(monitor.drain_samples()),
        "error_all": _errors(ok, truth),
        "error_clean": _errors(clean, truth),
    }


async def run(direct_url: str, proxy_url: str, *, quick: bool) -> dict[str, Any]:
    """Calibrate through the proxy, then measure errors at each load level."""
    levels = [0, 1000, 10000] if quick else [0, 1000, 5000, 10000, 20000]
    duration = 4.0 if quick else 10.0
    wsprobe, note = wsprobe_engine()
    measure = wsprobe or bare_cycle
    load = wsprobe or bare_cycle
    truth = await _calibrate(proxy_url, 30 if quick else 100)
    out: dict[str, Any] = {
        "delay_each_way_ms": ms(DELAY),
        "truth_ms": {k: ms(v) for k, v in truth.items() if not k.startswith("_")},
        "truth_meter_error": _errors(truth.pop("_cycles"), truth),
        "measuring_engine": "wsprobe" if wsprobe else "bare websockets (wsprobe missing)",
        "note": note,
        "levels": [],
    }
    if wsprobe is None:
        out["partial"] = (
            "wsprobe engine missing: load and measurement by the bare loop, connect not measured"
        )
    for checks in levels:
        level = await _level(
            load,
            measure,
            direct_url=direct_url,
            proxy_url=proxy_url,
            checks=checks,
            duration=duration,
            truth=truth,
        )
        out["levels"].append(level)
        print(
            f"  fidelity {checks} checks: ping err p99 "
            f"{level['error_all']['ping']['p99_ms']} ms "
            f"(clean {level['error_clean']['ping']['p99_ms']}), handshake err p99 "
            f"{level['error_all']['handshake']['p99_ms']} ms, loop lag p99 "
            f"{level['loop_lag']['p99_ms']} ms, suspect {level['lag_suspect']}/"
            f"{level['measured_ok']}",
            flush=True,
        )
    return out
