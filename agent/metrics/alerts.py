"""The series of the alerting side: alert state per check and notification outcomes.

Alert state (firing, flapping, in maintenance, silenced) is read from the alert
service at scrape time, once per scrape as a set of flagged checks per flag, so it
is never cached with a check's rendered block; the
notification counts, the suppressed notifications and the outbox depth are agent-wide
series. :mod:`agent.metrics.registry` places both in its exposition.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from collections.abc import Set as AbstractSet

from agent.metrics.families import LiveFamily
from agent.metrics.series import CheckSeries, RangeCache
from agent.metrics.text import header, label_str, labels, single_sample

__all__ = [
    "ALERT_FLAGS",
    "NOTIFICATION_OUTCOMES",
    "FlagRanges",
    "NotificationCounts",
    "alert_families",
    "alerting_lines",
]

#: The alert-state families' suffixes in exposition order (``wsprobe_alert_<flag>``).
ALERT_FLAGS = ("firing", "flapping", "maintenance", "silenced")

#: Outcomes of a delivery attempt (AlertService's ``on_notification``), at 0 from the
#: start for every configured receiver.
NOTIFICATION_OUTCOMES = ("success", "retry", "failed", "dropped")

_FLAG_HELP = {
    "firing": "Whether the check's alert is firing.",
    "flapping": "Whether the check is flapping (its firing/resolved notifications paused).",
    "maintenance": "Whether the check is in a maintenance window (its alerts frozen).",
    "silenced": "Whether an active silence mutes the check's down alert.",
}


class NotificationCounts:
    """Notification outcomes by ``(receiver, outcome)``; AlertService's ``on_notification``.

    Its own object rather than a method of :class:`~agent.metrics.registry.Metrics`: the
    alert service that counts into it is built before the metrics that read the alert
    service's state.
    """

    def __init__(self) -> None:
        self.counts: Counter[tuple[str, str]] = Counter()

    def __call__(self, receiver: str, outcome: str) -> None:
        """Count one delivery attempt's outcome."""
        self.counts[(receiver, outcome)] += 1

    def set_receivers(self, names: Iterable[str]) -> None:
        """Make the configured receivers exactly ``names``: each outcome at 0 from the
        start, counts of kept receivers unchanged, removed receivers' series gone."""
        wanted = set(names)
        counts: Counter[tuple[str, str]] = Counter()
        for name in sorted(wanted):
            for outcome in NOTIFICATION_OUTCOMES:
                counts[(name, outcome)] = 0
        for key, n in self.counts.items():
            if key[0] in wanted:
                counts[key] = n
        self.counts = counts


class FlagRanges:
    """What the alert-state families keep across scrapes, per range of checks.

    Valid while the checks are unchanged: the owner calls :meth:`clear` whenever they
    change.
    """

    __slots__ = ("names", "texts")

    def __init__(self) -> None:
        #: The range's check names, shared by the four families (a set of a range's
        #: names is ~34 bytes per check).
        self.names: RangeCache[frozenset[str]] = RangeCache()
        #: Per family and range (the id of its first series, its length): the range's
        #: names (their identity ties the entry to the range), its flagged checks and
        #: its text when last written.
        self.texts: dict[tuple[str, int, int], tuple[frozenset[str], AbstractSet[str], str]] = {}

    def clear(self) -> None:
        """Forget every range (the checks changed)."""
        self.names.clear()
        self.texts.clear()


def alert_families(
    flags: Callable[[], Mapping[str, AbstractSet[str]]] | None,
    ranges: FlagRanges,
) -> list[LiveFamily]:
    """The per-check alert-state families, read live at scrape time.

    Args:
        flags: the checks each alert-state flag applies to now, by family suffix
            (``firing``, ``flapping``, ``maintenance``, ``silenced``;
            ``AlertService.flagged``), asked once per scrape; or None.
        ranges: the ranges' names and texts kept across scrapes; the caller empties
            it whenever its checks change.

    Returns:
        One family per flag given, in :data:`ALERT_FLAGS` order.
    """
    if flags is None:
        return []
    flagged = flags()
    return [_flag_family(s, flagged[s], ranges) for s in ALERT_FLAGS if s in flagged]


def alerting_lines(
    loc: str,
    *,
    notifications: NotificationCounts,
    suppressed: Callable[[], Mapping[str, int]] | None,
    queue_depth: Callable[[], int] | None,
) -> Iterator[str]:
    """The agent-wide alerting series: deliveries, suppressed notifications, outbox depth.

    Args:
        loc: the rendered ``location`` label.
        notifications: the counts of notification outcomes.
        suppressed: notifications held back, by reason, or None.
        queue_depth: notifications waiting in the outbox, or None.

    Yields:
        Pieces of the text format; a family whose source is None is left out.
    """
    if notifications.counts:
        name = "wsprobe_notifications_total"
        yield header(name, "Notification deliveries by receiver and outcome.", "counter")
        for (receiver, outcome), n in sorted(notifications.counts.items()):
            pairs = label_str({"receiver": receiver, "outcome": outcome})
            yield f"{name}{labels(loc, pairs)} {n}\n"
    if suppressed is not None:
        name = "wsprobe_alert_notifications_suppressed_total"
        yield header(name, "Alert notifications held back, by reason.", "counter")
        for reason, n in sorted(suppressed().items()):
            yield f"{name}{labels(loc, label_str({'reason': reason}))} {n}\n"
    if queue_depth is not None:
        yield single_sample(
            "wsprobe_notification_queue_depth",
            "Notifications waiting in the outbox.",
            "gauge",
            loc,
            queue_depth(),
        )


def _flag_family(suffix: str, flagged: AbstractSet[str], ranges: FlagRanges) -> LiveFamily:
    """``wsprobe_alert_<suffix>``: one 0/1 line per check, 1 for the checks in ``flagged``.

    A range of checks reuses its text from ``ranges`` while the checks of it that are
    flagged stay the same: set operations on names, no Python work per
    check. Nearly every check's flag is 0 at nearly every scrape; asking the alert
    service check by check was ~20 % of a 10,000-check scrape's CPU in the daemon
    (docs/bench-log.md).
    """
    name = f"wsprobe_alert_{suffix}"
    head = name + "{"

    def text(checks: list[CheckSeries]) -> str:
        first = checks[0]
        names = ranges.names.get(first, len(checks))
        if names is None:
            names = ranges.names.put(first, len(checks), frozenset(s.check.name for s in checks))
        hits = names.intersection(flagged) if flagged else frozenset()
        key = (name, id(first), len(checks))
        cached = ranges.texts.get(key)
        if cached is not None and cached[0] is names and cached[1] == hits:
            return cached[2]
        written = "".join(
            [f"{head}{s.base}}} {1 if s.check.name in hits else 0}\n" for s in checks]
        )
        ranges.texts[key] = (names, hits, written)
        return written

    return name, _FLAG_HELP[suffix], "gauge", text
