"""Is a check in a maintenance window at time t? Pure: the time is passed in.

A cron window opens at each time its crontab line fires (APScheduler's
``CronTrigger``, the parser the scheduler uses, in the window's time zone, so a
``0 2 * * *`` window in ``Europe/Paris`` follows daylight saving time) and stays open
``duration`` seconds. A start/end window is open from ``start`` (inclusive) to ``end``
(exclusive). Overlapping openings merge: the window closes at the latest end.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from agent.config.maintenance import MaintenanceWindow, cron_trigger, localize
from agent.config.matchers import Matcher, matches_all, parse_matcher

__all__ = ["MaintenanceSchedule", "OpenWindow"]

#: Cron openings examined per lookup at most (a duration far longer than the period).
_MAX_OPENINGS = 1000


@dataclass(frozen=True, slots=True)
class OpenWindow:
    """A window open at the time asked about."""

    name: str
    #: Unix seconds: when the window (its latest opening, for a cron window) opened.
    started_at: float
    ends_at: float


@dataclass(slots=True, kw_only=True)
class _Window:
    """One compiled window; remembers its last answer until the next boundary.

    A scrape asks about every covered check: without the memo each question would walk
    the cron trigger again (tens of microseconds, times thousands of checks).
    """

    name: str
    checks: frozenset[str]
    matchers: tuple[Matcher, ...]
    trigger: Any
    duration: float
    start: float
    end: float
    #: (valid from, valid until, answer) of the last lookup.
    _memo: tuple[float, float, OpenWindow | None] = field(
        default=(1.0, 0.0, None), init=False, repr=False, compare=False
    )
    #: (checks asked about, those covered) of the last :meth:`covering`.
    _covered: tuple[Mapping[str, Mapping[str, str]] | None, frozenset[str]] = field(
        default=(None, frozenset()), init=False, repr=False, compare=False
    )

    def covers(self, check: str, labels: Mapping[str, str]) -> bool:
        if check in self.checks:
            return True
        return bool(self.matchers) and matches_all(self.matchers, {**labels, "check": check})

    def covering(self, checks: Mapping[str, Mapping[str, str]]) -> frozenset[str]:
        """The checks of ``checks`` (name to labels) this window covers, worked out once
        per mapping: the caller passes the same object until its checks change."""
        asked, covered = self._covered
        if asked is not checks:
            covered = frozenset(
                name for name, labels in checks.items() if self.covers(name, labels)
            )
            self._covered = (checks, covered)
        return covered

    def open_at(self, now: float) -> OpenWindow | None:
        since, until, answer = self._memo
        if since <= now < until:
            return answer
        answer, until = self._lookup(now)
        self._memo = (now, until, answer)
        return answer

    def _lookup(self, now: float) -> tuple[OpenWindow | None, float]:
        """The answer at ``now`` and until when it holds."""
        if self.trigger is None:
            if self.start <= now < self.end:
                return OpenWindow(self.name, self.start, self.end), self.end
            return None, self.start if now < self.start else math.inf
        tz = self.trigger.timezone
        # The first opening after now - duration: if it is not after now, it is open.
        cursor = dt.datetime.fromtimestamp(now - self.duration, tz) + dt.timedelta(microseconds=1)
        fire = self.trigger.get_next_fire_time(None, cursor)
        if fire is None:
            return None, math.inf
        if fire.timestamp() > now:
            return None, fire.timestamp()
        end = fire.timestamp() + self.duration
        # Later openings before now extend the window (duration longer than the period).
        for _ in range(_MAX_OPENINGS):
            nxt = self.trigger.get_next_fire_time(fire, fire + dt.timedelta(microseconds=1))
            if nxt is None or nxt.timestamp() > now:
                break
            fire, end = nxt, nxt.timestamp() + self.duration
        # An opening before ``end`` would move it: the answer holds until the earlier.
        nxt = self.trigger.get_next_fire_time(fire, fire + dt.timedelta(microseconds=1))
        until = end if nxt is None else min(end, nxt.timestamp())
        return OpenWindow(self.name, fire.timestamp(), end), until


class MaintenanceSchedule:
    """The configured windows, ready to be asked about.

    Args:
        windows: the config's ``maintenance:`` list (validated).
    """

    def __init__(self, windows: Iterable[MaintenanceWindow] = ()) -> None:
        self._windows = [_compile(w) for w in windows]

    def __bool__(self) -> bool:
        return bool(self._windows)

    def open_for(self, check: str, labels: Mapping[str, str], *, at: float) -> OpenWindow | None:
        """The window covering ``check`` open at ``at`` (the one ending last), if any.

        Args:
            check: the check's name.
            labels: the check's labels.
            at: Unix seconds.
        """
        found: OpenWindow | None = None
        for window in self._windows:
            if not window.covers(check, labels):
                continue
            open_window = window.open_at(at)
            if open_window is not None and (found is None or open_window.ends_at > found.ends_at):
                found = open_window
        return found

    def in_force(self, checks: Mapping[str, Mapping[str, str]], *, at: float) -> frozenset[str]:
        """The checks of ``checks`` (name to labels) in a window open at ``at``.

        Nothing per check unless a window is open, and then only once per window and
        ``checks`` mapping (see :meth:`_Window.covering`): a scrape asks this every time.
        """
        found: frozenset[str] = frozenset()
        for window in self._windows:
            if window.open_at(at) is not None:
                found |= window.covering(checks)
        return found


def _compile(window: MaintenanceWindow) -> _Window:
    trigger = cron_trigger(window.cron, window.timezone) if window.cron else None
    start = end = 0.0
    if window.start is not None and window.end is not None:
        start = localize(window.start, window.timezone).timestamp()
        end = localize(window.end, window.timezone).timestamp()
    return _Window(
        name=window.name,
        checks=frozenset(window.checks),
        matchers=tuple(parse_matcher(m) for m in window.matchers),
        trigger=trigger,
        duration=window.duration or 0.0,
        start=start,
        end=end,
    )
