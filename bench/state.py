"""Scenario: the state directory's size under a storm of failing runs.

The real daemon runs ``--checks`` checks every second against a loopback port where
nothing listens (each run fails at once, ~``checks`` failing runs per second), every
one firing after one failure and reminding every ``REPEAT_INTERVAL`` to a local
webhook that accepts everything: each result writes history and alert state, and
the reminders keep the outbox busy. The state directory is sampled every
``SAMPLE_INTERVAL`` for the bounded window; the scenario prints the peak WAL, the
peak directory size and the final sizes.

    python -m bench.state [--duration 60] [--checks 200] [--max-bytes 64MiB]
"""

from __future__ import annotations

import argparse
import http.server
import json
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import yaml

from bench import procs
from bench.startup import wait_ready

__all__ = ["run"]

CHECKS = 200
#: Seconds of load: alone, within ``make bench`` (whose whole run stays under 10
#: minutes) and with ``--quick``.
DURATION = 60.0
SCENARIO_DURATION = 40.0
QUICK_DURATION = 20.0
SAMPLE_INTERVAL = 0.25
#: Reminders keep alert events flowing through the outbox.
REPEAT_INTERVAL = "10s"
_MIB = 1024 * 1024


class _Accept(http.server.BaseHTTPRequestHandler):
    """A webhook receiver that accepts every event (counts them)."""

    received = 0

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        type(self).received += 1
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: thousands of requests."""


def _dir_bytes(state: Path) -> tuple[int, int]:
    """(WAL bytes, all files' bytes) of the state directory."""
    wal = total = 0
    for path in state.iterdir():
        try:
            size = path.stat().st_size
        except OSError:
            continue
        total += size
        if path.name.endswith("-wal"):
            wal += size
    return wal, total


def _probes_total(port: int) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("wsprobe_probes_total{")
    )


def run(
    *,
    quick: bool,
    duration: float | None = None,
    checks: int = CHECKS,
    max_bytes: str | None = None,
) -> dict[str, Any]:
    """Run the daemon under failing load for a bounded window; sizes and rates."""
    window = duration if duration is not None else (QUICK_DURATION if quick else SCENARIO_DURATION)
    receiver = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Accept)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    out: dict[str, Any] = {"checks": checks, "window_s": window}
    with tempfile.TemporaryDirectory(prefix="wsprobe-bench-state-") as tmp:
        state = Path(tmp) / "state"
        port = procs.free_port()
        agent: dict[str, Any] = {"listen": f"127.0.0.1:{port}", "state_dir": str(state)}
        if max_bytes:
            agent["state_max_bytes"] = max_bytes
        config = {
            "agent": agent,
            "check_files": [],
            "alerting": {"failure_threshold": 1, "repeat_interval": REPEAT_INTERVAL,
                         "receivers": ["hook"]},
            "receivers": [{"name": "hook", "type": "webhook", "secret": "s",
                           "url": f"http://127.0.0.1:{receiver.server_address[1]}/hook"}],
            "checks": [{"name": f"down-{i:05d}", "url": "ws://127.0.0.1:1/", "interval": "1s",
                        "timeout": "500ms"} for i in range(checks)],
        }  # fmt: skip
        path = Path(tmp) / "agent.yaml"
        path.write_text(yaml.safe_dump(config), encoding="utf-8")
        argv = [sys.executable, "-m", "agent", "run", "-c", str(path), "--log-level", "error"]
        popen = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            if wait_ready(port, popen, timeout=60) is None:
                return {"error": "the agent did not become ready"}
            runs0, t0 = _probes_total(port), time.monotonic()
            peak_wal = peak_total = 0
            while time.monotonic() - t0 < window and popen.poll() is None:
                wal, total = _dir_bytes(state)
                peak_wal, peak_total = max(peak_wal, wal), max(peak_total, total)
                time.sleep(SAMPLE_INTERVAL)
            runs = _probes_total(port) - runs0
            elapsed = time.monotonic() - t0
            final_wal, final_total = _dir_bytes(state)
        finally:
            procs.terminate(popen, timeout=15)
        out.update(
            runs_per_s=round(runs / elapsed, 1),
            deliveries=_Accept.received,
            peak_wal_mib=round(peak_wal / _MIB, 2),
            peak_state_dir_mib=round(peak_total / _MIB, 2),
            final_wal_mib=round(final_wal / _MIB, 2),
            final_state_dir_mib=round(final_total / _MIB, 2),
            after_stop_mib=round(_dir_bytes(state)[1] / _MIB, 2),
            exit_code=popen.returncode,
        )
    receiver.shutdown()
    return out


def main(argv: list[str] | None = None) -> int:
    """Command line: one bounded run, its figures printed as JSON."""
    parser = argparse.ArgumentParser(prog="python -m bench.state", description=__doc__)
    parser.add_argument("--duration", type=float, default=DURATION, help="seconds of load")
    parser.add_argument("--checks", type=int, default=CHECKS, help="failing checks at 1 s")
    parser.add_argument("--max-bytes", default=None, help="agent.state_max_bytes, e.g. 64MiB")
    args = parser.parse_args(argv)
    result = run(quick=False, duration=args.duration, checks=args.checks, max_bytes=args.max_bytes)
    print(json.dumps(result, indent=2))
    return 0 if "error" not in result else 1


if __name__ == "__main__":
    raise SystemExit(main())
