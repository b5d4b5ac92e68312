"""A check's results not yet written, in one minute: the rollups' pending state.

:class:`~agent.storage.rollups.Rollups` holds one :class:`Tally` per check and minute
between two flushes (up to :data:`~agent.storage.rollups.FLUSH_INTERVAL`), for every
check at once, so it is kept small: one slotted object holding its first result as it
is (counted later), then the phase sums and counts in one ``array`` (no float object
per value), the histogram counts in one dictionary created on the first measured
phase. Its minute, hour and day buckets are built from it in the writer thread (the
hour's with histograms), one at a time. Raises nothing.
"""

from __future__ import annotations

import bisect
from array import array

from agent.result import ProbeResult
from agent.storage.rollup_bucket import KEPT_PHASES, LATENCY_BUCKETS, Bucket, measured

__all__ = ["Tally"]

_WIDTH = len(LATENCY_BUCKETS)


class Tally:
    """What one check's runs added up to in one minute, until they are written."""

    __slots__ = (
        "degraded",
        "failures",
        "first",
        "hist",
        "lag_suspect",
        "minute",
        "phases",
        "runs",
    )

    def __init__(self, minute: int = 0) -> None:
        #: Start of the minute counted, Unix seconds.
        self.minute = minute
        self.runs = 0
        self.degraded = 0
        self.lag_suspect = 0
        self.failures: dict[str, int] | None = None
        #: [sum of seconds, runs that measured it] per KEPT_PHASES index, flat
        self.phases: array[float] | None = None
        #: phase index * len(LATENCY_BUCKETS) + bucket index -> runs
        self.hist: dict[int, int] | None = None
        #: The one result so far, not yet counted: most checks report once between two
        #: flushes, and that result is kept anyway (the check's last, for metrics and
        #: the API), so it costs nothing here; it is counted when a second one comes or
        #: the bucket is made (in the writer thread).
        self.first: ProbeResult | None = None

    def add(self, result: ProbeResult) -> None:
        """Count one result (read later: it must not change afterwards)."""
        if self.runs == 0 and self.first is None:
            self.first = result
            return
        self._count_first()
        self._count(result)

    def _count_first(self) -> None:
        if self.first is not None:
            first, self.first = self.first, None
            self._count(first)

    def _count(self, result: ProbeResult) -> None:
        self.runs += 1
        self.degraded += bool(result.degraded)
        self.lag_suspect += result.lag_suspect
        if not result.success:
            reason = result.reason.value if result.reason else "internal"
            if self.failures is None:
                self.failures = {}
            self.failures[reason] = self.failures.get(reason, 0) + 1
        for i, value in measured(result):
            if self.phases is None or self.hist is None:
                self.phases = array("d", bytes(16 * len(KEPT_PHASES)))  # zeros
                self.hist = {}
            self.phases[2 * i] += value
            self.phases[2 * i + 1] += 1
            key = i * _WIDTH + bisect.bisect_left(LATENCY_BUCKETS, value)
            self.hist[key] = self.hist.get(key, 0) + 1

    def bucket(self, *, with_hist: bool) -> Bucket:
        """A new :class:`Bucket` of these counts (histograms only ``with_hist``)."""
        self._count_first()
        bucket = Bucket(runs=self.runs, degraded=self.degraded, lag_suspect=self.lag_suspect)
        if self.failures:
            bucket.failures = dict(self.failures)
        phases = self.phases
        if phases is not None:
            for i, phase in enumerate(KEPT_PHASES):
                if runs := int(phases[2 * i + 1]):
                    bucket.phases[phase] = [phases[2 * i], runs]
        if with_hist and self.hist:
            for key in sorted(self.hist):
                at, index = divmod(key, _WIDTH)
                bucket.hist.setdefault(KEPT_PHASES[at], {})[index] = self.hist[key]
        return bucket
