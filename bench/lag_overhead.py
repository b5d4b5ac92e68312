"""CPU cost of the loop-lag monitor: an older ``agent/runtime/loop_lag.py`` against the current one.

``python -m bench.lag_overhead [--before REF] [ROUNDS] [SECONDS]`` loads
``agent/runtime/loop_lag.py`` as of git ``REF`` (default 13ba38b, before the run-queue and GIL
checks) beside the current module and runs each in turn, alternating the order every
round, in one process on uvloop: the monitor at its default 20 ms interval on a loop
that wakes 200 times a second. Prints the process's CPU share (``process_time``, all
threads, so the pacer thread counts) per round and the medians.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType

import uvloop

import agent.runtime.loop_lag

__all__ = ["main"]


def _module_at(ref: str) -> ModuleType:
    source = subprocess.run(
        ["git", "show", f"{ref}:agent/runtime/loop_lag.py"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    path = Path(tempfile.mkdtemp()) / "lag_before.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("lag_before", path)
    if spec is None or spec.loader is None:
        raise RuntimeError(f"cannot load agent/runtime/loop_lag.py at {ref}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def _round(module: ModuleType, seconds: float) -> float:
    mon = module.LoopLagMonitor(budget=0.01)
    mon.start()
    cpu0, t0 = time.process_time(), time.perf_counter()
    end = t0 + seconds
    while time.perf_counter() < end:
        await asyncio.sleep(0.005)
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - t0
    await mon.stop()
    return cpu / wall * 100


async def _run(variants: dict[str, ModuleType], rounds: int, seconds: float) -> None:
    shares: dict[str, list[float]] = {name: [] for name in variants}
    names = list(variants)
    for i in range(rounds):
        for name in names if i % 2 == 0 else names[::-1]:
            shares[name].append(await _round(variants[name], seconds))
    for name, values in shares.items():
        print(
            f"{name}: CPU % of one core per round {[round(v, 2) for v in values]}, "
            f"median {statistics.median(values):.3f}"
        )


def main(argv: list[str] | None = None) -> int:
    """Run the A/B and print the CPU shares."""
    parser = argparse.ArgumentParser(prog="python -m bench.lag_overhead", description=__doc__)
    parser.add_argument("--before", default="13ba38b", help="git ref of the older lag.py")
    parser.add_argument("rounds", nargs="?", type=int, default=10)
    parser.add_argument("seconds", nargs="?", type=float, default=3.0)
    args = parser.parse_args(argv)
    variants = {f"before ({args.before})": _module_at(args.before), "after": agent.runtime.loop_lag}
    uvloop.run(_run(variants, args.rounds, args.seconds))
    return 0


if __name__ == "__main__":
    sys.exit(main())
