"""Scenario: side by side with Prometheus blackbox_exporter doing the WebSocket upgrade check.

blackbox_exporter has no WebSocket prober (0.23, Debian's ``prometheus-blackbox-exporter``):
the usual check is its ``http`` prober sending the upgrade headers and accepting only
``101`` (:data:`MODULE`). Three facts are measured here, with wsprobe's engine doing
the same target in the same run:

- **After the 101 it reads the "body" until the server closes.** Against a server that
  keeps the WebSocket open (the bench's Node ``ws`` target, like any real one) the probe
  never ends: ``/probe`` answers neither within the module's ``timeout`` nor ever, and
  the probe's goroutine and both sockets stay behind after the scraper hangs up
  (:func:`hang_check` counts them). So every figure below is taken against a target
  that completes the upgrade and then closes at once (:func:`serve`, websockets on
  uvloop, on the server core): the only kind of WebSocket server the check can pass.
- **Fidelity**: ``probe_http_duration_seconds{phase="connect"|"processing"}`` (connection
  ready -> first response byte, so writing the request included) against the delay
  proxy's wire truth, paired by a unique URL path per measured probe, as
  ``bench/fidelity.py`` does for wsprobe; and
  wsprobe's ``connect`` / ``handshake`` against the same truth at the same load.
- **Cost**: the exporter's CPU-seconds per probe (``/proc/PID/stat``) at a few probe
  rates driven by concurrent ``GET /probe`` (aiohttp, open loop, bounded), against
  wsprobe's engine CPU per probe (``PROBES["probe"]``, ``pings: 0``: connect, upgrade,
  close, the same cycle), alternating rounds in one run, medians.

The exporter runs pinned to the bench core, alone: while it is measured this process
(the aiohttp driver, standing in for Prometheus) moves to the server core; while
wsprobe is measured, its engine runs here on the bench core, as in the other
scenarios.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import socket
import statistics
import subprocess
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import httpx

from bench import procs
from bench.blackbox_exporter import (
    MODULE,
    MODULE_TIMEOUT,
    Exporter,
    closing_server,
    exporter,
    hang_check,
    parse_probe,
    port_of,
    serve,
)
from bench.blackbox_exporter import binary as find_binary
from bench.fidelity import DELAY, Wire
from bench.stats import ms, summary

__all__ = ["main", "run"]

PHASES = ("resolve", "connect", "tls", "processing", "transfer")
CADENCE = 0.1  # one measured probe through the proxy every 100 ms, as in fidelity
MAX_IN_FLIGHT = 256
RATES = (0, 100, 300)  # load probes/s to the direct target, besides the measured ones


@dataclass
class _Sample:
    """One probe as either tool saw it: seconds, None where it does not tell."""

    ok: bool
    connect: float | None = None
    upgrade: float | None = None
    total: float | None = None


Driver = Callable[[str], Awaitable[_Sample]]


def _blackbox_driver(session: aiohttp.ClientSession, ex: Exporter) -> Driver:
    async def probe(url: str) -> _Sample:
        async with session.get(ex.probe_url(url.replace("ws://", "http://", 1))) as r:
            p = parse_probe(await r.text())
        return _Sample(
            ok=p.success,
            connect=p.phases.get("connect"),
            upgrade=p.phases.get("processing"),
            total=p.duration,
        )

    return probe


class _Wsprobe:
    """wsprobe's engine doing the same cycle: connect, upgrade, close (``pings: 0``)."""

    def __init__(self) -> None:
        from agent.probes import PROBES

        self._engine = PROBES["probe"]
        self._checks: dict[str, Any] = {}

    def prebuild(self, url: str) -> None:
        """Build the check for ``url`` now, outside any measured window."""
        from agent.config.models import CheckConfig

        if url not in self._checks:
            self._checks[url] = CheckConfig(name="bench", url=url, pings=0)

    async def __call__(self, url: str) -> _Sample:
        self.prebuild(url)
        r = await self._engine(self._checks[url])
        return _Sample(
            ok=r.success,
            connect=r.phases.get("connect"),
            upgrade=r.phases.get("handshake"),
            total=r.phases.get("total"),
        )


async def _window(
    probe: Driver,
    *,
    direct_url: str,
    proxy_url: str,
    rate: float,
    duration: float,
    tag: str,
    cpu: Callable[[], float],
    side_pids: dict[str, int],
) -> dict[str, Any]:
    """Open-loop load at ``rate``/s to the direct target plus one measured probe per CADENCE."""
    in_flight: set[asyncio.Task[Any]] = set()
    direct: list[_Sample] = []
    measured: list[tuple[str, _Sample]] = []
    failed = dropped = 0

    async def one(url: str, path: str | None) -> None:
        nonlocal failed
        try:
            s = await probe(url)
        except Exception:  # a failed probe is counted, never fatal
            failed += 1
            return
        if path is None:
            direct.append(s)
        else:
            measured.append((path, s))

    def launch(url: str, path: str | None) -> None:
        nonlocal dropped
        if len(in_flight) >= MAX_IN_FLIGHT:
            dropped += 1
            return
        task = asyncio.create_task(one(url, path))
        in_flight.add(task)
        task.add_done_callback(in_flight.discard)

    side0 = {name: procs.cpu_seconds(pid) for name, pid in side_pids.items()}
    cpu0, t0 = cpu(), time.perf_counter()
    stop_at, last, owed, seq = t0 + duration, t0, 0.0, 0
    next_measure = t0
    while (now := time.perf_counter()) < stop_at:
        owed += (now - last) * rate
        last = now
        while owed >= 1.0:
            owed -= 1.0
            launch(direct_url, None)
        if now >= next_measure:
            path = f"/{tag}-{seq}"
            launch(proxy_url + path.lstrip("/"), path)
            seq += 1
            next_measure += CADENCE
        await asyncio.sleep(0.005)
    if in_flight:
        await asyncio.wait(in_flight, timeout=15)
    wall, used = time.perf_counter() - t0, cpu() - cpu0
    side = {n: (procs.cpu_seconds(pid) - side0[n]) / wall for n, pid in side_pids.items()}
    done = len(direct) + len(measured)
    return {
        "rate": rate,
        "wall_s": round(wall, 2),
        "probes": done,
        "ok": sum(s.ok for s in direct) + sum(s.ok for _, s in measured),
        "failed": failed,
        "dropped_at_max_in_flight": dropped,
        "cpu_s": round(used, 4),
        "cpu_ms_per_probe": ms(used / done) if done else None,
        "side_cpu_share": {n: round(v, 3) for n, v in side.items()},
        "direct": direct,
        "measured": measured,
    }


async def _null(url: str) -> _Sample:
    """No probe at all: what the load loop itself costs this process per probe."""
    await asyncio.sleep(0)
    return _Sample(ok=True)


def _errors(
    measured: list[tuple[str, _Sample]], wire: Wire, connect_truth: float
) -> dict[str, Any]:
    connect, upgrade, wire_upgrade = [], [], []
    for path, s in measured:
        records = wire.by_path.get(path)
        if not s.ok or not records:
            continue
        truths = Wire.truths(records[-1])
        if s.connect is not None:
            connect.append(s.connect - connect_truth)
        if s.upgrade is not None and truths:
            upgrade.append(s.upgrade - truths[0])
            wire_upgrade.append(truths[0])
    return {
        "connect": summary(connect),
        "upgrade": summary(upgrade),
        "wire_upgrade_truth": summary(wire_upgrade),
    }


def _direct(samples: list[_Sample]) -> dict[str, Any]:
    ok = [s for s in samples if s.ok]
    return {
        "connect": summary([s.connect for s in ok if s.connect is not None]),
        "upgrade": summary([s.upgrade for s in ok if s.upgrade is not None]),
        "total": summary([s.total for s in ok if s.total is not None]),
    }


def _summarise(
    results: list[dict[str, Any]], wire: Wire, connect_truth: float, *, paired: bool
) -> dict[str, Any]:
    """One tool at one level: counts, CPU per probe (median of rounds), errors."""
    cpu_ms = [x["cpu_ms_per_probe"] for x in results if x["cpu_ms_per_probe"]]
    out: dict[str, Any] = {
        "probes": sum(x["probes"] for x in results),
        "ok": sum(x["ok"] for x in results),
        "failed": sum(x["failed"] for x in results),
        "dropped_at_max_in_flight": sum(x["dropped_at_max_in_flight"] for x in results),
        "probes_per_s": round(
            sum(x["probes"] for x in results) / sum(x["wall_s"] for x in results), 1
        ),
        "cpu_ms_per_probe_median": round(statistics.median(cpu_ms), 3) if cpu_ms else None,
        "cpu_ms_per_probe_runs": cpu_ms,
        "side_cpu_share_runs": [x["side_cpu_share"] for x in results],
    }
    if paired:
        measured = [m for x in results for m in x["measured"]]
        out["paired_with_wire"] = sum(1 for p, _ in measured if wire.by_path.get(p))
        out["error_vs_wire"] = _errors(measured, wire, connect_truth)
        out["direct"] = _direct([d for x in results for d in x["direct"]])
    return out


def _connect_truth(port: int, samples: int = 30) -> float:
    """Median TCP connect to the proxy by a blocking socket (the kernel accepts: no wire record).

    Blocking, so no event loop's task wake-up is part of the truth (as in fidelity).
    """
    times = []
    for _ in range(samples):
        t0 = time.perf_counter()
        sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        times.append(time.perf_counter() - t0)
        sock.close()
    return statistics.median(times)


async def _compare(
    ex: Exporter,
    *,
    direct_url: str,
    proxy_url: str,
    proxy_port: int,
    wire: Wire,
    side_pids: dict[str, int],
    hang_targets: list[str],
    quick: bool,
    rounds: int | None,
) -> dict[str, Any]:
    rates = (0, 300) if quick else RATES
    default_rounds, duration = (1, 3.0) if quick else (2, 4.0)
    rounds = rounds or default_rounds
    # aiohttp drives /probe: httpx's pool cost 4-8 ms of CPU per request at 32 in flight
    # here (aiohttp 0.35 ms), so it could not reach a few hundred probes/s.
    connector = aiohttp.TCPConnector(limit=MAX_IN_FLIGHT)
    timeout = aiohttp.ClientTimeout(total=MODULE_TIMEOUT + 5)
    async with (
        aiohttp.ClientSession(connector=connector, timeout=timeout) as session,
        httpx.AsyncClient(timeout=MODULE_TIMEOUT + 5) as client,
    ):
        connect_truth = _connect_truth(proxy_port)
        ws_probe = _Wsprobe()
        drivers: dict[str, Driver] = {
            "blackbox": _blackbox_driver(session, ex),
            "wsprobe": ws_probe,
            "driver": _null,
        }
        cpus: dict[str, Callable[[], float]] = {
            "blackbox": lambda: procs.cpu_seconds(ex.pid),
            "wsprobe": time.process_time,
            "driver": time.process_time,
        }
        for name, drive in drivers.items():  # warm both paths (and the URL caches)
            for i in range(20):
                with contextlib.suppress(Exception):
                    await drive(direct_url if i % 2 else f"{proxy_url}warm-{name}-{i}")
        levels = []
        for rate in rates:
            runs: dict[str, list[dict[str, Any]]] = {name: [] for name in drivers}
            for r in range(rounds):
                order = list(drivers) if r % 2 == 0 else list(reversed(drivers))
                for name in order:
                    tag = f"{name}-{rate}-{r}"
                    # wsprobe's measured checks are built before its CPU clock starts.
                    for seq in range(int(duration / CADENCE) + 2):
                        ws_probe.prebuild(f"{proxy_url}{tag}-{seq}")
                    # The exporter alone on the bench core; its driver elsewhere.
                    procs.pin_self(procs.SERVER_CORE if name == "blackbox" else procs.BENCH_CORE)
                    try:
                        res = await _window(
                            drivers[name],
                            direct_url=direct_url,
                            proxy_url=proxy_url,
                            rate=rate,
                            duration=duration,
                            tag=tag,
                            cpu=cpus[name],
                            side_pids=side_pids,
                        )
                    finally:
                        procs.pin_self(procs.BENCH_CORE)
                    runs[name].append(res)
            await wire.wait_for(
                [p for n in ("blackbox", "wsprobe") for x in runs[n] for p, _ in x["measured"]]
            )
            level: dict[str, Any] = {"load_per_s": rate}
            for name, results in runs.items():
                level[name] = _summarise(results, wire, connect_truth, paired=name != "driver")
            ws_cpu, idle_cpu = (level[n]["cpu_ms_per_probe_median"] for n in ("wsprobe", "driver"))
            if ws_cpu is not None and idle_cpu is not None:
                level["wsprobe"]["cpu_ms_per_probe_net_of_driver"] = round(ws_cpu - idle_cpu, 3)
            levels.append(level)
            bb, ws = level["blackbox"], level["wsprobe"]
            print(
                f"  blackbox load {rate}/s: CPU ms/probe blackbox "
                f"{bb['cpu_ms_per_probe_median']} wsprobe "
                f"{ws.get('cpu_ms_per_probe_net_of_driver')} (net of the driver); "
                f"upgrade err p50/p99 blackbox {bb['error_vs_wire']['upgrade']['p50_ms']}/"
                f"{bb['error_vs_wire']['upgrade']['p99_ms']} wsprobe "
                f"{ws['error_vs_wire']['upgrade']['p50_ms']}/"
                f"{ws['error_vs_wire']['upgrade']['p99_ms']} ms",
                flush=True,
            )
        hang = await hang_check(client, ex, hang_targets)
        print(
            f"  blackbox vs a server that stays open: {sorted(set(hang['outcomes'].values()))}",
            flush=True,
        )
    return {
        "connect_truth_ms": ms(connect_truth),
        "rounds": rounds,
        "window_s": duration,
        "levels": levels,
        "hang": hang,
    }


def run(node_url: str, *, quick: bool, loop: str, rounds: int | None = None) -> dict[str, Any]:
    """The scenario; skipped with a note when the exporter binary is missing.

    ``rounds`` alternations per load level (default 2, 1 with ``quick``).
    """
    binary = find_binary()
    if binary is None:
        return {
            "skipped": "blackbox_exporter not installed "
            "(apt-get install prometheus-blackbox-exporter; `make bench` tries as root)"
        }
    said = subprocess.run([binary, "--version"], capture_output=True, text=True, check=False)
    version = (said.stdout or said.stderr).split("\n", 1)[0]
    import uvloop

    runner: Callable[[Any], Any] = uvloop.run if loop == "uvloop" else asyncio.run
    with (
        closing_server() as target,
        procs.delay_proxy(target.port, delay=DELAY) as proxy,
        procs.delay_proxy(port_of(node_url), delay=DELAY) as node_proxy,
        exporter(binary) as ex,
    ):
        node_http = node_url.replace("ws://", "http://", 1)
        wire = Wire(proxy.lines)
        result: dict[str, Any] = runner(
            _compare(
                ex,
                direct_url=f"ws://127.0.0.1:{target.port}/",
                proxy_url=f"ws://127.0.0.1:{proxy.port}/",
                proxy_port=proxy.port,
                wire=wire,
                side_pids={"target": target.pid, "proxy": proxy.pid, "bench": os.getpid()},
                hang_targets=[node_http, f"http://127.0.0.1:{node_proxy.port}/"],
                quick=quick,
                rounds=rounds,
            )
        )
    result["exporter"] = version
    result["module"] = MODULE
    result["target"] = "closing websockets server (upgrade, then Close 1000 at once)"
    result["delay_each_way_ms"] = ms(DELAY)
    return result


def main(argv: list[str] | None = None) -> None:
    """``python -m bench.blackbox [--rounds N] [--quick]``: the scenario alone, JSON on stdout.

    ``--serve`` runs the closing target server instead (what the scenario spawns).
    """
    import json

    parser = argparse.ArgumentParser(prog="python -m bench.blackbox")
    parser.add_argument("--serve", action="store_true", help="run the closing target server")
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    if args.serve:
        serve()
        return
    procs.pin_self()
    busy = procs.machine_busy()
    with procs.target_server() as server:
        url = f"ws://127.0.0.1:{server.port}/"
        result = run(url, quick=args.quick, loop="uvloop", rounds=args.rounds)
    result["machine_busy_before_after"] = [busy, procs.machine_busy()]
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
