"""Scenario: capacity on 1 core vs 2 cores, one agent vs one agent per core.

Each layout runs the daemon on a generated config whose demand (checks / interval) is
given in probes per second, pinned with ``taskset`` to its cores, and is measured over
a fixed window by scraping every agent's ``/metrics`` at both ends:

- ``1 agent, 1 core``: ``wsprobe run`` on the first core;
- ``1 agent, 2 cores``: the same process allowed both cores (its SQLite writer thread
  and the kernel's work for its sockets may use the second one);
- ``2 agents, 2 cores``: ``wsprobe run --processes 2`` (one agent per shard, each its
  own port and state directory), all of it allowed both cores.

Beside them, ``bench.cores_split`` measures the parts of the other design (one agent
whose worker processes send results to a parent): the parent's CPU per result and the
messages' cost (``pipeline_split``).

Because a shared machine gives the agents whatever CPU other processes leave, each run
also reports a projection that does not depend on it: from the CPU per probe of the
agents' event-loop threads and of all their threads, the rate at which the layout would
fill either its loop threads (one core each) or its cores (``projected_probes_per_s``).

A layout keeps up at a level when it ran at least 97 % of the due probes, shed none,
had no failed run against the healthy target and a scheduler lag p99 under 1 s; its
capacity is the highest such level, and ``probes_per_s`` at the highest level is what it
achieves at saturation.

The target server stays on the last core (``bench.procs.SERVER_CORE``), as in every
scenario. On a 2-core machine the 2-core layouts therefore share that core with the
server: its CPU share is reported beside each run (``server_cpu_share``) so a reader can
see how much of the second core was left for the agents. On a machine with 3 or more
cores the agents get the first two and the server one of its own.

``WSPROBE_BENCH_CORES_LEVELS`` (comma-separated probes/s, e.g. ``400,800``) replaces the
default levels. The layouts are interleaved level by level, so a machine that gets
busier during the run penalises all of them alike.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import cores_split, procs
from bench.gen import write_config
from bench.scrape import histogram_quantile, sums
from bench.startup import wait_ready
from bench.stats import ms

__all__ = ["run"]

LEVELS_ENV = "WSPROBE_BENCH_CORES_LEVELS"
#: Every generated check's interval; the demand sets the number of checks.
INTERVAL_S = 10
#: What "keeps up" means (see the module docstring).
KEPT_UP_SHARE = 0.97
LAG_P99_LIMIT_S = 1.0


@dataclass(frozen=True)
class Layout:
    """One way to run the agent: how many processes on which cores."""

    name: str
    cores: tuple[int, ...]
    processes: int


def _layouts() -> list[Layout]:
    cores = list(procs.CORES)
    first, two = cores[:1], tuple(cores[:2])
    out = [Layout("1 agent, 1 core", tuple(first), 1)]
    if len(two) == 2:
        out += [Layout("1 agent, 2 cores", two, 1), Layout("2 agents, 2 cores", two, 2)]
    return out


def _scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=120) as resp:
        return str(resp.read().decode())


_WANTED = (
    "wsprobe_probes_total",
    "wsprobe_probes_skipped_total",
    "wsprobe_agent_problem_runs_total",
    "wsprobe_scheduler_lag_seconds_bucket",
)


def _tree_cpu(pid: int) -> float:
    """CPU seconds of ``pid`` and its live children (the agents of ``--processes``)."""
    total = 0.0
    for p in _tree(pid):
        try:
            total += procs.cpu_seconds(p)
        except OSError:
            continue
    return total


def _agents_main_cpu(pid: int, processes: int) -> float:
    """CPU seconds of the agents' event-loop threads (each agent's main thread)."""
    pids = [pid] if processes == 1 else _tree(pid)[1:]
    total = 0.0
    for agent in pids:
        try:
            fields = Path(f"/proc/{agent}/task/{agent}/stat").read_text().rsplit(")", 1)[1]
        except OSError:
            continue
        parts = fields.split()
        total += (int(parts[11]) + int(parts[12])) / os.sysconf("SC_CLK_TCK")
    return total


def _tree(pid: int) -> list[int]:
    out = [pid]
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return out
    for child in children:
        out += _tree(int(child))
    return out


def _one(
    layout: Layout, url: str, server_pid: int, demand: int, *, warm: float, window: float
) -> dict[str, Any]:
    checks = demand * INTERVAL_S
    out: dict[str, Any] = {"layout": layout.name, "due_per_s": demand, "checks": checks}
    with tempfile.TemporaryDirectory(prefix="wsprobe-bench-cores-") as tmp:
        base = _free_ports(layout.processes)
        path = write_config(
            Path(tmp), url=url, checks=checks, interval=f"{INTERVAL_S}s", listen_port=base
        )
        argv = [sys.executable, "-m", "agent", "run", "-c", str(path)]
        if layout.processes > 1:
            argv += ["--processes", str(layout.processes)]
        cpus = ",".join(str(c) for c in layout.cores)
        log_path = Path(tmp) / "agent.log"
        with log_path.open("w") as log_file:
            popen = subprocess.Popen(
                ["taskset", "-c", cpus, *argv], stdout=subprocess.DEVNULL, stderr=log_file
            )
            ports = [base + i for i in range(layout.processes)]
            try:
                for port in ports:
                    if wait_ready(port, popen, timeout=180) is None:
                        tail = log_path.read_text(errors="replace")[-1500:]
                        return {**out, "error": f"agent on port {port} not ready: {tail}"}
                time.sleep(warm)
                # The counters are read while a scrape is served: each end of the
                # window is the middle of its scrapes, not the moment they returned.
                before = time.perf_counter()
                texts0 = [_scrape(p) for p in ports]
                t0, cpu0 = time.perf_counter(), _tree_cpu(popen.pid)
                scrape0 = (before + t0) / 2
                srv0 = procs.cpu_seconds(server_pid)
                main0 = _agents_main_cpu(popen.pid, layout.processes)
                time.sleep(window)
                t1, cpu1 = time.perf_counter(), _tree_cpu(popen.pid)
                srv1 = procs.cpu_seconds(server_pid)
                main1 = _agents_main_cpu(popen.pid, layout.processes)
                texts1 = [_scrape(p) for p in ports]
                scrape1 = (t1 + time.perf_counter()) / 2
            finally:
                stop0 = time.perf_counter()
                popen.send_signal(signal.SIGTERM)
                try:
                    popen.wait(timeout=30)
                    out["stop_s"] = round(time.perf_counter() - stop0, 2)
                except subprocess.TimeoutExpired:
                    out["stop_s"] = "not within 30 s (killed)"
                    for pid in reversed(_tree(popen.pid)):
                        os.kill(pid, signal.SIGKILL)
                    popen.wait()
    (c0, b0), (c1, b1) = sums(texts0, _WANTED), sums(texts1, _WANTED)
    lag0 = b0.get("wsprobe_scheduler_lag_seconds", {})
    lag1 = b1.get("wsprobe_scheduler_lag_seconds", {})
    span = scrape1 - scrape0

    def delta(key: str) -> float:
        return c1.get(key, 0.0) - c0.get(key, 0.0)

    probes = sum(delta(k) for k in c1 if k.startswith("wsprobe_probes_total{"))
    skipped = {
        k.split("reason=", 1)[1].rstrip("}"): int(delta(k))
        for k in c1
        if k.startswith("wsprobe_probes_skipped_total{") and delta(k)
    }
    failures = int(delta("wsprobe_probes_total{result=failure}"))
    p99 = histogram_quantile(0.99, lag0, lag1)
    rate = probes / span
    # The CPU figures cover [t0, t1]: per probe, against the probes of that span.
    cpu_probes = rate * (t1 - t0)
    out.update(
        {
            "probes_per_s": round(rate, 1),
            "failures": failures,
            "agent_problem_runs": int(delta("wsprobe_agent_problem_runs_total")),
            "skipped": skipped,
            "scheduler_lag_p50_ms": ms(histogram_quantile(0.5, lag0, lag1)),
            "scheduler_lag_p99_ms": ms(p99),
            "agent_cpu_cores": round((cpu1 - cpu0) / (t1 - t0), 3),
            "cpu_ms_per_probe": round((cpu1 - cpu0) / cpu_probes * 1000, 3) if probes else None,
            "server_cpu_share": round((srv1 - srv0) / (t1 - t0), 3),
            "loop_thread_ms_per_probe": round((main1 - main0) / cpu_probes * 1000, 3)
            if probes
            else None,
            "projected_probes_per_s": _projected(
                layout,
                probes=cpu_probes,
                agent_cpu=cpu1 - cpu0,
                loop_cpu=main1 - main0,
                server_cpu=srv1 - srv0,
                server_shares=procs.SERVER_CORE in layout.cores,
            ),
            # The same were the target server on a core of its own (3 or more cores).
            "projected_probes_per_s_server_apart": _projected(
                layout,
                probes=cpu_probes,
                agent_cpu=cpu1 - cpu0,
                loop_cpu=main1 - main0,
                server_cpu=srv1 - srv0,
                server_shares=False,
            ),
            "machine_busy_after": procs.machine_busy(0.5),
            "kept_up": bool(
                rate >= KEPT_UP_SHARE * demand
                and not skipped
                and failures == 0
                and p99 is not None
                and p99 < LAG_P99_LIMIT_S
            ),
        }
    )
    return out


def _projected(
    layout: Layout,
    *,
    probes: float,
    agent_cpu: float,
    loop_cpu: float,
    server_cpu: float,
    server_shares: bool,
) -> float | None:
    """Probes/s the layout would run with its cores to itself, from its CPU per probe.

    Two limits, the lower wins: each agent's event loop is one thread, so A agents
    saturate when their loop threads fill A cores; and every thread of the agents (and
    the server, when it shares their cores) must fit on the layout's cores. Unlike the
    measured rate, this does not depend on how much CPU other processes took.
    """
    if not probes or not loop_cpu:
        return None
    shared = server_cpu if server_shares else 0.0
    loops = layout.processes / (loop_cpu / probes)
    cores = len(layout.cores) / ((agent_cpu + shared) / probes)
    return round(min(loops, cores))


def _free_ports(count: int) -> int:
    """A base port whose ``count`` successive ports are free right now."""
    for _ in range(50):
        base = procs.free_port()
        if all(_port_free(base + i) for i in range(1, count)):
            return base
    raise RuntimeError(f"no {count} successive free ports found")


def _port_free(port: int) -> bool:
    import socket

    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def run(url: str, server_pid: int, *, quick: bool) -> dict[str, Any]:
    """Every layout at every level, interleaved; capacity per layout."""
    levels = [300, 600] if quick else [400, 800, 1200]
    only = os.environ.get(LEVELS_ENV)
    if only:
        levels = [int(x) for x in only.split(",") if x.strip()]
    # Warm for a whole interval: the runs that start-up delayed are caught up by then,
    # and do not swell the window's rate.
    warm, window = float(INTERVAL_S), (10.0 if quick else 12.0)
    layouts = _layouts()
    # This process parses every agent's /metrics: off the agents' first core.
    before = os.sched_getaffinity(0)
    procs.pin_self(procs.SERVER_CORE)
    runs: list[dict[str, Any]] = []
    try:
        for demand in levels:
            for layout in layouts:
                for _attempt in (1, 2):
                    try:
                        result = _one(layout, url, server_pid, demand, warm=warm, window=window)
                    except Exception as exc:  # one failing run must not lose the others
                        result = {"layout": layout.name, "due_per_s": demand, "error": repr(exc)}
                    # Another process may take a port between the check and the bind.
                    if "Errno 98" not in str(result.get("error", "")):
                        break
                runs.append(result)
                print(f"  cores {result}", flush=True)
    finally:
        os.sched_setaffinity(0, before)
    capacity = {}
    for layout in layouts:
        mine = [r for r in runs if r["layout"] == layout.name and "error" not in r]
        kept = [r["due_per_s"] for r in mine if r["kept_up"]]
        projected = sorted(r["projected_probes_per_s"] for r in mine if r["projected_probes_per_s"])
        capacity[layout.name] = {
            "kept_up_to_probes_per_s": max(kept) if kept else 0,
            "max_probes_per_s": max((r["probes_per_s"] for r in mine), default=0.0),
            "projected_probes_per_s_median": projected[len(projected) // 2] if projected else None,
        }
    return {
        "pipeline_split": cores_split.measure(quick=quick),
        "interval_s": INTERVAL_S,
        "levels_probes_per_s": levels,
        "cores": {layout.name: list(layout.cores) for layout in layouts},
        "server_core": procs.SERVER_CORE,
        "runs": runs,
        "capacity": capacity,
    }
