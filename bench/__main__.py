"""``python -m bench [--quick] [--only a,b]``: run the scenarios, write JSON and a PNG.

Scenarios whose agent module is not there yet are skipped with a note, never fatal.
Every scenario is bounded in time: the full run takes about 12 minutes (``cores`` about
4.5 of them), ``--quick`` about 6 (``cores`` about 3); bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import procs
from bench.plot import plot

__all__ = ["main"]

SCENARIOS = (
    "engine",
    "fidelity",
    "startup",
    "capacity",
    "cores",
    "watch",
    "blackbox",
    "state",
    "status_page",
)
RESULTS = Path(__file__).parent / "results"


def _loop_runner(name: str) -> Callable[[Any], Any]:
    if name == "uvloop":
        import uvloop

        return uvloop.run
    return asyncio.run


def _scenario(name: str, args: argparse.Namespace, server: procs.Proc) -> dict[str, Any]:
    run = _loop_runner(args.loop)
    url = f"ws://127.0.0.1:{server.port}/"
    if name == "engine":
        from bench import engine

        result: dict[str, Any] = run(engine.run(url, quick=args.quick))
        return result
    if name == "fidelity":
        from bench import fidelity

        with procs.delay_proxy(server.port, delay=fidelity.DELAY) as proxy:
            proxy_url = f"ws://127.0.0.1:{proxy.port}/"
            result = run(fidelity.run(url, proxy_url, proxy.lines, quick=args.quick))
        return result
    if name == "startup":
        from bench import startup

        return startup.run(url, quick=args.quick)
    if name == "capacity":
        from bench import capacity

        with procs.delay_proxy(server.port, delay=0.005) as proxy:
            return capacity.run(url, proxy.port, proxy.lines, quick=args.quick, loop=args.loop)
    if name == "cores":
        from bench import cores

        return cores.run(url, server.pid, quick=args.quick)
    if name == "watch":
        from bench import watch

        return watch.run(url, quick=args.quick, loop=args.loop)
    if name == "blackbox":
        from bench import blackbox

        return blackbox.run(url, quick=args.quick, loop=args.loop)
    if name == "state":
        from bench import state

        return state.run(quick=args.quick)
    if name == "status_page":
        from bench import status_page

        sizes = (1000,) if args.quick else (1000, 10000)
        storage = status_page.storage_cost(days=7 if args.quick else 90)
        return {"storage": storage, "page": [status_page.page_cost(n) for n in sizes]}
    raise ValueError(name)


def main(argv: list[str] | None = None) -> int:
    """Run the selected scenarios; returns 0 unless the target server cannot start."""
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="short smoke run (~6 min)")
    parser.add_argument("--only", default=",".join(SCENARIOS), help="comma-separated scenarios")
    parser.add_argument("--loop", choices=("uvloop", "asyncio"), default="uvloop")
    parser.add_argument("--python-server", action="store_true", help="skip Node's ws server")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    selected = [s for s in args.only.split(",") if s]
    unknown = set(selected) - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenario(s): {', '.join(sorted(unknown))}")
    pinned = procs.pin_self()
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    results: dict[str, Any] = {
        "started": stamp,
        "argv": sys.argv,
        "quick": args.quick,
        "loop": args.loop,
        "machine": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "bench_core": procs.BENCH_CORE if pinned else None,
            "server_core": procs.SERVER_CORE,
        },
    }
    busy = procs.machine_busy()
    results["machine"]["busy_before"] = busy
    results["machine"]["loadavg_before"] = os.getloadavg()
    if busy > 0.3:
        print(
            f"warning: the machine is {busy:.0%} busy before the bench starts; figures will "
            "include other processes' noise (see machine.busy_before in the JSON)",
            flush=True,
        )
    began = time.perf_counter()
    with procs.target_server(prefer_node=not args.python_server) as server:
        results["server"] = server.what
        print(f"target server: {server.what} on port {server.port}", flush=True)
        for name in selected:
            print(f"[{name}]", flush=True)
            t0 = time.perf_counter()
            try:
                results[name] = _scenario(name, args, server)
            except Exception as exc:  # one broken scenario must not lose the others
                traceback.print_exc()
                results[name] = {"error": f"{type(exc).__name__}: {exc}"}
            results[name]["elapsed_s"] = round(time.perf_counter() - t0, 1)
            if "skipped" in results[name]:
                print(f"  skipped: {results[name]['skipped']}", flush=True)
    results["elapsed_s"] = round(time.perf_counter() - began, 1)
    results["machine"]["loadavg_after"] = os.getloadavg()
    args.out.mkdir(parents=True, exist_ok=True)
    json_path = args.out / f"{stamp}.json"
    json_path.write_text(json.dumps(results, indent=2) + "\n")
    png_path = args.out / f"{stamp}.png"
    why = plot(results, png_path)
    print(f"wrote {json_path}" + (f" and {png_path}" if why is None else f" (no plot: {why})"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
