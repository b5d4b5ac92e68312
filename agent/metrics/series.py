"""What the agent keeps of one configured check's results for its metrics.

:class:`CheckSeries` holds a check's counters, last result and histograms;
:mod:`agent.metrics.families` writes them as text and :mod:`agent.metrics.registry`
keeps one per check for the agent's life.

Raises nothing of its own but :meth:`CheckSeries.skip`'s ``ValueError``.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Generic, TypeVar

from agent.config.models import CheckConfig
from agent.metrics.fleet import observe_phases
from agent.metrics.text import Histogram
from agent.result import ProbeResult

__all__ = ["SKIP_REASONS", "CheckSeries", "RangeCache", "ResultState", "result_state"]

#: Why a scheduled run did not happen: still running (``max_instances``), due too long
#: ago (``missed``), or shed because the agent could not start it in time
#: (``overload``). Exported at 0 from the start, so ``increase()`` sees the first.
SKIP_REASONS = ("max_instances", "missed", "overload")


#: The skip counts of a check that was never skipped, shared by all of them.
_NO_SKIPS: tuple[int, ...] = (0,) * len(SKIP_REASONS)

#: What :data:`~agent.metrics.families.STATE_FAMILIES` show of a check's last result:
#: success, upgrade status code (0 when none) and degraded, as ints; None before its
#: first result.
ResultState = tuple[int, int, int] | None
#: Every result state seen, so checks in the same state share one tuple: at most
#: 2 x 2 x the status codes answered, a few in practice.
_STATES: dict[tuple[int, int, int], tuple[int, int, int]] = {}


def result_state(result: ProbeResult) -> tuple[int, int, int]:
    """The :data:`ResultState` of ``result`` (one shared tuple per distinct state)."""
    state = (int(result.success), result.status_code or 0, int(bool(result.degraded)))
    return _STATES.setdefault(state, state)


class CheckSeries:
    """Everything exported for one configured check.

    One per configured check for the agent's life, so it holds only what the check has
    produced: fixed counters are plain ints (the skip counts one tuple, shared until the
    check's first skip), and the failure reasons and histograms exist once there is
    something to count in them (an empty ``Counter``, dict or ``Histogram`` is 70-250
    bytes, and most checks never fail, skip or opt into histograms).

    Args:
        check: the check's config (see :attr:`check`).
        base: the check's label set rendered for the text format (``label_str``).
        eager: see :attr:`eager`.
    """

    __slots__ = (
        "_failures",
        "_phases",
        "_relay",
        "base",
        "block",
        "check",
        "eager",
        "failed",
        "lag_suspect",
        "last",
        "last_duration",
        "ping_rtt",
        "skip_counts",
        "state",
        "succeeded",
    )

    def __init__(self, check: CheckConfig, base: str, *, eager: int = 0) -> None:
        #: The check's config: the one given last among equal ones (a reload keeps the
        #: series of an unchanged check and lets the replaced config object go).
        self.check = check
        #: The check's labels rendered once for the text format.
        self.base = base
        self.last: ProbeResult | None = None
        #: ``last`` as :data:`~agent.metrics.families.STATE_FAMILIES` show it; set with ``last``.
        self.state: ResultState = None
        self.last_duration = 0.0
        #: Runs by result (``wsprobe_probes_total``).
        self.succeeded = 0
        self.failed = 0
        self._failures: dict[str, int] | None = None
        #: Counts in :data:`SKIP_REASONS` order; a new tuple on each (rare) skip.
        self.skip_counts = _NO_SKIPS
        self.lag_suspect = 0
        #: The check's ping round trips, once it measured one with ``metrics.histograms``.
        self.ping_rtt: Histogram | None = None
        self._phases: dict[str, Histogram] | None = None
        self._relay: dict[str, Histogram] | None = None
        #: This check's text in each family of :data:`CACHED`, or None when something
        #: changed since it was rendered. Every update of the fields above must reset it.
        self.block: tuple[str, ...] | None = None
        #: Results that may still render ``block`` at once (``Metrics.observe``) before
        #: the next scrape; each scrape sets it to ``EAGER_RENDERS`` (agent.metrics.registry).
        self.eager = eager

    @property
    def results(self) -> dict[str, int]:
        """Runs by result, ``success`` and ``failure`` (a copy)."""
        return {"success": self.succeeded, "failure": self.failed}

    @property
    def failures(self) -> dict[str, int]:
        """Failed runs by reason, only the reasons seen (a copy)."""
        return dict(self._failures) if self._failures else {}

    @property
    def skipped(self) -> dict[str, int]:
        """Skipped runs by reason, every reason of :data:`SKIP_REASONS` present (a copy)."""
        return dict(zip(SKIP_REASONS, self.skip_counts, strict=True))

    @property
    def phases(self) -> Mapping[str, Histogram]:
        """Per-phase duration histograms (``metrics.histograms``), by phase."""
        return self._phases or _NO_HISTOGRAMS

    @property
    def relay(self) -> Mapping[str, Histogram]:
        """Relay delivery latency histograms, by receiving connection."""
        return self._relay or _NO_HISTOGRAMS

    def count(self, result: ProbeResult) -> None:
        """Count one result in the run counters (not the histograms)."""
        if result.success:
            self.succeeded += 1
            return
        self.failed += 1
        if result.reason is not None:
            failures = self._failures
            if failures is None:
                failures = self._failures = {}
            reason = result.reason.value
            failures[reason] = failures.get(reason, 0) + 1

    def skip(self, reason: str) -> None:
        """Count one scheduled run that did not happen.

        Raises:
            ValueError: ``reason`` is not one of :data:`SKIP_REASONS`.
        """
        if reason not in SKIP_REASONS:
            raise ValueError(f"unknown skip reason {reason!r} (known: {', '.join(SKIP_REASONS)})")
        counts = list(self.skip_counts)
        counts[SKIP_REASONS.index(reason)] += 1
        self.skip_counts = tuple(counts)

    def observe_histograms(self, result: ProbeResult) -> None:
        """Add the result's ping round trips and phase durations to the check's histograms."""
        if result.pings:
            ping = self.ping_rtt
            if ping is None:
                ping = self.ping_rtt = Histogram()
            for rtt in result.pings:
                ping.observe(rtt)
        if result.phases:
            if self._phases is None:
                self._phases = {}
            observe_phases(self._phases, result)

    def observe_relay(self, relay: Mapping[str, float]) -> None:
        """Add one result's relay delivery latencies, by receiving connection."""
        hists = self._relay
        if hists is None:
            hists = self._relay = {}
        for receiver, seconds in relay.items():
            hist = hists.get(receiver)
            if hist is None:
                hist = hists[receiver] = Histogram()
            hist.observe(seconds)


_NO_HISTOGRAMS: Mapping[str, Histogram] = MappingProxyType({})


V = TypeVar("V")


class RangeCache(Generic[V]):
    """A value per range of checks, kept across scrapes while the checks are unchanged.

    A range is known by its first series and its length. The key is the series' id;
    the entry holds the series itself, so no other series can take that id while the
    entry exists (a scrape still running over the checks before a reload may add one).
    The owner calls :meth:`clear` whenever its checks change.
    """

    __slots__ = ("_kept",)

    def __init__(self) -> None:
        self._kept: dict[tuple[int, int], tuple[CheckSeries, V]] = {}

    def get(self, first: CheckSeries, length: int) -> V | None:
        """The value kept for the range, or None."""
        kept = self._kept.get((id(first), length))
        return kept[1] if kept is not None and kept[0] is first else None

    def put(self, first: CheckSeries, length: int, value: V) -> V:
        """Keep ``value`` for the range; returns it."""
        self._kept[(id(first), length)] = (first, value)
        return value

    def clear(self) -> None:
        """Forget every range (the checks changed)."""
        self._kept.clear()
