"""Metric families of watch sessions, read from each session's stats at scrape time.

Kept apart from :mod:`agent.metrics.registry` so the per-check collector stays small; every
family here is one row of :data:`_FAMILIES`, so adding a series is one line.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from typing import Protocol

from agent.config.models import CheckConfig
from agent.metrics.text import fmt
from agent.result import Reason

__all__ = ["SeriesLabels", "WatchFamily", "WatchStatsView", "watch_families"]


class SeriesLabels(Protocol):
    """What a watch family reads from a check's series: its rendered label set.

    A protocol rather than the registry's ``CheckSeries`` so this module does not
    import the registry that imports it.
    """

    @property
    def base(self) -> str: ...


class WatchStatsView(Protocol):
    """What metrics read from a watch session's stats (agent.watch.WatchStats)."""

    @property
    def connected(self) -> bool: ...

    @property
    def reconnects(self) -> Mapping[str, int]: ...

    @property
    def last_message_ts(self) -> float | None: ...

    @property
    def messages_total(self) -> int: ...

    @property
    def session_started(self) -> float | None: ...

    @property
    def last_rtt(self) -> float | None: ...

    @property
    def stale(self) -> bool: ...

    @property
    def gaps_total(self) -> int: ...


_ZERO_RECONNECTS: dict[str, int] = dict.fromkeys((r.value for r in Reason), 0)

#: name, help, type, and the lines of one check.
WatchFamily = tuple[str, str, str, Callable[[CheckConfig, SeriesLabels], Iterable[str]]]
_Value = Callable[[WatchStatsView, float], float | None]

#: name, help, type, value (None: no sample). ``now`` is the scrape's wall time.
_FAMILIES: tuple[tuple[str, str, str, _Value], ...] = (
    (
        "wsprobe_watch_connected",
        "Whether the watch session is connected (and its init steps done).",
        "gauge",
        lambda s, _: float(s.connected),
    ),
    (
        "wsprobe_watch_last_message_timestamp_seconds",
        "When the watch session last received a message, Unix seconds.",
        "gauge",
        lambda s, _: s.last_message_ts,
    ),
    (
        "wsprobe_watch_messages_received_total",
        "Messages the watch session received over its life.",
        "counter",
        lambda s, _: float(s.messages_total),
    ),
    (
        "wsprobe_watch_session_duration_seconds",
        "How long the current connection of the watch session has been up, in seconds.",
        "gauge",
        lambda s, now: None if s.session_started is None else max(0.0, now - s.session_started),
    ),
    (
        "wsprobe_watch_ping_rtt_seconds",
        "Round trip of the watch session's last protocol ping, in seconds.",
        "gauge",
        lambda s, _: s.last_rtt,
    ),
    (
        "wsprobe_watch_stale",
        "Whether no matching message arrived within stale_after.",
        "gauge",
        lambda s, _: float(s.stale),
    ),
    (
        "wsprobe_watch_gaps_total",
        "Forward jumps of the watch session's sequence field (lost messages).",
        "counter",
        lambda s, _: float(s.gaps_total),
    ),
)


def watch_families(get: Callable[[str], WatchStatsView | None]) -> list[WatchFamily]:
    """Families for every watch check, reading ``get(check_name)`` at scrape time."""

    def sampler(name: str, value: _Value) -> Callable[[CheckConfig, SeriesLabels], Iterable[str]]:
        def lines(check: CheckConfig, s: SeriesLabels) -> Iterable[str]:
            stats = get(check.name) if check.kind == "watch" else None
            v = None if stats is None else value(stats, time.time())
            return () if v is None else (f"{name}{{{s.base}}} {fmt(v)}\n",)

        return lines

    def reconnects(check: CheckConfig, s: SeriesLabels) -> Iterable[str]:
        stats = get(check.name) if check.kind == "watch" else None
        if stats is None:
            return ()
        # Every reason at 0 from the start, so increase() sees a session's first drop.
        counts = {**_ZERO_RECONNECTS, **stats.reconnects}
        return [
            f'wsprobe_watch_reconnects_total{{{s.base},reason="{reason}"}} {n}\n'
            for reason, n in sorted(counts.items())
        ]

    families: list[WatchFamily] = [
        (name, help_, type_, sampler(name, value)) for name, help_, type_, value in _FAMILIES
    ]
    families.append(
        (
            "wsprobe_watch_reconnects_total",
            "Reconnections of the watch session, by the reason it dropped.",
            "counter",
            reconnects,
        )
    )
    return families
