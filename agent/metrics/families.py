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

from collections.abc import Callable, Iterable

from agent.config.models import CheckConfig
from agent.metrics.series import SKIP_REASONS, CheckSeries, RangeCache, ResultState
from agent.metrics.text import BLACKBOX, Pieces, blackbox_lines, label_str

__all__ = [
    "CACHED",
    "PER_CHECK",
    "STATE_FAMILIES",
    "Family",
    "LiveFamily",
    "StateFamily",
    "StateRanges",
    "per_range",
    "render_block",
]

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


class StateRanges:
    """The text of :data:`STATE_FAMILIES` per range of checks, kept across scrapes
    (a :class:`~agent.metrics.series.RangeCache`: the owner calls :meth:`clear`
    whenever its checks change)."""

    __slots__ = ("_kept",)

    def __init__(self) -> None:
        #: Per range: its checks' states and its text in each family when last written.
        self._kept: RangeCache[tuple[list[ResultState], tuple[str, ...]]] = RangeCache()

    def clear(self) -> None:
        """Forget every range (the checks changed)."""
        self._kept.clear()

    def texts(
        self,
        entries: list[CheckSeries],
        states: list[ResultState],
        start: int,
        size: int,
        out: Pieces,
    ) -> tuple[str, ...]:
        """The text of the checks ``start:start + size`` in each of STATE_FAMILIES.

        Kept while the range's states are the same objects or equal (states are
        shared tuples, so nearly always one identity test per check, in C); else
        written again, every family of the range at once, which counts as costly work
        in ``out``.
        """
        stop = start + size
        now = states[start:stop]
        first = entries[start]
        kept = self._kept.get(first, len(now))
        if kept is not None and kept[0] == now:
            return kept[1]
        bases = [s.base for s in entries[start:stop]]
        texts = tuple(text_of(bases, now) for _, _, _, text_of in STATE_FAMILIES)
        self._kept.put(first, len(now), (now, texts))
        out.add("", costly=True)
        return texts


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
