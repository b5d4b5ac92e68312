"""Per-check metric families whose samples change only with the check's results.

Each family is one row of :data:`CACHED`: name, help, type, and a function that writes
one check's lines from its :class:`CheckSeries`. :mod:`agent.metrics.registry` keeps the
series and caches each check's rendered text (:func:`render_block`) until its next
result, so a scrape of unchanged checks only joins strings.

Raises nothing of its own.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from agent.config.models import CheckConfig
from agent.metrics.text import (
    BLACKBOX,
    RESULTS,
    Histogram,
    blackbox_lines,
    label_str,
)
from agent.result import ProbeResult

__all__ = [
    "CACHED",
    "SKIP_REASONS",
    "CheckSeries",
    "Family",
    "LiveFamily",
    "per_range",
    "render_block",
]

#: Why a scheduled run did not happen: still running (``max_instances``), due too long
#: ago (``missed``), or shed because the agent could not start it in time
#: (``overload``). Exported at 0 from the start, so ``increase()`` sees the first.
SKIP_REASONS = ("max_instances", "missed", "overload")


@dataclass(slots=True)
class CheckSeries:
    """Everything exported for one configured check."""

    labels: dict[str, str]
    #: ``labels`` rendered once for the text format.
    base: str = ""
    last: ProbeResult | None = None
    last_duration: float = 0.0
    results: Counter[str] = field(default_factory=lambda: Counter(dict.fromkeys(RESULTS, 0)))
    failures: Counter[str] = field(default_factory=Counter)
    skipped: Counter[str] = field(default_factory=lambda: Counter(dict.fromkeys(SKIP_REASONS, 0)))
    lag_suspect: int = 0
    ping_rtt: Histogram = field(default_factory=Histogram)
    phases: dict[str, Histogram] = field(default_factory=dict)
    relay: dict[str, Histogram] = field(default_factory=dict)
    #: This check's text in each family of :data:`CACHED`, or None when something
    #: changed since it was rendered. Every update of the fields above must reset it.
    block: tuple[str, ...] | None = None
    #: Results that may still render ``block`` at once (``Metrics.observe``) before
    #: the next scrape; each scrape sets it to ``EAGER_RENDERS`` (agent.metrics.registry).
    eager: int = 0


#: A per-check metric family: name, help, type, and the lines of one check.
Family = tuple[str, str, str, Callable[[CheckConfig, CheckSeries], Iterable[str]]]
#: A family read at scrape time: name, help, type, and the text of a range of checks
#: (a scrape writes it a range at a time, not a check at a time).
LiveFamily = tuple[str, str, str, Callable[[list[tuple[CheckConfig, CheckSeries]]], str]]


def per_range(family: Family) -> LiveFamily:
    """``family`` written a range of checks at a time, from its lines of each."""
    name, doc, typ, lines_of = family

    def text(checks: list[tuple[CheckConfig, CheckSeries]]) -> str:
        return "".join(["".join(lines_of(c, s)) for c, s in checks])

    return name, doc, typ, text


def _results(_: CheckConfig, s: CheckSeries) -> Iterable[str]:
    return [
        f'wsprobe_probes_total{{{s.base},result="{result}"}} {n}\n'
        for result, n in sorted(s.results.items())
    ]


def _failures(_: CheckConfig, s: CheckSeries) -> Iterable[str]:
    return [
        f'wsprobe_probe_failures_total{{{s.base},reason="{reason}"}} {n}\n'
        for reason, n in sorted(s.failures.items())
    ]


def _skipped(_: CheckConfig, s: CheckSeries) -> Iterable[str]:
    return [
        f'wsprobe_probes_skipped_total{{{s.base},reason="{reason}"}} {n}\n'
        for reason, n in sorted(s.skipped.items())
    ]


def _lag_suspect(_: CheckConfig, s: CheckSeries) -> Iterable[str]:
    return (f"wsprobe_probes_lag_suspect_total{{{s.base}}} {s.lag_suspect}\n",)


def _degraded(_: CheckConfig, s: CheckSeries) -> Iterable[str]:
    if s.last is None:
        return ()
    return (f"wsprobe_probe_degraded{{{s.base}}} {int(bool(s.last.degraded))}\n",)


def _ping_rtt(_: CheckConfig, s: CheckSeries) -> Iterable[str]:
    if not s.ping_rtt.count:  # like phases: no empty histogram before the first pong
        return ()
    return (s.ping_rtt.text("wsprobe_check_ping_rtt_seconds", s.base),)


def _phases(_: CheckConfig, s: CheckSeries) -> Iterable[str]:
    for phase, hist in s.phases.items():
        yield hist.text("wsprobe_check_phase_duration_seconds", s.base, f'phase="{phase}"')


def _relay(_: CheckConfig, s: CheckSeries) -> Iterable[str]:
    for receiver, hist in s.relay.items():
        extra = label_str({"receiver": receiver})
        yield hist.text("wsprobe_relay_delivery_seconds", s.base, extra)


def _blackbox(name: str) -> Callable[[CheckConfig, CheckSeries], Iterable[str]]:
    def lines(_: CheckConfig, s: CheckSeries) -> Iterable[str]:
        if s.last is None:
            return ()
        return blackbox_lines(name, s.last, s.last_duration, s.base)

    return lines


#: Per-check families whose samples change only with a check's results (or skips),
#: in output order: each check's text in them is cached in ``CheckSeries.block``.
CACHED: tuple[Family, ...] = (
    *((name, doc, "gauge", _blackbox(name)) for name, doc in BLACKBOX.items()),
    ("wsprobe_probes_total", "Probe runs by result.", "counter", _results),
    ("wsprobe_probe_failures_total", "Failed runs by reason.", "counter", _failures),
    (
        "wsprobe_probes_skipped_total",
        "Scheduled runs that did not happen, by reason.",
        "counter",
        _skipped,
    ),
    (
        "wsprobe_probes_lag_suspect_total",
        "Runs whose timing overlapped an event-loop lag spike of the agent.",
        "counter",
        _lag_suspect,
    ),
    (
        "wsprobe_probe_degraded",
        "Whether the last run exceeded one of the check's limits.",
        "gauge",
        _degraded,
    ),
    (
        "wsprobe_check_ping_rtt_seconds",
        "Round-trip time of the check's protocol pings (metrics.histograms), in seconds.",
        "histogram",
        _ping_rtt,
    ),
    (
        "wsprobe_check_phase_duration_seconds",
        "Duration of each phase of the check's runs (metrics.histograms), in seconds.",
        "histogram",
        _phases,
    ),
    (
        "wsprobe_relay_delivery_seconds",
        "Relay delivery latency per receiving connection, in seconds.",
        "histogram",
        _relay,
    ),
)


def render_block(check: CheckConfig, series: CheckSeries) -> tuple[str, ...]:
    """The check's text in each family of :data:`CACHED`, in order."""
    return tuple("".join(lines_of(check, series)) for _, _, _, lines_of in CACHED)
