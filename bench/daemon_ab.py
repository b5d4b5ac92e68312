"""Short alternating daemon runs: loop lag, CPU per probe and scrape serving, A against B.

``python -m bench.daemon_ab [--checks N] [--rounds R] [--window S] VARIANT ...``

Each variant is a loop-lag monitor variant of :mod:`bench.lag_variant` (``as-is``,
``roundtrip``, ``interval=0.1``, ``off``), optionally ``@DIR`` to run the agent package
found in ``DIR`` instead of this tree's (e.g. ``as-is@/tmp/base`` with
``git archive REF agent | tar -x -C /tmp/base``). Every round runs each variant once, in
an order that alternates round to round, as ``bench.capacity`` runs one level: the daemon
pinned to the bench core with N checks at 30 s against the target server, ``/readyz``,
a warm-up, then a window with an outside ``/healthz`` poller at 20 Hz. In the window it
is scraped three times: plain (the opening scrape, the first this daemon serves), with
``Accept-Encoding: gzip`` mid-window, and plain again at the end.

Per run: probes/s, the daemon's CPU share and CPU per probe (the scrapes included),
the agent's own loop-lag p50 / p99 and highest bucket over the window, the outside
poller's p99 and max, the poller's max while a scrape was being served and outside
scrapes, each scrape's serve time and bytes. Then the medians per variant.

Short runs on a shared machine move by several per cent; compare medians of rounds,
and read the figures beside the load average printed with each run.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from bench import procs
from bench.capacity import WANTED
from bench.gen import write_config
from bench.poller import Poller
from bench.scrape import histogram_quantile, sums
from bench.startup import wait_ready
from bench.stats import ms

__all__ = ["main", "run_once"]

POLL_HZ = 20.0
#: Seconds between ``/readyz`` and the window: one whole interval, so every check has
#: run once and the start-up burst is over.
WARM_S = 30.0
_LOOP = "wsprobe_event_loop_lag_seconds"
_ROOT = Path(__file__).resolve().parent.parent


def _scrape(port: int, *, gzip: bool) -> tuple[bytes, float, float, float]:
    """(body as received, serve seconds, start, end) of one ``/metrics`` request."""
    headers = {"Accept-Encoding": "gzip"} if gzip else {}
    request = urllib.request.Request(f"http://127.0.0.1:{port}/metrics", headers=headers)
    t0 = time.perf_counter()
    with urllib.request.urlopen(request, timeout=300) as resp:  # noqa: S310 - http:// above
        body = resp.read()
    t1 = time.perf_counter()
    return body, t1 - t0, t0, t1


def _max_bucket(before: dict[float, float], after: dict[float, float]) -> float | None:
    """Upper bound of the highest bucket that gained an observation."""
    worst = None
    for bound in sorted(after):
        below = [b for b in after if b < bound]
        gained = after[bound] - before.get(bound, 0.0)
        gained_below = max((after[b] - before.get(b, 0.0) for b in below), default=0.0)
        if gained > gained_below:
            worst = bound
    return worst


def run_once(
    url: str, variant: str, *, checks: int, window: float, warm: float = WARM_S
) -> dict[str, Any]:
    """One daemon run of ``variant`` (see the module docstring)."""
    lag, _, tree = variant.partition("@")
    env = dict(os.environ)
    # The daemon runs from a temporary directory (``python -m`` puts the working
    # directory first on the path), finding ``bench`` here and ``agent`` in ``tree``.
    env["PYTHONPATH"] = os.pathsep.join(p for p in (tree, str(_ROOT)) if p)
    out: dict[str, Any] = {"variant": variant, "loadavg": os.getloadavg()[0]}
    with tempfile.TemporaryDirectory(prefix="wsprobe-ab-") as tmp:
        port = procs.free_port()
        path = write_config(Path(tmp), url=url, checks=checks, listen_port=port)
        argv = [sys.executable, "-m", "bench.lag_variant", lag, "--", "run", "-c", str(path)]
        log = (Path(tmp) / "agent.log").open("w")
        popen = subprocess.Popen(
            ["taskset", "-c", str(procs.BENCH_CORE), *argv],
            stdout=subprocess.DEVNULL,
            stderr=log,
            env=env,
            cwd=tmp,
        )
        try:
            if wait_ready(port, popen, timeout=120) is None:
                return {**out, "error": (Path(tmp) / "agent.log").read_text()[-1500:]}
            time.sleep(warm)
            poller = Poller(port, hz=POLL_HZ)
            scrapes: list[tuple[str, int, float, float, float]] = []
            body0, s0, a0, b0 = _scrape(port, gzip=False)
            scrapes.append(("first", len(body0), s0, a0, b0))
            t0, cpu0 = time.perf_counter(), procs.cpu_seconds(popen.pid)
            time.sleep(window / 2)
            body, s, a, b = _scrape(port, gzip=True)
            scrapes.append(("gzip", len(body), s, a, b))
            time.sleep(window / 2)
            body1, s1, a1, b1 = _scrape(port, gzip=False)
            scrapes.append(("plain", len(body1), s1, a1, b1))
            t1, cpu1 = time.perf_counter(), procs.cpu_seconds(popen.pid)
            poller.stop()
            out["rss_kib"] = procs.rss_kib(popen.pid)
        finally:
            procs.terminate(popen, timeout=30)
            log.close()
    (c0, h0), (c1, h1) = sums([body0.decode()], WANTED), sums([body1.decode()], WANTED)
    probes = sum(v for k, v in c1.items() if k.startswith("wsprobe_probes_total{")) - sum(
        v for k, v in c0.items() if k.startswith("wsprobe_probes_total{")
    )
    span = t1 - t0
    during = [
        d for start, d in poller.polls if any(a <= start + d and start <= b for *_, a, b in scrapes)
    ]
    between = [
        d
        for start, d in poller.polls
        if not any(a <= start + d and start <= b for *_, a, b in scrapes)
    ]
    polls = sorted(d for _, d in poller.polls)
    out.update(
        {
            "probes_per_s": round(probes / span, 1),
            "cpu_share": round((cpu1 - cpu0) / span, 3),
            "cpu_ms_per_probe": round((cpu1 - cpu0) / probes * 1000, 3) if probes else None,
            "loop_lag_p50_ms": ms(histogram_quantile(0.5, h0.get(_LOOP, {}), h1.get(_LOOP, {}))),
            "loop_lag_p99_ms": ms(histogram_quantile(0.99, h0.get(_LOOP, {}), h1.get(_LOOP, {}))),
            "loop_lag_max_bucket_ms": ms(_max_bucket(h0.get(_LOOP, {}), h1.get(_LOOP, {}))),
            "outside_p99_ms": ms(polls[int(0.99 * (len(polls) - 1))]) if polls else None,
            "outside_max_ms": ms(polls[-1]) if polls else None,
            "outside_max_during_scrape_ms": ms(max(during)) if during else None,
            "outside_max_between_scrapes_ms": ms(max(between)) if between else None,
            "skipped": {
                k.split("reason=", 1)[1].rstrip("}"): int(c1[k] - c0.get(k, 0.0))
                for k in c1
                if k.startswith("wsprobe_probes_skipped_total{")
            },
            "lag_suspect": int(
                c1.get("wsprobe_probes_lag_suspect_total", 0.0)
                - c0.get("wsprobe_probes_lag_suspect_total", 0.0)
            ),
            "scrapes": {name: {"bytes": n, "s": round(s, 3)} for name, n, s, _, _ in scrapes},
            # perf_counter (system-wide) span from the opening scrape to the end.
            "window": [a0, t1],
        }
    )
    return out


_MEDIANS = (
    "probes_per_s",
    "cpu_share",
    "cpu_ms_per_probe",
    "loop_lag_p50_ms",
    "loop_lag_p99_ms",
    "loop_lag_max_bucket_ms",
    "outside_p99_ms",
    "outside_max_ms",
    "outside_max_during_scrape_ms",
    "outside_max_between_scrapes_ms",
)


def main(argv: list[str] | None = None) -> int:
    """Run the rounds, print each run and the medians per variant as JSON lines."""
    parser = argparse.ArgumentParser(prog="python -m bench.daemon_ab", description=__doc__)
    parser.add_argument("variants", nargs="+")
    parser.add_argument("--checks", type=int, default=10000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--window", type=float, default=20.0)
    parser.add_argument("--warm", type=float, default=WARM_S)
    args = parser.parse_args(argv)
    # SIGTERM ends the runs through their finally blocks: no daemon or server left behind.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    procs.pin_self(procs.SERVER_CORE)
    runs: dict[str, list[dict[str, Any]]] = {v: [] for v in args.variants}
    with procs.target_server() as server:
        url = f"ws://127.0.0.1:{server.port}/"
        for rnd in range(args.rounds):
            order = args.variants if rnd % 2 == 0 else args.variants[::-1]
            for variant in order:
                result = run_once(
                    url, variant, checks=args.checks, window=args.window, warm=args.warm
                )
                runs[variant].append(result)
                print(json.dumps({"round": rnd, **result}), flush=True)
    for variant, results in runs.items():
        ok = [r for r in results if "error" not in r]
        medians: dict[str, Any] = {"variant": variant, "runs": len(ok)}
        for key in _MEDIANS:
            values = [r[key] for r in ok if r.get(key) is not None]
            medians[key] = round(statistics.median(values), 3) if values else None
        for name in ("first", "gzip", "plain"):
            values = [r["scrapes"][name]["s"] for r in ok]
            medians[f"scrape_{name}_s"] = round(statistics.median(values), 3) if values else None
        print(json.dumps({"median": medians}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
