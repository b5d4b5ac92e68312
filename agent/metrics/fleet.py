"""The agent-wide histograms by check kind: phase durations and protocol ping RTTs.

They carry ``kind`` but no ``check`` label, so fleet quantiles are one small family
whatever the number of checks; the per-check histograms (opt-in,
``metrics.histograms``) live in each check's series in :mod:`agent.metrics.registry`.
"""

from __future__ import annotations

from collections.abc import Iterator

from agent.metrics.text import PHASE_BUCKETS, Histogram, header, label_str
from agent.result import ProbeResult

__all__ = ["FleetHistograms", "observe_phases"]


class FleetHistograms:
    """Phase durations and ping round trips of every run, by the check's kind."""

    def __init__(self) -> None:
        self.phases: dict[str, dict[str, Histogram]] = {}
        self.ping: dict[str, Histogram] = {}

    def observe(self, kind: str, result: ProbeResult) -> None:
        """Count one result's phases and pings under ``kind``."""
        if result.pings:
            ping = self.ping.get(kind)
            if ping is None:
                ping = self.ping[kind] = Histogram()
            for rtt in result.pings:
                ping.observe(rtt)
        phases = self.phases.get(kind)
        if phases is None:
            phases = self.phases[kind] = {}
        observe_phases(phases, result)

    def lines(self, loc: str) -> Iterator[str]:
        """The two families in text format (none before a first result).

        Args:
            loc: the rendered ``location`` label.
        """
        if self.phases:
            name = "wsprobe_phase_duration_seconds"
            yield header(
                name, "Duration of each probe phase over all checks of a kind.", "histogram"
            )
            for kind, phases in sorted(self.phases.items()):
                for phase, hist in phases.items():
                    yield hist.text(name, loc, label_str({"kind": kind, "phase": phase}))
        if self.ping:
            name = "wsprobe_ping_rtt_seconds"
            yield header(name, "Protocol ping round trips over all checks of a kind.", "histogram")
            for kind, hist in sorted(self.ping.items()):
                yield hist.text(name, loc, label_str({"kind": kind}))


def observe_phases(phases: dict[str, Histogram], result: ProbeResult) -> None:
    """Add each of ``result``'s phase durations to its histogram in ``phases``."""
    # get() before creating: setdefault would build (and drop) a Histogram per sample.
    for phase, seconds in result.phases.items():
        hist = phases.get(phase)
        if hist is None:
            hist = phases[phase] = Histogram(PHASE_BUCKETS)
        hist.observe(seconds)
