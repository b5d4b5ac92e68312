"""One time bucket of a check's results: the unit of :mod:`agent.storage.rollups`.

Latency is kept as per-phase sums and counts (means for a stacked chart) and, when
asked, as counts in the fixed buckets of :data:`LATENCY_BUCKETS`, so buckets merge by
addition and any range's quantiles come from the same rows. Raises nothing: unreadable
stored data decodes to a bucket with its run counts only.
"""

from __future__ import annotations

import bisect
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from agent.result import ProbeResult

__all__ = ["CHART_PHASES", "KEPT_PHASES", "LATENCY_BUCKETS", "Bucket", "measured"]

#: Upper bounds (seconds) of the latency histogram buckets; the last is +Inf.
LATENCY_BUCKETS: tuple[float, ...] = (
    0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, float("inf"),
)  # fmt: skip
#: Phases drawn stacked on the latency chart, in pipeline order; ``total`` is kept too.
CHART_PHASES: tuple[str, ...] = ("resolve", "connect", "tls", "handshake", "auth", "steps", "ping")
KEPT_PHASES = (*CHART_PHASES, "total")


def measured(result: ProbeResult) -> Iterator[tuple[int, float]]:
    """``result``'s kept phases as (index in :data:`KEPT_PHASES`, seconds); ``ping`` is
    the mean of its pings."""
    phases = result.phases
    for i, phase in enumerate(KEPT_PHASES):
        if phase == "ping" and result.pings:
            yield i, sum(result.pings) / len(result.pings)
        elif (value := phases.get(phase)) is not None:
            yield i, value


@dataclass(slots=True)
class Bucket:
    """What one check's runs added up to in one time bucket."""

    runs: int = 0
    degraded: int = 0
    lag_suspect: int = 0
    failures: dict[str, int] = field(default_factory=dict)
    #: phase -> [sum of seconds, runs that measured it]
    phases: dict[str, list[float]] = field(default_factory=dict)
    #: phase -> counts per LATENCY_BUCKETS index (hour and coarser only)
    hist: dict[str, dict[int, int]] = field(default_factory=dict)

    @property
    def fails(self) -> int:
        """Failed runs."""
        return sum(self.failures.values())

    def add(self, result: ProbeResult, *, with_hist: bool) -> None:
        """Count one result."""
        self.runs += 1
        self.degraded += bool(result.degraded)
        self.lag_suspect += result.lag_suspect
        if not result.success:
            reason = result.reason.value if result.reason else "internal"
            self.failures[reason] = self.failures.get(reason, 0) + 1
        for i, value in measured(result):
            phase = KEPT_PHASES[i]
            slot = self.phases.setdefault(phase, [0.0, 0])
            slot[0] += value
            slot[1] += 1
            if with_hist:
                counts = self.hist.setdefault(phase, {})
                index = bisect.bisect_left(LATENCY_BUCKETS, value)
                counts[index] = counts.get(index, 0) + 1

    def merge(self, other: Bucket) -> None:
        """Add ``other``'s counts to this bucket."""
        self.runs += other.runs
        self.degraded += other.degraded
        self.lag_suspect += other.lag_suspect
        for reason, n in other.failures.items():
            self.failures[reason] = self.failures.get(reason, 0) + n
        for phase, (total, runs) in other.phases.items():
            slot = self.phases.setdefault(phase, [0.0, 0])
            slot[0] += total
            slot[1] += runs
        for phase, counts in other.hist.items():
            mine = self.hist.setdefault(phase, {})
            for index, n in counts.items():
                mine[index] = mine.get(index, 0) + n

    def encode(self) -> str:
        """The row's ``data`` column: compact JSON, phases by position in
        :data:`KEPT_PHASES` (``[]`` when not measured), sums in whole microseconds,
        histograms as ``[index, count, index, count, ...]``. About half the bytes of
        named keys and float sums, over 90 days of hourly rows per check."""
        data: dict[str, Any] = {}
        if self.failures:
            data["f"] = self.failures
        if self.phases:
            data["p"] = [
                [round(slot[0] * 1e6), int(slot[1])] if (slot := self.phases.get(p)) else []
                for p in KEPT_PHASES
            ]
        if self.lag_suspect:
            data["l"] = self.lag_suspect
        if self.hist:
            data["h"] = [
                [v for i in sorted(c) for v in (i, c[i])] if (c := self.hist.get(p)) else []
                for p in KEPT_PHASES
            ]
        return json.dumps(data, separators=(",", ":"))

    @classmethod
    def decode(cls, runs: int, degraded: int, data: str) -> Bucket:
        """A bucket from a stored row (unreadable data counts runs only)."""
        bucket = cls(runs=runs, degraded=degraded)
        try:
            raw = json.loads(data)
            bucket.failures = {str(k): int(v) for k, v in raw.get("f", {}).items()}
            bucket.lag_suspect = int(raw.get("l", 0))
            for phase, slot in zip(KEPT_PHASES, raw.get("p", ()), strict=False):
                if slot:
                    bucket.phases[phase] = [slot[0] / 1e6, int(slot[1])]
            for phase, flat in zip(KEPT_PHASES, raw.get("h", ()), strict=False):
                if flat:
                    bucket.hist[phase] = {
                        int(i): int(n) for i, n in zip(flat[::2], flat[1::2], strict=True)
                    }
        except (ValueError, TypeError, AttributeError, IndexError):
            pass
        return bucket

    def quantile(self, phase: str, q: float) -> float | None:
        """Upper bound of the histogram bucket holding quantile ``q`` of ``phase``."""
        counts = self.hist.get(phase)
        if not counts:
            return None
        total = sum(counts.values())
        seen = 0
        for index in sorted(counts):
            seen += counts[index]
            if seen >= q * total:
                bound = LATENCY_BUCKETS[index]
                return bound if bound != float("inf") else LATENCY_BUCKETS[-2]
        return None

    def to_json(self, ts: int) -> dict[str, Any]:
        """The API shape of one bucket starting at Unix second ``ts``."""
        return {
            "ts": ts,
            "runs": self.runs,
            "failures": dict(self.failures),
            "degraded": self.degraded,
            "availability": None if not self.runs else (self.runs - self.fails) / self.runs,
            "phases": {p: s / n for p, (s, n) in self.phases.items() if n},
            "p50": self.quantile("total", 0.5),
            "p95": self.quantile("total", 0.95),
        }
