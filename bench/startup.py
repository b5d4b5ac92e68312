"""Scenario: config validation and start-up time for 10,000 checks.

``load_config`` in this process (parse + validate every file, all errors collected),
``wsprobe check-config`` as a fresh process (what an operator or CI runs), and the
daemon from exec to ``/readyz`` answering 200 with 10,000 checks scheduled.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from bench import procs
from bench.gen import write_config

__all__ = ["run", "wait_ready"]

CHECKS = 10_000


def wait_ready(port: int, popen: subprocess.Popen[Any], *, timeout: float) -> float | None:
    """Seconds until ``/readyz`` answers 200 (None if the process died or timed out)."""
    began = time.perf_counter()
    while time.perf_counter() - began < timeout:
        if popen.poll() is not None:
            return None
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as resp:
                if resp.status == 200:
                    return time.perf_counter() - began
        except OSError:
            pass
        time.sleep(0.05)
    return None


def run(url: str, *, quick: bool) -> dict[str, Any]:
    """Time load_config, check-config and daemon readiness on generated checks."""
    try:
        from agent.config.loader import load_config
        from agent.runtime.gc_policy import gc_paused
        from agent.runtime.registries import REGISTRIES
    except ImportError as exc:
        return {"skipped": f"agent.config.loader not importable yet ({exc})"}
    out: dict[str, Any] = {"checks": CHECKS}
    with tempfile.TemporaryDirectory(prefix="wsprobe-bench-") as tmp:
        port = procs.free_port()
        path = write_config(Path(tmp), url=url, checks=CHECKS, listen_port=port)
        times = []
        for _ in range(1 if quick else 2):
            t0 = time.perf_counter()
            # As the daemon and check-config load: with the cyclic GC paused.
            with gc_paused():
                config = load_config(path, registries=REGISTRIES)
            times.append(time.perf_counter() - t0)
        assert len(config.checks) == CHECKS, len(config.checks)
        out["load_config_s"] = round(statistics.median(times), 3)
        t0 = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-m", "agent", "check-config", "-c", str(path)],
            capture_output=True,
            text=True,
            timeout=120,
        )
        out["check_config_process_s"] = round(time.perf_counter() - t0, 3)
        out["check_config_exit"] = proc.returncode
        argv = [sys.executable, "-m", "agent", "run", "-c", str(path)]
        popen = subprocess.Popen(
            ["taskset", "-c", str(procs.BENCH_CORE), *argv],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            ready = wait_ready(port, popen, timeout=60)
            out["daemon_ready_s"] = round(ready, 3) if ready is not None else None
            if ready is not None:
                out["daemon_rss_kib_at_ready"] = procs.rss_kib(popen.pid)
        finally:
            procs.terminate(popen, timeout=10)
    print(
        f"  startup {CHECKS} checks: load_config {out['load_config_s']} s, check-config "
        f"{out['check_config_process_s']} s, daemon ready {out.get('daemon_ready_s')} s",
        flush=True,
    )
    return out
