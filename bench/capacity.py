"""Scenario: the daemon itself with 0 / 1,000 / 10,000 / 20,000 / 40,000 checks at 30 s.

Each level starts ``python -m agent run`` (pinned to the bench core) on a generated
config, waits for ``/readyz``, lets the schedule settle, then measures over a fixed
window by scraping ``/metrics`` at both ends: achieved probes/s, CPU share (from
/proc), scheduler lag and event-loop lag (p50/p99 interpolated from the agent's own
histograms, as Prometheus' histogram_quantile would), RSS per configured check
(against the 0-check level), and fidelity: ten extra checks probe through the delay
proxy every 2 s, and their results (from ``/api/v1/checks`` history) are compared with
the proxy's wire records (see bench/fidelity.py), paired by path and start time.

Judged from outside as well: a poller process asks ``/healthz`` 20 times a second
through the window (its maximum response time is the longest stall anyone outside
saw, reported beside the agent's own loop-lag p99 and highest bucket, overall and
split into polls that overlapped a scrape and polls between scrapes), the
``/metrics`` page's bytes and serve time (plain, and gzip as Prometheus asks for it,
mid-window), runs shed or skipped by reason, runs the agent flagged as its own
problem, failures of the (healthy) target, RSS, and how long SIGTERM takes to end it.

Note: the agent renders ``/metrics`` on its event loop, so each scrape's own cost
shows up as loop lag in the next window, as it does under a real Prometheus.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from bench import procs
from bench.clients import Cycle
from bench.fidelity import Wire, calibrate, errors
from bench.gen import write_config
from bench.poller import Poller
from bench.scrape import histogram_quantile, sums
from bench.startup import wait_ready
from bench.stats import ms

__all__ = ["WANTED", "run"]

FIDELITY_CHECKS = 10
#: Comma-separated check counts to run instead of the default levels (e.g. ``10000``),
#: for iterating on one level; the idle-RSS measurement is skipped then.
LEVELS_ENV = "WSPROBE_BENCH_CAPACITY_LEVELS"


#: Outside ``/healthz`` polls per second during the window.
POLL_HZ = 20.0

WANTED = (
    "wsprobe_probes_total",
    "wsprobe_probes_skipped_total",
    "wsprobe_agent_problem_runs_total",
    "wsprobe_probes_lag_suspect_total",
    "wsprobe_scheduler_lag_seconds_bucket",
    "wsprobe_event_loop_lag_seconds_bucket",
)


def _fetch(port: int, scrapes: list[tuple[float, float]] | None = None) -> tuple[str, float]:
    """The raw exposition text and how long the agent took to serve it.

    Appends the scrape's (start, end) perf_counter span to ``scrapes`` when given.
    """
    t0 = time.perf_counter()
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=300) as resp:
        text = resp.read().decode()
    t1 = time.perf_counter()
    if scrapes is not None:
        scrapes.append((t0, t1))
    return text, t1 - t0


def _fetch_gzip(port: int, scrapes: list[tuple[float, float]]) -> tuple[int, float]:
    """Bytes on the wire and serve time of a scrape asking for gzip, as Prometheus does."""
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/metrics", headers={"Accept-Encoding": "gzip"}
    )
    t0 = time.perf_counter()
    with urllib.request.urlopen(request, timeout=300) as resp:  # noqa: S310 - http:// above
        size = len(resp.read())
    t1 = time.perf_counter()
    scrapes.append((t0, t1))
    return size, t1 - t0


def _max_bucket(before: dict[float, float], after: dict[float, float]) -> float | None:
    """The upper bound of the highest bucket that gained an observation (the worst seen)."""
    bounds = sorted(after)
    worst = None
    below = 0.0
    for bound in bounds:
        count = after[bound] - before.get(bound, 0.0)
        if count > below:
            worst = bound
        below = count
    return worst


def _fidelity_results(port: int, since: float, until: float) -> list[tuple[str, float, Cycle]]:
    """(proxy path, wall-clock start, result) of the fidelity checks' runs in the window."""
    out = []
    for i in range(FIDELITY_CHECKS):
        url = f"http://127.0.0.1:{port}/api/v1/checks?check=fid-{i:02d}&history=1000"
        with urllib.request.urlopen(url, timeout=60) as resp:
            item = json.load(resp)["checks"][0]
        for r in item.get("history", []):
            if not (since <= r["started_at"] <= until) or not r["success"]:
                continue
            cycle = Cycle(
                ok=True,
                connect=r["phases"].get("connect"),
                handshake=r["phases"].get("handshake"),
                pings=list(r["pings"]),
                lag_suspect=bool(r.get("lag_suspect")),
            )
            out.append((f"/fid/{i}", r["started_at"], cycle))
    return out


def _pair(results: list[tuple[str, float, Cycle]], wire: Wire) -> list[tuple[Cycle, list[float]]]:
    """Match each result with the proxy connection of its path that began closest to it."""
    wire.refresh()
    offset = time.time() - time.perf_counter()  # both clocks are system-wide
    pairs = []
    for path, started, cycle in results:
        records = wire.by_path.get(path, [])
        if not records:
            continue
        best = min(records, key=lambda rec: abs(rec["accepted"] + offset - started))
        if abs(best["accepted"] + offset - started) < 0.5:
            pairs.append((cycle, Wire.truths(best)))
    return pairs


def _level(url: str, proxy_port: int, checks: int, *, warm: float, window: float) -> dict[str, Any]:
    fid = [
        {
            "name": f"fid-{i:02d}",
            "url": f"ws://127.0.0.1:{proxy_port}/fid/{i}",
            "interval": "2s",
            "timeout": "1500ms",
        }
        for i in range(FIDELITY_CHECKS)
    ]
    out: dict[str, Any] = {"checks": checks}
    # This process reads and parses ~100 MB per scrape at 10,000 checks: off the
    # agent's core (as a real Prometheus would be), on the server's for the level.
    before = os.sched_getaffinity(0)
    procs.pin_self(procs.SERVER_CORE)
    try:
        return _measure(url, proxy_port, checks, fid, out, warm=warm, window=window)
    finally:
        os.sched_setaffinity(0, before)


def _measure(
    url: str,
    proxy_port: int,
    checks: int,
    fid: list[dict[str, object]],
    out: dict[str, Any],
    *,
    warm: float,
    window: float,
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="wsprobe-bench-") as tmp:
        port = procs.free_port()
        path = write_config(
            Path(tmp),
            url=url,
            checks=checks,
            listen_port=port,
            extra_checks=fid,
            history_size=200,
        )
        argv = [sys.executable, "-m", "agent", "run", "-c", str(path)]
        # The daemon's log goes to a file: a pipe read only at the end fills up under
        # load (every missed run logs a line) and then blocks the daemon in logging.
        log_path = Path(tmp) / "agent.log"
        log_file = log_path.open("w")
        popen = subprocess.Popen(
            ["taskset", "-c", str(procs.BENCH_CORE), *argv],
            stdout=subprocess.DEVNULL,
            stderr=log_file,
        )
        try:
            ready = wait_ready(port, popen, timeout=120)
            if ready is None:
                err = log_path.read_text(errors="replace")[-2000:]
                return {**out, "error": f"daemon not ready within 120 s {err}"}
            out["ready_s"] = round(ready, 2)
            time.sleep(warm)
            poller = Poller(port, hz=POLL_HZ)
            scrapes: list[tuple[float, float]] = []
            # The opening scrape is the first this agent serves, reported beside the
            # closing one.
            text0, first_scrape_s = _fetch(port, scrapes)
            wall0, t0, cpu0 = time.time(), time.perf_counter(), procs.cpu_seconds(popen.pid)
            time.sleep(window / 2)
            gzip_bytes, gzip_scrape_s = _fetch_gzip(port, scrapes)
            time.sleep(window / 2)
            cpu_pre = procs.cpu_seconds(popen.pid)
            text1, scrape_s = _fetch(port, scrapes)
            wall1, t1, cpu1 = time.time(), time.perf_counter(), procs.cpu_seconds(popen.pid)
            poller.stop()
            rss = procs.rss_kib(popen.pid)
            results = _fidelity_results(port, wall0, wall1)
            (c0, b0), (c1, b1) = sums([text0], WANTED), sums([text1], WANTED)
        finally:
            stop0 = time.perf_counter()
            popen.terminate()
            try:
                popen.wait(timeout=30)
                out["stop_s"] = round(time.perf_counter() - stop0, 2)
            except subprocess.TimeoutExpired:
                out["stop_s"] = "not within 30 s (killed)"
                popen.kill()
                popen.wait()
            log_file.close()
    span = t1 - t0
    probes = sum(v for k, v in c1.items() if k.startswith("wsprobe_probes_total{")) - sum(
        v for k, v in c0.items() if k.startswith("wsprobe_probes_total{")
    )
    failures = c1.get("wsprobe_probes_total{result=failure}", 0.0) - c0.get(
        "wsprobe_probes_total{result=failure}", 0.0
    )
    lag_suspect = c1.get("wsprobe_probes_lag_suspect_total", 0.0) - c0.get(
        "wsprobe_probes_lag_suspect_total", 0.0
    )

    def delta(key: str) -> float:
        return c1.get(key, 0.0) - c0.get(key, 0.0)

    skipped = {
        k.split("reason=", 1)[1].rstrip("}"): delta(k)
        for k in c1
        if k.startswith("wsprobe_probes_skipped_total{")
    }
    polls = sorted(took for _, took in poller.polls)
    during, between = [], []
    for start, took in poller.polls:
        overlaps = any(a <= start + took and start <= b for a, b in scrapes)
        (during if overlaps else between).append(took)
    sched = "wsprobe_scheduler_lag_seconds"
    loop = "wsprobe_event_loop_lag_seconds"
    out.update(
        {
            "window_s": round(span, 1),
            "probes_per_s": round(probes / span, 1),
            "target_probes_per_s": round((checks + FIDELITY_CHECKS * 15) / 30, 1),
            "failures_per_s": round(failures / span, 2),
            "lag_suspect_per_s": round(lag_suspect / span, 2),
            "cpu_share": round((cpu1 - cpu0) / span, 3),
            "cpu_ms_per_probe": round((cpu1 - cpu0) / probes * 1000, 3) if probes else None,
            # The same without the closing scrape (its rendering, plus the probes that
            # ran while it was served): the window ends where the scrape begins.
            "cpu_share_before_scrape": round((cpu_pre - cpu0) / (span - scrape_s), 3),
            "scrape_cpu_s": round(cpu1 - cpu_pre, 2),
            "scheduler_lag_p50_ms": ms(
                histogram_quantile(0.5, b0.get(sched, {}), b1.get(sched, {}))
            ),
            "scheduler_lag_p99_ms": ms(
                histogram_quantile(0.99, b0.get(sched, {}), b1.get(sched, {}))
            ),
            "loop_lag_p50_ms": ms(histogram_quantile(0.5, b0.get(loop, {}), b1.get(loop, {}))),
            "loop_lag_p99_ms": ms(histogram_quantile(0.99, b0.get(loop, {}), b1.get(loop, {}))),
            # Failures of a healthy target: each one is a false alarm (goal 0).
            "false_failures": int(failures),
            "agent_problem_runs": int(delta("wsprobe_agent_problem_runs_total")),
            "skipped_by_reason": {k: int(v) for k, v in sorted(skipped.items())},
            "loop_lag_max_bucket_ms": ms(_max_bucket(b0.get(loop, {}), b1.get(loop, {}))),
            "outside_healthz_polls": len(polls),
            "outside_healthz_errors": poller.errors,
            "outside_healthz_p99_ms": ms(polls[int(0.99 * (len(polls) - 1))]) if polls else None,
            "outside_healthz_max_ms": ms(polls[-1]) if polls else None,
            "outside_healthz_max_during_scrape_ms": ms(max(during)) if during else None,
            "outside_healthz_max_between_scrapes_ms": ms(max(between)) if between else None,
            "metrics_bytes": len(text1.encode()),
            "metrics_bytes_per_check": round(len(text1.encode()) / max(1, checks + 10), 1),
            "metrics_scrape_s": round(scrape_s, 3),
            "metrics_first_scrape_s": round(first_scrape_s, 3),
            "metrics_gzip_bytes": gzip_bytes,
            "metrics_gzip_scrape_s": round(gzip_scrape_s, 3),
            "rss_kib": rss,
            "fidelity_results": len(results),
            "fidelity_lag_suspect": sum(1 for _, _, c in results if c.lag_suspect),
            "_fidelity": results,
        }
    )
    return out


def _idle_rss(url: str, checks: int) -> dict[str, Any]:
    """RSS of the daemon holding ``checks`` checks that (almost) never run (1 h interval)."""
    out: dict[str, Any] = {}
    # One check in the baseline: an agent with no check at all refuses to start.
    for n in (1, checks):
        with tempfile.TemporaryDirectory(prefix="wsprobe-bench-") as tmp:
            port = procs.free_port()
            path = write_config(Path(tmp), url=url, checks=n, listen_port=port, interval="1h")
            argv = [sys.executable, "-m", "agent", "run", "-c", str(path)]
            popen = subprocess.Popen(
                ["taskset", "-c", str(procs.BENCH_CORE), *argv],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            try:
                if wait_ready(port, popen, timeout=120) is None:
                    return {"error": f"daemon with {n} idle checks not ready within 120 s"}
                time.sleep(5)
                out[f"rss_kib_{n}"] = procs.rss_kib(popen.pid)
            finally:
                procs.terminate(popen, timeout=15)
    out["checks"] = checks
    out["rss_kib_per_idle_check"] = round(
        (out[f"rss_kib_{checks}"] - out["rss_kib_1"]) / (checks - 1), 2
    )
    return out


def run(url: str, proxy_port: int, lines: list[str], *, quick: bool, loop: str) -> dict[str, Any]:
    """Run the daemon at each level; compute per-check RSS and fidelity errors."""
    try:
        import agent.runtime.daemon  # noqa: F401 - only checks that the daemon exists
    except ImportError as exc:
        return {"skipped": f"agent.runtime.daemon not importable yet ({exc})"}
    import uvloop

    wire = Wire(lines)
    cal = uvloop.run(calibrate(f"ws://127.0.0.1:{proxy_port}/", wire, 30))
    levels = [0, 1000] if quick else [0, 1000, 10000, 20000, 40000]
    only = os.environ.get(LEVELS_ENV)
    if only:
        levels = [int(x) for x in only.split(",") if x.strip()]
    warm, window = (4.0, 15.0) if quick else (8.0, 40.0)
    out: dict[str, Any] = {
        "interval_s": 30,
        "truth_ms": cal["truth_ms"],
        "truth_meter": cal["truth_meter"],
        "event_loop": "uvloop (agent.runtime.serve picks it when installed)",
        "levels": [],
    }
    base_rss = None
    for checks in levels:
        try:
            level = _level(url, proxy_port, checks, warm=warm, window=window)
        except Exception as exc:  # one level failing must not lose the others
            level = {"checks": checks, "error": f"{type(exc).__name__}: {exc}"}
        results = level.pop("_fidelity", [])
        if "error" not in level:
            pairs = _pair(results, wire)
            level["fidelity_paired_with_wire"] = len(pairs)
            level["fidelity_error_all"] = errors(pairs, cal["connect"])
            level["fidelity_error_clean"] = errors(
                [(c, t) for c, t in pairs if not c.lag_suspect], cal["connect"]
            )
            if checks == 0:
                base_rss = level["rss_kib"]
            elif base_rss is not None:
                level["rss_kib_per_check"] = round((level["rss_kib"] - base_rss) / checks, 2)
        out["levels"].append(level)
        print(f"  capacity {checks} checks: {json.dumps(level)[:900]}", flush=True)
    if only:
        return out
    out["idle"] = _idle_rss(url, 1000 if quick else 10000)
    print(f"  capacity idle checks: {out['idle']}", flush=True)
    return out
