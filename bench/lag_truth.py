"""The loop-lag monitor's figures against an outside observer's, variant by variant.

``python -m bench.lag_truth [--rounds R] [--seconds S] [--hog] [VARIANT ...]``

A child process (pinned to the bench core) runs a uvloop event loop kept about half
busy by short callbacks (0.3 ms of CPU each, like probe callbacks), a UDP echo
endpoint, and the agent's :class:`~agent.runtime.loop_lag.LoopLagMonitor` patched as
``VARIANT`` says (see :mod:`bench.lag_variant`: ``as-is``, ``oversleep``,
``roundtrip``, ``interval=S``, ``off``). This process, on the other core, sends it a
UDP datagram 200 times a second and times each echo: what any client outside the
agent (a ``/healthz`` poller, a target's pong) waits for. With ``--hog`` a busy-looping
process shares the child's core, so the loop's thread waits for the CPU in short
slices as it does on a loaded machine.

Per run: the monitor's own samples (p50 / p99 / max, the figures the agent exports)
beside the outside echo times (p50 / p99 / max), and the loop's throughput (busy
callbacks completed per second: the real cost of the monitor shows as fewer). Variants
alternate order each round; the medians per variant close the output.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from typing import Any

from bench import procs
from bench.stats import ms, pct

__all__ = ["main"]

#: Busy callback: seconds of CPU each, and callbacks started per second (about half the core).
WORK_S = 0.0003
WORK_HZ = 1600.0
PING_HZ = 200.0


def _child(variant: str, seconds: float) -> None:
    """The loop under test; prints one JSON line of its own figures and exits."""
    import uvloop

    from bench.lag_variant import apply

    apply(variant)
    from agent.runtime.loop_lag import LoopLagMonitor

    class Echo(asyncio.DatagramProtocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self.transport = transport

        def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
            self.transport.sendto(data, addr)  # type: ignore[attr-defined]

    async def main() -> None:
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(Echo, local_addr=("127.0.0.1", 0))
        print(f"PORT {transport.get_extra_info('sockname')[1]}", flush=True)
        monitor = LoopLagMonitor(budget=0.01)
        monitor.start()
        cpu0 = time.process_time()
        done = 0
        end = time.perf_counter() + seconds

        def busy() -> None:
            nonlocal done
            until = time.perf_counter() + WORK_S
            while time.perf_counter() < until:
                pass
            done += 1

        period = 1.0 / WORK_HZ
        next_at = time.perf_counter()
        while time.perf_counter() < end:
            # A burst of callbacks per millisecond, as probe results arrive.
            for _ in range(2):
                loop.call_soon(busy)
            next_at += 2 * period
            await asyncio.sleep(max(0.0, next_at - time.perf_counter()))
        samples = monitor.drain_samples()
        await monitor.stop()
        transport.close()
        print(
            json.dumps(
                {
                    "agent_samples": len(samples),
                    "agent_p50_ms": ms(pct(samples, 50)),
                    "agent_p99_ms": ms(pct(samples, 99)),
                    "agent_max_ms": ms(max(samples) if samples else None),
                    "busy_per_s": round(done / seconds),
                    "cpu_s": round(time.process_time() - cpu0, 2),
                    # CPU of the whole process (pacer thread included) per unit of work:
                    # what the monitor costs shows as more.
                    "cpu_us_per_busy": round((time.process_time() - cpu0) / done * 1e6, 1),
                }
            ),
            flush=True,
        )

    uvloop.run(main())


def _run(variant: str, seconds: float, *, hog: bool) -> dict[str, Any]:
    hog_proc = None
    if hog:
        hog_proc = subprocess.Popen(
            ["taskset", "-c", str(procs.BENCH_CORE), sys.executable, "-c", "while True: pass"]
        )
    child = procs.spawn(
        [sys.executable, "-m", "bench.lag_truth", "--child", variant, "--seconds", str(seconds)],
        core=procs.BENCH_CORE,
        what=f"loop ({variant})",
    )
    times: list[float] = []
    lost = 0
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.settimeout(2.0)
            end = time.perf_counter() + seconds - 0.5
            while time.perf_counter() < end:
                t0 = time.perf_counter()
                sock.sendto(b"x", ("127.0.0.1", child.port))
                try:
                    sock.recvfrom(16)
                    times.append(time.perf_counter() - t0)
                except TimeoutError:
                    lost += 1
                time.sleep(max(0.0, 1.0 / PING_HZ - (time.perf_counter() - t0)))
        assert child.popen.stdout is not None
        own = json.loads(child.popen.stdout.readline())
        child.popen.wait(timeout=30)
    finally:
        procs.stop(child)
        if hog_proc is not None:
            procs.terminate(hog_proc)
    return {
        "variant": variant,
        "loadavg": round(os.getloadavg()[0], 2),
        **own,
        "outside_n": len(times),
        "outside_lost": lost,
        "outside_p50_ms": ms(pct(times, 50)),
        "outside_p99_ms": ms(pct(times, 99)),
        "outside_max_ms": ms(max(times) if times else None),
    }


def main(argv: list[str] | None = None) -> int:
    """Alternate the variants for ``--rounds``; print each run and the medians."""
    parser = argparse.ArgumentParser(prog="python -m bench.lag_truth", description=__doc__)
    parser.add_argument("variants", nargs="*", default=["as-is", "oversleep", "off"])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--hog", action="store_true")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        _child(args.child, args.seconds)
        return 0
    procs.pin_self(procs.SERVER_CORE)
    runs: dict[str, list[dict[str, Any]]] = {v: [] for v in args.variants}
    for rnd in range(args.rounds):
        for variant in args.variants if rnd % 2 == 0 else args.variants[::-1]:
            result = _run(variant, args.seconds, hog=args.hog)
            runs[variant].append(result)
            print(json.dumps({"round": rnd, **result}), flush=True)
    keys = ("agent_p50_ms", "agent_p99_ms", "agent_max_ms", "busy_per_s", "cpu_us_per_busy")
    keys += ("outside_p50_ms", "outside_p99_ms", "outside_max_ms")
    for variant, results in runs.items():
        medians = {
            k: statistics.median([r[k] for r in results if r.get(k) is not None] or [0])
            for k in keys
        }
        print(json.dumps({"median": {"variant": variant, "hog": args.hog, **medians}}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
