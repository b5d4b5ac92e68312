"""The checks' results not yet written, per check and minute: the rollups' pending state.

:class:`~agent.storage.rollups.Rollups` holds it between two flushes (up to
:data:`~agent.storage.rollups.FLUSH_INTERVAL`), for every check at once, so it is kept
small (:class:`Pending`): a check's one result of a minute is held as it is (it is kept
anyway, as the check's last, for metrics and the API); from its second, a
:class:`Tally`: one slotted object, the phase sums and counts in one ``array`` (no
float object per value), the histogram counts in one dictionary created on the first
measured phase. The minute, hour and day buckets are built in the writer thread (the
hour's with histograms), one at a time. Raises nothing.
"""

from __future__ import annotations

import bisect
from array import array
from collections.abc import Iterator

from agent.result import ProbeResult
from agent.storage.rollup_bucket import KEPT_PHASES, LATENCY_BUCKETS, Bucket, measured

__all__ = ["Pending", "Tally"]

_WIDTH = len(LATENCY_BUCKETS)
_MINUTE = 60


class Tally:
    """What one check's runs added up to in one minute, until they are written."""

    __slots__ = ("degraded", "failures", "hist", "lag_suspect", "minute", "phases", "runs")

    @classmethod
    def of(cls, result: ProbeResult) -> Tally:
        """A tally of ``result`` alone."""
        tally = cls(_minute_of(result))
        tally.add(result)
        return tally

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

    def add(self, result: ProbeResult) -> None:
        """Count one result."""
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


def _minute_of(result: ProbeResult) -> int:
    return int(result.started_at // _MINUTE * _MINUTE)


class Pending:
    """Results not yet written: each check's, per minute, in the order they came.

    A check's first minute is under its name, any other under (name, minute): one
    dictionary entry per active check, no key object of its own.
    """

    __slots__ = ("_held", "_minute")

    def __init__(self) -> None:
        self._held: dict[str | tuple[str, int], ProbeResult | Tally] = {}
        self._minute = 0  # the last minute seen: one int object for its tallies

    def __bool__(self) -> bool:
        return bool(self._held)

    def add(self, result: ProbeResult) -> None:
        """Count ``result`` in its check's minute (read later: it must not change)."""
        minute = _minute_of(result)
        if minute == self._minute:
            minute = self._minute
        else:
            self._minute = minute
        held = self._held
        key: str | tuple[str, int] = result.check
        found = held.get(key)
        if found is not None and _minute(found) != minute:
            key = (result.check, minute)
            found = held.get(key)
        if found is None:
            held[key] = result
            return
        if not isinstance(found, Tally):
            found = held[key] = Tally.of(found)
            found.minute = minute
        found.add(result)

    def tallies(self) -> Iterator[tuple[str, Tally]]:
        """(check, tally) of each check and minute, in the order they came."""
        for key, found in self._held.items():
            check = key if isinstance(key, str) else key[0]
            yield check, found if isinstance(found, Tally) else Tally.of(found)

    def keep(self, checks: set[str]) -> None:
        """Drop what is pending for checks not in ``checks``."""
        self._held = {
            k: v for k, v in self._held.items() if (k if isinstance(k, str) else k[0]) in checks
        }


def _minute(found: ProbeResult | Tally) -> int:
    return found.minute if isinstance(found, Tally) else _minute_of(found)
