"""Same-process A/B of CPU per cycle: wsprobe's engine against the bare websockets loop.

The engine scenario's cycles/s swing by tens of percent on a shared machine; CPU
seconds per cycle, measured for both engines in ONE process with alternating rounds,
is the steady figure behind the ">= 0.9 x bare" target::

    .venv/bin/python -m bench.engine_ab                      # c=10,100, 4 rounds x 1.5 s, uvloop
    .venv/bin/python -m bench.engine_ab --concurrency 1,10,100,500 --rounds 6
    .venv/bin/python -m bench.engine_ab --loop asyncio       # the stdlib event loop
    .venv/bin/python -m bench.engine_ab --full-connection    # probes that keep websockets'
                                                             # ClientConnection (steps, proxy)

Prints, per concurrency, CPU ms per cycle (min / median over the rounds) for both
engines and the ratio bare / wsprobe of the medians (1.0 = as cheap as bare).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
from typing import Any

from bench import engine, procs
from bench.clients import CycleFn, bare_cycle, wsprobe_engine

__all__: list[str] = []


async def _compare(
    url: str, cycle: CycleFn, levels: list[int], rounds: int, duration: float
) -> None:
    engines: dict[str, CycleFn] = {"bare": bare_cycle, "wsprobe": cycle}
    for fn in engines.values():  # warm both paths before measuring
        await engine._point(fn, url, 4, 0.5)
    for concurrency in levels:
        cpu: dict[str, list[float]] = {name: [] for name in engines}
        for r in range(rounds):
            order = list(engines) if r % 2 == 0 else list(reversed(engines))
            for name in order:
                point: dict[str, Any] = await engine._point(
                    engines[name], url, concurrency, duration
                )
                if point["cpu_s_per_cycle"]:
                    cpu[name].append(point["cpu_s_per_cycle"] * 1000)
        if not cpu["bare"] or not cpu["wsprobe"]:
            print(f"c={concurrency}: no successful cycles", flush=True)
            continue
        bare, ws = statistics.median(cpu["bare"]), statistics.median(cpu["wsprobe"])
        print(
            f"c={concurrency}: bare {min(cpu['bare']):.3f} / {bare:.3f} ms,"
            f" wsprobe {min(cpu['wsprobe']):.3f} / {ws:.3f} ms (min / median),"
            f" ratio {bare / ws:.3f}",
            flush=True,
        )


def main() -> None:
    """Parse the options, start the target server on the other core, compare."""
    parser = argparse.ArgumentParser(prog="python -m bench.engine_ab", description=__doc__)
    parser.add_argument("--concurrency", default="10,100", help="comma-separated levels")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--duration", type=float, default=1.5, help="seconds per round")
    parser.add_argument("--loop", choices=("uvloop", "asyncio"), default="uvloop")
    parser.add_argument(
        "--full-connection",
        action="store_true",
        help="force websockets' ClientConnection (the path of steps/proxy probes)",
    )
    args = parser.parse_args()
    if args.full_connection:
        import agent.probes.probe as probe_kind

        probe_kind.uses_discarding_connection = lambda check: False  # type: ignore[assignment]
    cycle, note = wsprobe_engine()
    if cycle is None:
        raise SystemExit(f"wsprobe engine not available: {note}")
    levels = [int(x) for x in args.concurrency.split(",")]
    procs.pin_self()
    with procs.target_server() as server:
        url = f"ws://127.0.0.1:{server.port}/"
        coro = _compare(url, cycle, levels, args.rounds, args.duration)
        if args.loop == "uvloop":
            import uvloop

            uvloop.run(coro)
        else:
            asyncio.run(coro)


if __name__ == "__main__":
    main()
