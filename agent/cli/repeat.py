"""``wsprobe probe --count N --interval S``: repeat like ping, then a closing summary.

One line per run (time, result or reason, total, handshake, ping RTT), or one JSON
object per run with ``--json``; on the last run, or on Ctrl-C, a summary like ping's
closing lines (runs, failures by reason, min/avg/max/p95 of total and ping RTT), and a
``{"summary": ...}`` object with ``--json``. Runs start ``interval`` seconds apart
(start to start, like ping); a run slower than the interval is followed at once.
Ctrl-C abandons the run in flight, which is not counted.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import json
import math
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, TextIO

from agent.cli.output import render_json
from agent.cli.signals import stop_on_signals
from agent.cli.style import Style
from agent.config.models import CheckConfig
from agent.redact import redact_url
from agent.result import ProbeResult

__all__ = ["Stats", "Summary", "repeat", "run_line"]

RunOnce = Callable[[CheckConfig], Awaitable[ProbeResult]]


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.3f}"


@dataclass(frozen=True, slots=True)
class Stats:
    """min/avg/max/p95 of a list of durations, in seconds."""

    min: float
    avg: float
    max: float
    p95: float

    @classmethod
    def of(cls, values: list[float]) -> Stats | None:
        """The statistics of ``values`` (None when empty); p95 is the nearest rank."""
        if not values:
            return None
        ordered = sorted(values)
        rank = max(math.ceil(0.95 * len(ordered)) - 1, 0)
        return cls(ordered[0], sum(ordered) / len(ordered), ordered[-1], ordered[rank])

    def text(self) -> str:
        """``min/avg/max/p95`` in milliseconds, as ping prints them."""
        return "/".join(_ms(v) for v in (self.min, self.avg, self.max, self.p95)) + " ms"


@dataclass(slots=True)
class Summary:
    """What the runs so far add up to (their numbers, not the results: ``--count 0``
    may run for days)."""

    url: str
    runs: int = 0
    failures_by_reason: Counter[str] = field(default_factory=Counter)
    total_times: list[float] = field(default_factory=list)
    ping_rtts: list[float] = field(default_factory=list)
    started: float = field(default_factory=time.perf_counter)

    def add(self, result: ProbeResult) -> None:
        """Count one finished run."""
        self.runs += 1
        if not result.success:
            self.failures_by_reason[result.reason.value if result.reason else "unknown"] += 1
        if "total" in result.phases:
            self.total_times.append(result.phases["total"])
        self.ping_rtts.extend(result.pings)

    @property
    def failed(self) -> int:
        """How many runs failed."""
        return self.failures_by_reason.total()

    def failures(self) -> dict[str, int]:
        """Failed runs counted by reason, most frequent first."""
        return dict(self.failures_by_reason.most_common())

    def totals(self) -> Stats | None:
        """Statistics of every run's ``total`` phase."""
        return Stats.of(self.total_times)

    def rtts(self) -> Stats | None:
        """Statistics of every ping round trip of every run."""
        return Stats.of(self.ping_rtts)

    def lines(self) -> Iterator[str]:
        """The closing lines, like ping's."""
        runs, failed = self.runs, self.failed
        elapsed = time.perf_counter() - self.started
        yield f"--- {self.url} wsprobe statistics ---"
        loss = f"{100 * failed / runs:.0f}% failed" if runs else "no run completed"
        yield f"{runs} runs, {runs - failed} ok, {failed} failed ({loss}), time {elapsed:.1f}s"
        failures = self.failures()
        if failures:
            yield "failures: " + ", ".join(f"{reason} {n}" for reason, n in failures.items())
        totals, rtts = self.totals(), self.rtts()
        if totals:
            yield f"total min/avg/max/p95 = {totals.text()}"
        if rtts:
            yield f"ping rtt min/avg/max/p95 = {rtts.text()}"

    def to_json(self) -> dict[str, Any]:
        """The ``--json`` summary object (durations in seconds)."""
        totals, rtts = self.totals(), self.rtts()
        return {
            "summary": {
                "url": self.url,
                "runs": self.runs,
                "succeeded": self.runs - self.failed,
                "failed": self.failed,
                "failures": self.failures(),
                "total_seconds": _stats_json(totals),
                "ping_rtt_seconds": _stats_json(rtts),
            }
        }


def _stats_json(stats: Stats | None) -> dict[str, float] | None:
    if stats is None:
        return None
    return {"min": stats.min, "avg": stats.avg, "max": stats.max, "p95": stats.p95}


def run_line(result: ProbeResult, seq: int, *, style: Style) -> str:
    """One run as one line: time, sequence, result or reason, total, handshake, RTT."""
    when = datetime.datetime.fromtimestamp(result.started_at).strftime("%H:%M:%S.%f")[:-3]
    if result.success:
        verdict = style.paint("ok", f"{'OK':<20}")
    else:
        reason = result.reason.value if result.reason else "unknown"
        verdict = style.paint("fail", f"{reason:<20}")
    parts = [f"{when}  #{seq:<3} {verdict}"]
    for phase in ("total", "handshake"):
        if phase in result.phases:
            parts.append(f"{phase} {_ms(result.phases[phase])} ms")
    if result.pings:
        parts.append(f"ping {_ms(sum(result.pings) / len(result.pings))} ms")
    if not result.success and result.message:
        parts.append(style.paint("dim", result.message))
    return "  ".join(parts)


async def repeat(
    check: CheckConfig,
    *,
    run_once: RunOnce,
    count: int,
    interval: float,
    as_json: bool,
    style: Style,
    out: TextIO | None,
) -> Summary:
    """Run ``check`` ``count`` times (0: until Ctrl-C/SIGTERM), printing as it goes.

    Args:
        check: what to probe.
        run_once: runs the check once (the daemon's pipeline).
        count: number of runs; 0 runs until interrupted.
        interval: seconds from one run's start to the next one's.
        as_json: one JSON object per line instead of text.
        style: colour or not.
        out: where to print; None prints nothing (``-q``).

    Returns:
        The summary, also printed unless ``out`` is None.
    """
    summary = Summary(url=redact_url(check.url))
    stop = asyncio.Event()
    with stop_on_signals(stop):
        if out is not None and not as_json:
            runs = f"{count} runs" if count else "until Ctrl-C"
            print(f"WSPROBE {summary.url}: {runs}, every {interval:g}s", file=out, flush=True)
        seq = 0
        while not stop.is_set() and (count == 0 or seq < count):
            seq += 1
            began = time.perf_counter()
            result = await _until_stopped(run_once(check), stop)
            if result is None:
                break
            summary.add(result)
            if out is not None:
                line = render_json(result) if as_json else run_line(result, seq, style=style)
                print(line, file=out, flush=True)
            if count and seq >= count:
                break
            wait = max(interval - (time.perf_counter() - began), 0.0)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await stop.wait()
    if out is not None:
        if as_json:
            print(json.dumps(summary.to_json(), sort_keys=True), file=out, flush=True)
        else:
            print("", file=out)
            for line in summary.lines():
                print(line, file=out, flush=True)
    return summary


async def _until_stopped(run: Awaitable[ProbeResult], stop: asyncio.Event) -> ProbeResult | None:
    """The run's result, or None when ``stop`` was set first (the run is cancelled)."""
    task = asyncio.ensure_future(run)
    stopper = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopper.cancel()
    if task.done():
        return task.result()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    return None
