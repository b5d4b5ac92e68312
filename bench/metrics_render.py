"""`/metrics` exposition cost: bytes and render CPU for 1,000 and 10,000 checks.

Run: ``.venv/bin/python -m bench.metrics_render [CHECKS ...]`` (default 1000 10000).

Builds :class:`agent.metrics.registry.Metrics` with generated checks shaped like the capacity
bench's (``labels: {shard}``, 3 pings), feeds each a realistic result (80 % ``ws://``
successes, 10 % ``wss://`` successes with TLS, 10 % refused connections), then measures
three scrapes the way the web handler consumes them (piece by piece):

- ``cold``: the first scrape after every check got a result;
- ``warm``: a second scrape with no new result in between;
- ``half``: after half of the checks got a new result (a 30 s interval scraped every
  15 s).

For each: exposition bytes, CPU seconds (``time.process_time``) for the whole scrape,
the number of pieces and the p99 / longest CPU time to produce one piece (how long the
event loop is blocked at once). Thread CPU time, not wall time: on a shared machine a
piece's wall time includes preemption by other processes (4 ms ticks here); cyclic GC
pauses are included, as in the daemon. Also the memory the cached text holds per check
(``cache_bytes_per_check``, from ``sys.getsizeof``).
"""

from __future__ import annotations

import json
import random
import sys
import time

from agent.config.models import CheckConfig
from agent.metrics.registry import Metrics
from agent.result import ProbeResult, Reason, TLSInfo
from bench.stats import ms, pct

__all__ = ["main", "measure"]


def _result(check: CheckConfig, i: int, rng: random.Random) -> ProbeResult:
    result = ProbeResult(check=check.name, kind="probe", url=check.url, started_at=time.time())
    ms = rng.uniform(0.5, 3.0) / 1000.0
    if i % 10 == 9:
        result.phases = {"resolve": 0.00002, "connect": ms / 4, "total": ms / 3}
        return result.fail(Reason.CONNECT_REFUSED, "connection refused")
    result.success = True
    result.status_code = 101
    result.phases = {"resolve": 0.00002, "connect": ms / 5, "handshake": ms,
                     "ping": ms / 2, "close": ms / 4, "total": ms * 2}  # fmt: skip
    if i % 10 == 8:
        result.phases["tls"] = ms * 3
        result.tls = TLSInfo(version="TLSv1.3", cert_not_after=1_900_000_000.0)
    result.pings = [rng.uniform(0.00005, 0.0005) for _ in range(3)]
    return result


def _scrape(metrics: Metrics) -> dict[str, float]:
    size = 0
    times: list[float] = []
    cpu0 = time.process_time()
    pieces = metrics.render_chunks()
    while True:
        t0 = time.thread_time()
        piece = next(pieces, None)
        times.append(time.thread_time() - t0)
        if piece is None:
            break
        size += len(piece.encode("utf-8"))
    return {
        "bytes": size,
        "cpu_s": round(time.process_time() - cpu0, 4),
        "pieces": len(times),
        "piece_p99_ms": ms(pct(times, 99)),
        "piece_max_ms": ms(max(times)),
    }


def measure(n: int) -> dict[str, object]:
    """Bytes and CPU of three scrapes of ``n`` checks (see the module docstring)."""
    rng = random.Random(7)
    checks = [
        CheckConfig(
            name=f"gen-{i:05d}",
            url=f"ws://127.0.0.1:9/gen/{i}",
            interval=30.0,
            timeout=5.0,
            pings=3,
            labels={"shard": f"s{i % 16}"},
        )
        for i in range(n)
    ]
    metrics = Metrics(location="bench", alert_firing=lambda _: False, queue_depth=lambda: 0)
    metrics.set_checks(checks)
    for i, check in enumerate(checks):
        metrics.observe(check, _result(check, i, rng), duration=0.003)
    out: dict[str, object] = {"checks": n, "cold": _scrape(metrics), "warm": _scrape(metrics)}
    for i, check in enumerate(checks[::2]):
        metrics.observe(check, _result(check, 2 * i, rng), duration=0.003)
    out["half"] = _scrape(metrics)
    cache = 0
    for check in checks:
        series = metrics.series(check)
        block = getattr(series, "block", None)  # absent before caching existed
        if block is not None:
            cache += sys.getsizeof(block) + sum(sys.getsizeof(text) for text in block if text)
    out["cache_bytes_per_check"] = round(cache / n)
    cold = out["cold"]
    assert isinstance(cold, dict)
    out["bytes_per_check"] = round(cold["bytes"] / n)
    return out


def main(argv: list[str]) -> None:
    """Print one JSON line per check count."""
    for n in [int(a) for a in argv] or [1000, 10000]:
        print(json.dumps(measure(n)), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
