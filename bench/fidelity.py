"""Scenario: are wsprobe's latencies true? Errors against a delay proxy, per load level.

Ground truth: the delay proxy (bench/proxy.py, its own process) adds ``DELAY`` each
way and logs, for every connection, when each chunk arrived and when it was passed
on (``perf_counter`` = CLOCK_MONOTONIC, shared by all processes). For a response
chunk, the wire truth is "delivered to the client" minus "the request that triggered
it arrived from the client": what a client with zero overhead would measure, minus
two loopback hops. So the proxy's own jitter (and its core's load) is part of the
truth, not of the error. Each measuring probe uses a unique URL path, which is how
the proxy's record and the probe's result are paired.

``connect`` has no wire record (the kernel accepts), so its truth is the median of
an idle, minimal hand-written client (``raw_cycle``) through the same proxy; that
client's own error against the wire truth is reported as ``truth_meter``: the
irreducible overhead of loopback plus parsing.

For each load level (N checks at a 30 s interval, i.e. N/30 probes/s run by wsprobe's
engine against the direct server on this same loop, open loop, at most 256 in
flight), a measuring probe goes through the proxy every ``CADENCE`` seconds the way
the daemon's runner runs it: ``admit()``, probe, ``overlapped()`` for lag_suspect.
Reported: signed error (measured - truth) p50/p99/max for connect, handshake and ping
RTT, over all results and over those not flagged lag_suspect. The measuring probes
count towards the level's rate (N/30 probes/s in all).

Where the error comes from: the measuring probes' connections are instrumented (bench
only, the agent's classes are patched for the scenario's duration) with absolute
perf_counter stamps of each ping's send and pong parse and of the handshake's start,
101 parse and resumption, so each error splits into its legs against the proxy's
kernel stamps: ``send`` (agent wrote -> kernel received at the proxy), ``receive``
(proxy handed the reply to the kernel -> agent parsed it) and, for the handshake,
``resume`` (101 parsed -> the probe's task ran again: not part of the published
``handshake``, which ends at the parse). ``proxy_late`` is how much
later than the kernel the proxy's reader thread saw each request: what the wire truth
was off by when the proxy stamped arrivals itself.

``python -m bench.fidelity`` runs this scenario alone (its own server and proxy), with
the levels, duration and cadence as options.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import socket
import statistics
import sys
import time
from collections import defaultdict
from typing import Any

from agent.runtime.loop_lag import LoopLagMonitor
from bench.clients import Cycle, CycleFn, bare_cycle, raw_cycle, wsprobe_engine
from bench.fidelity_stamps import ConnStamps, instrumented, legs, run_delay
from bench.stats import ms, summary

__all__ = ["DELAY", "Wire", "errors", "main", "run"]

DELAY = 0.005  # seconds added each way by the proxy
CADENCE = 0.025  # one measuring probe every 25 ms: 400 per 10 s level, for a real p99
INTERVAL = 30.0  # the generated checks' interval: N checks = N/30 probes/s
BUDGET = 0.01  # agent.loop_lag_budget default (DEFAULT_LOOP_LAG_BUDGET)
MAX_IN_FLIGHT = 256  # agent.max_concurrency default


class Wire:
    """The delay proxy's per-connection records, by request path."""

    def __init__(self, lines: list[str]) -> None:
        self._lines = lines
        self._seen = 0
        self.by_path: dict[str, list[dict[str, Any]]] = defaultdict(list)

    def refresh(self) -> None:
        """Parse the lines the proxy printed since the last call."""
        new, self._seen = self._lines[self._seen :], len(self._lines)
        for line in new:
            with contextlib.suppress(ValueError):
                record = json.loads(line)
                self.by_path[record["path"]].append(record)

    async def wait_for(self, paths: list[str], timeout: float = 3.0) -> None:
        """Give the proxy time to report connections that just closed."""
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            self.refresh()
            if all(p in self.by_path for p in paths):
                return
            await asyncio.sleep(0.05)

    @staticmethod
    def truths(record: dict[str, Any]) -> list[float]:
        """Wire round trip behind each response chunk: [upgrade, pong 1, pong 2, ...]."""
        up_arrived, up_delivered = record["up"]
        out = []
        for arrived, delivered in zip(*record["down"], strict=False):
            trigger = None
            for ua, ud in zip(up_arrived, up_delivered, strict=False):
                if ud > arrived:
                    break
                trigger = ua
            if trigger is not None:
                out.append(delivered - trigger)
        return out


def errors(pairs: list[tuple[Cycle, list[float]]], connect_truth: float) -> dict[str, Any]:
    """Signed errors of measured phases against their wire truths."""
    per: dict[str, list[float]] = {"connect": [], "handshake": [], "ping": []}
    for cycle, truths in pairs:
        if cycle.connect is not None:
            per["connect"].append(cycle.connect - connect_truth)
        if cycle.handshake is not None and truths:
            per["handshake"].append(cycle.handshake - truths[0])
        per["ping"].extend(
            rtt - truths[i + 1] for i, rtt in enumerate(cycle.pings) if i + 1 < len(truths)
        )
    return {phase: summary(values) for phase, values in per.items()}


def _blocking_connects(base_url: str, samples: int) -> list[float]:
    """TCP connect times of a plain blocking socket: no event loop, no task to resume."""
    host, port = base_url.split("//", 1)[1].split("/", 1)[0].rsplit(":", 1)
    out = []
    for _ in range(samples):
        t0 = time.perf_counter()
        sock = socket.create_connection((host, int(port)), timeout=5)
        out.append(time.perf_counter() - t0)
        sock.close()
    return out


async def calibrate(base_url: str, wire: Wire, samples: int) -> dict[str, Any]:
    """The idle truth-meter: connect truth and the meter's own error on the wire.

    The connect truth is the median of a blocking ``socket.create_connection`` (what
    the kernel takes: a client with no event loop); before, it was the hand-written
    asyncio client's, which included that client's own task wake-up.
    """
    paths = [f"/cal-{i}" for i in range(samples)]
    cycles = [await raw_cycle(base_url + p.lstrip("/")) for p in paths]
    await wire.wait_for(paths)
    good = [(c, p) for c, p in zip(cycles, paths, strict=True) if c.ok]
    if not good:
        raise RuntimeError("calibration through the delay proxy failed")
    raw_connect = statistics.median(c.connect for c, _ in good if c.connect is not None)
    connect = statistics.median(_blocking_connects(base_url, samples))
    pairs = [(c, Wire.truths(wire.by_path[p][-1])) for c, p in good if wire.by_path.get(p)]
    wire_rtts = [t for _, truths in pairs for t in truths[1:4]]
    return {
        "connect": connect,
        "truth_ms": {
            "connect": ms(connect),
            "connect_asyncio_client": ms(raw_connect),
            "wire_ping_p50": ms(statistics.median(wire_rtts)) if wire_rtts else None,
        },
        "truth_meter": errors(pairs, connect),
    }


async def _level(
    load: CycleFn,
    measure: CycleFn,
    *,
    direct_url: str,
    proxy_url: str,
    wire: Wire,
    checks: int,
    duration: float,
    cadence: float,
    connect_truth: float,
    stamps: dict[str, ConnStamps],
    budget: float,
) -> dict[str, Any]:
    monitor = LoopLagMonitor(budget=budget)
    monitor.start()
    gc_pauses: list[float] = []
    gc_began = [0.0]

    def on_gc(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            gc_began[0] = time.perf_counter()
        elif info.get("generation", 0) >= 1:
            gc_pauses.append(time.perf_counter() - gc_began[0])

    gc.callbacks.append(on_gc)
    # The measuring probes are part of the level's N/30 probes/s.
    rate = max(checks / INTERVAL - 1.0 / cadence, 0.0) if checks else 0.0
    in_flight: set[asyncio.Task[Any]] = set()
    launched = dropped = 0
    measured: list[tuple[str, Cycle]] = []
    admit_waits: list[float] = []
    stop_at = time.perf_counter() + duration

    async def one_load() -> None:
        await monitor.admit()
        with contextlib.suppress(Exception):  # load cycles only make load
            await load(direct_url)

    async def one_measure(path: str) -> None:
        admit_waits.append(await monitor.admit())
        t0 = time.perf_counter()
        try:
            c = await measure(proxy_url + path.lstrip("/"))
        except Exception:
            c = Cycle(ok=False)
        c.lag_suspect = c.lag_suspect or monitor.overlapped(t0, time.perf_counter())
        measured.append((path, c))

    def spawn(coro: Any) -> None:
        task = asyncio.create_task(coro)
        in_flight.add(task)
        task.add_done_callback(in_flight.discard)

    waited0 = run_delay()
    cpu0, t0 = time.process_time(), time.perf_counter()
    next_measure = t0
    owed = 0.0
    last = t0
    seq = 0
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
            spawn(one_measure(f"/m{checks}-{seq}"))
            seq += 1
            next_measure += cadence
        await asyncio.sleep(0.005)
    if in_flight:
        await asyncio.wait(in_flight, timeout=15)
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    waited = run_delay() - waited0
    await monitor.stop()
    gc.callbacks.remove(on_gc)
    ok = [(p, c) for p, c in measured if c.ok]
    await wire.wait_for([p for p, _ in ok])
    pairs = [(c, Wire.truths(wire.by_path[p][-1])) for p, c in ok if wire.by_path.get(p)]
    clean = [(c, t) for c, t in pairs if not c.lag_suspect]
    records = {p: wire.by_path[p][-1] for p, _ in ok if wire.by_path.get(p)}
    stamped = [(records[p], stamps[p]) for p in records if p in stamps]
    return {
        "checks": checks,
        "target_probes_per_s": round(checks / INTERVAL, 1),
        "load_probes_per_s": round(rate, 1),
        # Chunks the proxy had to stamp with its own clock (no kernel stamp).
        "proxy_fallback_stamps": sum(r.get("fallbacks", 0) for r in records.values()),
        "load_launched": launched,
        "load_dropped_at_max_in_flight": dropped,
        "cpu_share": round(cpu / wall, 3),
        # Share of the time the loop thread waited runnable for a CPU: other processes.
        "cpu_wait_share": round(waited / wall, 4),
        "measured": len(measured),
        "measured_ok": len(ok),
        "paired_with_wire": len(pairs),
        "lag_suspect": sum(1 for c, _ in pairs if c.lag_suspect),
        "loop_lag_hidden_stalls": monitor.hidden_total,
        # Collections of generations 1-2 in this process (they hold the GIL).
        "gc_pauses": summary(gc_pauses),
        "admit_wait": summary(admit_waits),
        "loop_lag": summary(monitor.drain_samples()),
        "error_all": errors(pairs, connect_truth),
        "error_clean": errors(clean, connect_truth),
        "legs": legs(stamped),
        "proxy_send_spread": summary(
            [x for r in records.values() for x in r.get("spread", [[], []])[1]]
        ),
    }


async def run(
    direct_url: str,
    proxy_url: str,
    lines: list[str],
    *,
    quick: bool,
    levels: list[int] | None = None,
    duration: float | None = None,
    cadence: float = CADENCE,
    budget: float = BUDGET,
) -> dict[str, Any]:
    """Calibrate through the proxy, then measure errors at each load level."""
    if levels is None:
        levels = [0, 1000, 10000] if quick else [0, 1000, 5000, 10000, 20000]
    if duration is None:
        duration = 4.0 if quick else 10.0
    wsprobe, note = wsprobe_engine()
    measure = wsprobe or bare_cycle
    load = wsprobe or bare_cycle
    wire = Wire(lines)
    cal = await calibrate(proxy_url, wire, 30 if quick else 60)
    out: dict[str, Any] = {
        "delay_each_way_ms": ms(DELAY),
        "cadence_s": cadence,
        "loop_lag_budget_s": budget,
        "truth_ms": cal["truth_ms"],
        "truth_meter": cal["truth_meter"],
        "measuring_engine": "wsprobe" if wsprobe else "bare websockets (wsprobe missing)",
        "note": note,
        "levels": [],
    }
    for checks in levels:
        with instrumented("/m") as stamps:
            level = await _level(
                load,
                measure,
                direct_url=direct_url,
                proxy_url=proxy_url,
                wire=wire,
                checks=checks,
                duration=duration,
                cadence=cadence,
                connect_truth=cal["connect"],
                stamps=stamps,
                budget=budget,
            )
        out["levels"].append(level)
        err, clean, lg = level["error_all"], level["error_clean"], level["legs"]
        print(
            f"  fidelity {checks} checks (cpu {level['cpu_share']:.0%}, waiting for a CPU "
            f"{level['cpu_wait_share']:.1%}): error p50/p99 ms: "
            f"ping {err['ping']['p50_ms']}/{err['ping']['p99_ms']} "
            f"(unflagged p99 {clean['ping']['p99_ms']}), "
            f"handshake {err['handshake']['p50_ms']}/{err['handshake']['p99_ms']}, "
            f"connect {err['connect']['p50_ms']}/{err['connect']['p99_ms']}; "
            f"loop lag p99 {level['loop_lag']['p99_ms']}; "
            f"suspect {level['lag_suspect']}/{level['paired_with_wire']}; gc gen1-2 "
            f"{level['gc_pauses']['n']} pauses, max {level['gc_pauses']['max_ms']} ms",
            flush=True,
        )
        for name, leg in [*lg.items(), ("proxy_send_spread", level["proxy_send_spread"])]:
            print(f"    {name}: p50 {leg['p50_ms']} p99 {leg['p99_ms']} max {leg['max_ms']}")
    return out


def main(argv: list[str] | None = None) -> int:
    """``python -m bench.fidelity``: this scenario alone, with its own server and proxy."""
    from bench import procs

    parser = argparse.ArgumentParser(prog="python -m bench.fidelity", description=__doc__)
    parser.add_argument("--levels", default="0,1000,5000,10000,20000", help="checks at 30 s")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per level")
    parser.add_argument("--cadence", type=float, default=CADENCE, help="s between measures")
    parser.add_argument("--budget", type=float, default=BUDGET, help="loop lag budget, s")
    parser.add_argument("--loop", choices=("uvloop", "asyncio"), default="uvloop")
    parser.add_argument("--python-server", action="store_true", help="skip Node's ws server")
    parser.add_argument("--json", help="write the result here")
    args = parser.parse_args(argv)
    levels = [int(x) for x in args.levels.split(",") if x]
    procs.pin_self()
    busy = procs.machine_busy()
    print(f"machine busy before: {busy:.0%}", flush=True)
    if args.loop == "uvloop":
        import uvloop

        runner: Any = uvloop.run
    else:
        runner = asyncio.run
    with (
        procs.target_server(prefer_node=not args.python_server) as server,
        procs.delay_proxy(server.port, delay=DELAY) as proxy,
    ):
        result = runner(
            run(
                f"ws://127.0.0.1:{server.port}/",
                f"ws://127.0.0.1:{proxy.port}/",
                proxy.lines,
                quick=False,
                levels=levels,
                duration=args.duration,
                cadence=args.cadence,
                budget=args.budget,
            )
        )
    result["machine_busy_before"] = busy
    result["machine_busy_after"] = procs.machine_busy()
    result["server"] = server.what
    print(f"machine busy after: {result['machine_busy_after']:.0%}", flush=True)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(result, fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
