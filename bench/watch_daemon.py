"""Memory per configured ``kind: watch`` check in the daemon (target ≤ 16 KiB).

Where bench/watch_child.py counts bare :class:`~agent.watch.WatchSession` objects, this
counts everything a configured watch check costs the running agent: the session and its
connection, the check's config model, its metric series, history and alert state.

Each level starts ``python -m agent run`` (pinned to the bench core) with N watch checks
against the target server, waits until every session is connected and every check has
reported :data:`REPORTS` liveness results (so series, history and alert state exist),
lets it sit idle for a few seconds and reads its RSS. The figure per check is the RSS at
N minus the RSS of the same daemon with one watch check, divided by N - 1::

    .venv/bin/python -m bench.watch_daemon                 # 1,000 and 5,000 checks
    .venv/bin/python -m bench.watch_daemon --counts 1000
    .venv/bin/python -m bench.watch_daemon --trace 1000    # where the bytes go (tracemalloc)

``--trace`` runs the daemon in this process instead, with tracemalloc on, and prints
the allocation sites holding the most bytes per check once the level has settled.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from bench import procs
from bench.startup import wait_ready

__all__ = ["daemon_level", "run_levels"]

#: Liveness results every check must have reported before RSS is read.
REPORTS = 1
#: Seconds between a watch check's reports: shorter than the default 30 s so a level
#: settles sooner; what a check holds does not depend on it.
INTERVAL = 10
#: Seconds the settled daemon sits idle before RSS is read.
IDLE_WINDOW = 3.0


def write_watch_config(root: Path, *, url: str, checks: int, listen_port: int) -> Path:
    """Write ``root/agent.yaml`` and a check file of ``checks`` watch checks of ``url``."""
    (root / "checks").mkdir(parents=True, exist_ok=True)
    (root / "agent.yaml").write_text(
        "agent:\n"
        f"  listen: 127.0.0.1:{listen_port}\n"
        "  location: bench\n"
        f"  state_dir: {root / 'state'}\n"
        "check_files:\n"
        "  - checks/*.yaml\n"
        "defaults:\n"
        f"  interval: {INTERVAL}s\n"
        "  timeout: 5s\n"
        "receivers:\n"
        "  - name: log\n"
        "    type: log\n"
    )
    lines = ["checks:"]
    for i in range(checks):
        lines += [
            f"  - name: watch-{i:05d}",
            "    kind: watch",
            f"    url: {url}watch/{i}",
            "    labels:",
            f"      shard: s{i % 16}",
        ]
    (root / "checks" / "watch.yaml").write_text("\n".join(lines) + "\n")
    return root / "agent.yaml"


def _counts(port: int) -> tuple[int, int]:
    """Sessions connected and results recorded, from the daemon's ``/metrics``."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=60) as resp:
        text = resp.read().decode()
    connected = results = 0
    for line in text.splitlines():
        if line.startswith("wsprobe_watch_connected{"):
            connected += int(float(line.rsplit(" ", 1)[1]))
        elif line.startswith("wsprobe_probes_total{"):
            results += int(float(line.rsplit(" ", 1)[1]))
    return connected, results


def _settle(port: int, checks: int, *, timeout: float) -> tuple[bool, int, int]:
    """Wait until all sessions are connected and have reported; (settled, connected, results)."""
    deadline = time.perf_counter() + timeout
    connected = results = 0
    while time.perf_counter() < deadline:
        connected, results = _counts(port)
        if connected >= checks and results >= checks * REPORTS:
            return True, connected, results
        time.sleep(0.5)
    return False, connected, results


def daemon_level(url: str, checks: int) -> dict[str, Any]:
    """RSS of a daemon holding ``checks`` settled watch checks (one process per call)."""
    out: dict[str, Any] = {"checks": checks}
    with tempfile.TemporaryDirectory(prefix="wsprobe-bench-") as tmp:
        port = procs.free_port()
        path = write_watch_config(Path(tmp), url=url, checks=checks, listen_port=port)
        popen = subprocess.Popen(
            [
                *("taskset", "-c", str(procs.BENCH_CORE)),
                *(sys.executable, "-m", "agent", "run", "-c", str(path)),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=_raise_nofile(checks),
        )
        try:
            if wait_ready(port, popen, timeout=120) is None:
                return {**out, "error": "daemon not ready within 120 s"}
            began = time.perf_counter()
            settled, connected, results = _settle(
                port, checks, timeout=60 + INTERVAL * (REPORTS + 1)
            )
            out.update(settled=settled, connected=connected, results=results)
            out["settle_s"] = round(time.perf_counter() - began, 1)
            time.sleep(IDLE_WINDOW)
            cpu0, t0 = procs.cpu_seconds(popen.pid), time.perf_counter()
            time.sleep(IDLE_WINDOW)
            out["cpu_share"] = round(
                (procs.cpu_seconds(popen.pid) - cpu0) / (time.perf_counter() - t0), 4
            )
            out["rss_kib"] = procs.rss_kib(popen.pid)
        finally:
            procs.terminate(popen, timeout=30)
    return out


def _raise_nofile(checks: int) -> Any:
    def raise_limit() -> None:
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, checks * 2 + 256)), hard))

    return raise_limit


def run_levels(url: str, counts: list[int]) -> dict[str, Any]:
    """The baseline (one watch check), then each level and its RSS per check."""
    base = daemon_level(url, 1)
    out: dict[str, Any] = {"baseline": base, "levels": []}
    print(f"  watch daemon 1 check: {base}", flush=True)
    for checks in counts:
        level = daemon_level(url, checks)
        if "rss_kib" in level and "rss_kib" in base:
            level["rss_kib_per_check"] = round(
                (level["rss_kib"] - base["rss_kib"]) / (checks - 1), 2
            )
        out["levels"].append(level)
        print(f"  watch daemon {checks} checks: {level}", flush=True)
    return out


async def _trace(url: str, checks: int, top: int, frames: int) -> None:
    """Run the daemon in-process with tracemalloc; print the biggest sites per check."""
    import tracemalloc

    from agent.runtime.daemon import Daemon

    with tempfile.TemporaryDirectory(prefix="wsprobe-bench-") as tmp:
        port = procs.free_port()
        path = write_watch_config(Path(tmp), url=url, checks=checks, listen_port=port)
        tracemalloc.start(max(1, frames))
        before = tracemalloc.take_snapshot()
        daemon = Daemon(path, demo=False, shard=None)
        task = asyncio.create_task(daemon.run())
        loop = asyncio.get_running_loop()
        ready = await loop.run_in_executor(None, _wait_http, port)
        settled = (
            ready
            and (
                await loop.run_in_executor(
                    None, lambda: _settle(port, checks, timeout=240 + INTERVAL * REPORTS)
                )
            )[0]
        )
        await asyncio.sleep(IDLE_WINDOW)
        import gc

        gc.collect()
        after = tracemalloc.take_snapshot()
        daemon.request_stop()
        await task
    filters = [tracemalloc.Filter(False, tracemalloc.__file__)]
    after, before = after.filter_traces(filters), before.filter_traces(filters)
    total = sum(s.size_diff for s in after.compare_to(before, "filename"))
    print(f"settled: {settled}; Python heap per check: {total / checks:.0f} B", flush=True)
    group = "traceback" if frames > 1 else "lineno"
    if frames > 1:
        _by_agent_module(after.compare_to(before, "traceback"), checks)
    for stat in after.compare_to(before, group)[:top]:
        # A traceback runs from the oldest frame to the allocating one.
        stack = list(reversed(stat.traceback))
        frame = stack[0]
        name = _short(frame.filename)
        print(
            f"{stat.size_diff / checks:8.0f} B {stat.count_diff / checks:6.2f} obj"
            f"  {name}:{frame.lineno}",
            flush=True,
        )
        if frames > 1:
            for frame in stack[1:frames]:
                print(f"{'':24}<- {_short(frame.filename)}:{frame.lineno}", flush=True)


def _by_agent_module(stats: list[Any], checks: int) -> None:
    """Bytes per check by the innermost agent module on each allocation's stack."""
    sums: dict[str, float] = {}
    for stat in stats:
        owner = next(
            (
                _short(f.filename)
                for f in reversed(stat.traceback)
                if "/agent/" in f.filename and "/bench/" not in f.filename
            ),
            "(no agent frame)",
        )
        sums[owner] = sums.get(owner, 0.0) + stat.size_diff / checks
    for owner, size in sorted(sums.items(), key=lambda kv: -kv[1])[:20]:
        print(f"{size:8.0f} B  {owner}", flush=True)


def _short(filename: str) -> str:
    if "site-packages/" in filename:
        return filename.split("site-packages/", 1)[1]
    return os.path.relpath(filename)


def _wait_http(port: int) -> bool:
    deadline = time.perf_counter() + 120
    while time.perf_counter() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as resp:
                if resp.status == 200:
                    return True
        except OSError:
            pass
        time.sleep(0.2)
    return False


def main() -> None:
    """Parse the options, start the target server on the other core, measure."""
    parser = argparse.ArgumentParser(prog="python -m bench.watch_daemon", description=__doc__)
    parser.add_argument("--counts", default="1000,5000", help="comma-separated check counts")
    parser.add_argument("--trace", type=int, metavar="N", help="tracemalloc N checks in-process")
    parser.add_argument("--top", type=int, default=30, help="sites printed with --trace")
    parser.add_argument("--frames", type=int, default=1, help="call stack depth with --trace")
    args = parser.parse_args()
    procs.pin_self()
    with procs.target_server() as server:
        url = f"ws://127.0.0.1:{server.port}/"
        if args.trace:
            soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
            resource.setrlimit(
                resource.RLIMIT_NOFILE, (max(soft, min(hard, args.trace * 2 + 256)), hard)
            )
            import uvloop

            uvloop.run(_trace(url, args.trace, args.top, args.frames))
            return
        run_levels(url, [int(x) for x in args.counts.split(",") if x.strip()])


if __name__ == "__main__":
    main()
