"""Per-check metric families whose samples change only with the check's results.

Each family is one row of :data:`CACHED`: name, help, type, and a function that writes
one check's lines from its :class:`CheckSeries`. :mod:`agent.metrics.registry` keeps the
series and caches each check's rendered text (:func:`render_block`) until its next
result, so a scrape of unchanged checks only joins strings. The families of
:data:`STATE_FAMILIES` are written a range of checks at a time from each check's
:attr:`CheckSeries.state` instead; :data:`PER_CHECK` puts both in output order.

Raises nothing of its own.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from types import MappingProxyType

from agent.config.models import CheckConfig
from agent.metrics.fleet import observe_phases
from agent.metrics.text import BLACKBOX, Histogram, blackbox_lines, label_str
from agent.result import ProbeResult

__all__ = [
    "CACHED",
    "PER_CHECK",
    "SKIP_REASONS",
    "STATE_FAMILIES",
    "CheckSeries",
    "Family",
    "LiveFamily",
    "ResultState",
    "StateFamily",
    "per_range",
    "render_block",
    "result_state",
]

#: Why a scheduled run did not happen: still running (``max_instances``), due too long
#: ago (``missed``), or shed because the agent could not start it in time
#: (``overload``). Exported at 0 from the start, so ``increase()`` sees the first.
SKIP_REASONS = ("max_instances", "missed", "overload")


#: The skip counts of a check that was never skipped, shared by all of them.
_NO_SKIPS: tuple[int, ...] = (0,) * len(SKIP_REASONS)

#: What :data:`STATE_FAMILIES` show of a check's last result: success, upgrade status
#: code (0 when none) and degraded, as ints; None before its first result.
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
        #: ``last`` as :data:`STATE_FAMILIES` show it; set with ``last``.
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


#: A per-check metric family: name, help, type, and the lines of one check.
Family = tuple[str, str, str, Callable[[CheckConfig, CheckSeries], Iterable[str]]]
#: A family read at scrape time: name, help, type, and the text of a range of checks
#: (a scrape writes it a range at a time, not a check at a time).
LiveFamily = tuple[str, str, str, Callable[[list[CheckSeries]], str]]


def per_range(family: Family) -> LiveFamily:
    """``family`` written a range of checks at a time, from its lines of each."""
    name, doc, typ, lines_of = family

    def text(checks: list[CheckSeries]) -> str:
        return "".join(["".join(lines_of(s.check, s)) for s in checks])

    return name, doc, typ, text


def _results(_: CheckConfig, s: CheckSeries) -> Iterable[str]:
    return (
        f'wsprobe_probes_total{{{s.base},result="failure"}} {s.failed}\n'
        f'wsprobe_probes_total{{{s.base},result="success"}} {s.succeeded}\n',
    )


def _failures(_: CheckConfig, s: CheckSeries) -> Iterable[str]:
    return [
        f'wsprobe_probe_failures_total{{{s.base},reason="{reason}"}} {n}\n'
        for reason, n in sorted(s.failures.items())
    ]


#: SKIP_REASONS with their positions, in the exposition's (sorted) order.
_SKIP_ORDER = sorted((reason, i) for i, reason in enumerate(SKIP_REASONS))


def _skipped(_: CheckConfig, s: CheckSeries) -> Iterable[str]:
    skips = s.skip_counts
    return [
        f'wsprobe_probes_skipped_total{{{s.base},reason="{reason}"}} {skips[i]}\n'
        for reason, i in _SKIP_ORDER
    ]


def _lag_suspect(_: CheckConfig, s: CheckSeries) -> Iterable[str]:
    return (f"wsprobe_probes_lag_suspect_total{{{s.base}}} {s.lag_suspect}\n",)


def _ping_rtt(_: CheckConfig, s: CheckSeries) -> Iterable[str]:
    if s.ping_rtt is None:  # like phases: no empty histogram before the first pong
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


#: A per-check family written from each check's :attr:`CheckSeries.state`: name, help,
#: type, and the text of a range of checks from their rendered labels and states.
StateFamily = tuple[str, str, str, Callable[[list[str], list[ResultState]], str]]


def _success(bases: list[str], states: list[ResultState]) -> str:
    return "".join(
        [f"probe_success{{{b}}} {s[0]}\n" for b, s in zip(bases, states, strict=True) if s]
    )


def _status(bases: list[str], states: list[ResultState]) -> str:
    return "".join(
        [
            f"probe_websocket_status_code{{{b}}} {s[1]}\n"
            for b, s in zip(bases, states, strict=True)
            if s
        ]
    )


def _upgraded(bases: list[str], states: list[ResultState]) -> str:
    return "".join(
        [
            f"probe_websocket_connection_upgraded{{{b}}} {int(s[1] == 101)}\n"
            for b, s in zip(bases, states, strict=True)
            if s
        ]
    )


def _degraded(bases: list[str], states: list[ResultState]) -> str:
    return "".join(
        [f"wsprobe_probe_degraded{{{b}}} {s[2]}\n" for b, s in zip(bases, states, strict=True) if s]
    )


#: Per-check families whose samples are a few small numbers of the last result that
#: seldom change. A scrape writes them a range of checks at a time and keeps each
#: range's text while its checks' states stay the same (:mod:`agent.metrics.registry`),
#: so a check holds no text of its own in them (~60 bytes per family and check).
STATE_FAMILIES: tuple[StateFamily, ...] = (
    ("probe_success", BLACKBOX["probe_success"], "gauge", _success),
    ("probe_websocket_status_code", BLACKBOX["probe_websocket_status_code"], "gauge", _status),
    (
        "probe_websocket_connection_upgraded",
        BLACKBOX["probe_websocket_connection_upgraded"],
        "gauge",
        _upgraded,
    ),
    (
        "wsprobe_probe_degraded",
        "Whether the last run exceeded one of the check's limits.",
        "gauge",
        _degraded,
    ),
)
_STATE_NAMES = frozenset(name for name, _, _, _ in STATE_FAMILIES)

#: Per-check families whose samples change only with a check's results (or skips):
#: each check's text in them is cached in ``CheckSeries.block``, in this order.
CACHED: tuple[Family, ...] = (
    *(
        (name, doc, "gauge", _blackbox(name))
        for name, doc in BLACKBOX.items()
        if name not in _STATE_NAMES
    ),
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


#: Output order of the families of :data:`CACHED` and :data:`STATE_FAMILIES`.
_ORDER = (
    *BLACKBOX,
    "wsprobe_probes_total",
    "wsprobe_probe_failures_total",
    "wsprobe_probes_skipped_total",
    "wsprobe_probes_lag_suspect_total",
    "wsprobe_probe_degraded",
    "wsprobe_check_ping_rtt_seconds",
    "wsprobe_check_phase_duration_seconds",
    "wsprobe_relay_delivery_seconds",
)


def _per_check() -> tuple[tuple[str, str, str, int, bool], ...]:
    where: dict[str, tuple[str, str, int, bool]] = {}
    for i, (name, doc, typ, _) in enumerate(CACHED):
        where[name] = (doc, typ, i, False)
    for i, (name, doc, typ, _) in enumerate(STATE_FAMILIES):
        where[name] = (doc, typ, i, True)
    if set(where) != set(_ORDER):
        raise RuntimeError("_ORDER must name every per-check family once")
    return tuple((name, *where[name]) for name in _ORDER)


#: Every per-check family in output order: name, help, type, its index in
#: :data:`STATE_FAMILIES` when the last is True, else in :data:`CACHED`.
PER_CHECK: tuple[tuple[str, str, str, int, bool], ...] = _per_check()


def render_block(check: CheckConfig, series: CheckSeries) -> tuple[str, ...]:
    """The check's text in each family of :data:`CACHED`, in order."""
    return tuple("".join(lines_of(check, series)) for _, _, _, lines_of in CACHED)
