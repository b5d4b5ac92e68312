"""What keeps an alert quiet: maintenance windows, flap control and silences.

Sits between the state machine and the outbox (:class:`agent.alerting.AlertService`
calls it for every result)::

    result ─▶ in a maintenance window? ── yes ─▶ nothing counts, nothing is sent
                 │ no
                 ▼
             state.update ─▶ flap.track ─▶ silenced? ── yes ─▶ held (counted)
                                              │ no
                                              ▼
                                        transitions to queue

- **Maintenance** freezes the check's alert state: its results do not count toward
  thresholds, so no alert fires, and an alert already firing is not resolved by the
  window. The check is still probed, measured and exported.
- **Flap control**: see :mod:`agent.alerting.flap`.
- **Silences** mute notifications, not state. A muted transition is held, not lost:
  what the receivers last heard is remembered, and when the silence ends (at the
  check's next run, or at once when it is deleted) one event brings them up to date:
  ``firing`` (or ``flapping``) for an alert that started and is still open,
  ``resolved`` for one they were told about that ended, a ``reminder`` for one
  still open all along; nothing when it started and ended inside the silence.

Pure except for :class:`SilenceSet` mutations; the clock is passed in.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from agent.alerting.flap import FlapPolicy, FlapState, track
from agent.alerting.maintenance import MaintenanceSchedule, OpenWindow
from agent.alerting.silences import SilenceSet, alert_labels
from agent.alerting.state import (
    AlertKind,
    AlertState,
    EventType,
    Transition,
    degraded_transition,
    down_transition,
)

__all__ = ["SUPPRESSION_REASONS", "Held", "Suppression"]

#: Label values of ``wsprobe_alert_notifications_suppressed_total{reason}``.
SUPPRESSION_REASONS = ("flapping", "silence")


@dataclass(slots=True)
class Held:
    """Notifications of one alert held back by a silence (a summary: bounded size)."""

    #: Whether the receivers believed the alert open when holding began.
    was_open: bool
    #: How many events were held.
    count: int = 0
    #: Whether any of them was more than a reminder (a firing, resolved, ...).
    news: bool = False


#: The flap state of a check flap control has not seen change (frozen: shared).
_STEADY = FlapState()


@dataclass(slots=True)
class _Check:
    """A check's flap state and held notifications: kept only while either is not empty
    (a steady check has no entry; see :meth:`Suppression.persisted`)."""

    flap: FlapState = _STEADY
    held: dict[str, Held] = field(default_factory=dict)

    def steady(self) -> bool:
        return not self.held and (self.flap is _STEADY or self.flap == _STEADY)


class Suppression:
    """Per-check flap state and held notifications, plus the windows and silences.

    Args:
        location: the agent's ``location`` (an alert label silences can match).
        silences: the silences in force.
    """

    def __init__(self, *, location: str, silences: SilenceSet | None = None) -> None:
        self.location = location
        self.silences = silences if silences is not None else SilenceSet()
        self.maintenance = MaintenanceSchedule()
        self.suppressed: Counter[str] = Counter(dict.fromkeys(SUPPRESSION_REASONS, 0))
        self._checks: dict[str, _Check] = {}
        #: Checks whose flap state is flapping, kept as it changes (read at every scrape).
        self._flapping: set[str] = set()
        #: (active silences, checks, location, the checks they mute) of the last
        #: :meth:`silenced_checks`.
        self._muted_memo: tuple[tuple[object, ...], object, str, frozenset[str]] = (
            (),
            None,
            "",
            frozenset(),
        )

    # -- persistence (rides in the check's alert-state row) ---------------------------

    def restore(self, check: str, data: Mapping[str, Any]) -> None:
        """Load what :meth:`persisted` wrote for ``check``."""
        entry = _Check(flap=FlapState.from_dict(data.get("flap")))
        held = data.get("held")
        if isinstance(held, dict):
            for alert, item in held.items():
                if isinstance(item, dict) and isinstance(item.get("count"), int):
                    entry.held[str(alert)] = Held(
                        bool(item.get("was_open")), item["count"], bool(item.get("news"))
                    )
        if not entry.steady():
            self._checks[check] = entry
        self._track_flapping(check, entry.flap)

    def persisted(self, check: str) -> dict[str, Any]:
        """Extra keys for ``check``'s stored alert state."""
        entry = self._checks.get(check) or _Check()
        return {
            "flap": entry.flap.to_dict(),
            "held": {
                a: {"was_open": h.was_open, "count": h.count, "news": h.news}
                for a, h in entry.held.items()
            },
        }

    def forget(self, check: str) -> None:
        """Drop a removed check."""
        self._checks.pop(check, None)
        self._flapping.discard(check)

    # -- the gate ----------------------------------------------------------------------

    def window(self, check: str, labels: Mapping[str, str], now: float) -> OpenWindow | None:
        """The maintenance window ``check`` is in at ``now``, if any."""
        return self.maintenance.open_for(check, labels, at=now) if self.maintenance else None

    def filter(
        self,
        check: str,
        labels: Mapping[str, str],
        *,
        before: AlertState,
        after: AlertState,
        transitions: list[Transition],
        flap_policy: FlapPolicy,
        now: float,
    ) -> tuple[list[Transition], bool]:
        """Pass one result's transitions through flap control and silences.

        Args:
            check: the check's name.
            labels: the check's labels.
            before: its alert state before the result.
            after: its alert state after the result.
            transitions: what the state machine returned.
            flap_policy: its flap settings.
            now: Unix seconds.

        Returns:
            The transitions to queue (held ones released first), and whether anything
            this module persists changed.
        """
        entry = self._checks.get(check) or _Check()
        holding = len(entry.held)
        out = self._release(check, labels, entry, before, now) if holding else []
        changed = len(entry.held) != holding
        was_flapping = entry.flap.flapping
        flap, passed = track(
            entry.flap, transitions, check=check, alert=after, policy=flap_policy, now=now
        )
        if flap != entry.flap:
            changed = True
        if was_flapping:  # every down transition of a flapping check is held back
            self.suppressed["flapping"] += sum(t.alert == "down" for t in transitions)
        for t in passed:
            if self._muted(check, labels, t.alert, now):
                if t.alert == "down":
                    opened = was_flapping or before.firing
                else:
                    opened = before.degraded_firing
                held = entry.held.setdefault(t.alert, Held(was_open=opened))
                held.count += 1
                held.news = held.news or t.event != "reminder"
                self.suppressed["silence"] += 1
                changed = True
            else:
                out.append(t)
        entry.flap = flap
        if entry.steady():
            self._checks.pop(check, None)
        else:
            self._checks[check] = entry
        self._track_flapping(check, flap)
        return out, changed

    def release(
        self, check: str, labels: Mapping[str, str], state: AlertState, now: float
    ) -> list[Transition]:
        """Held events of ``check`` whose silence is over, as catch-up transitions."""
        entry = self._checks.get(check)
        if entry is None or not entry.held:
            return []
        return self._release(check, labels, entry, state, now)

    def held_checks(self) -> list[str]:
        """Checks with notifications held by a silence."""
        return [name for name, entry in self._checks.items() if entry.held]

    # -- state for the API and metrics -------------------------------------------------

    def flapping(self, check: str) -> FlapState:
        """``check``'s flap state."""
        entry = self._checks.get(check)
        return entry.flap if entry is not None else _STEADY

    def silenced_by(self, check: str, labels: Mapping[str, str], now: float) -> list[str]:
        """Ids of the active silences muting ``check``'s ``down`` alert."""
        found = self.silences.muting(self._labels(check, labels, "down"), now)
        return [s.id for s in found]

    def flapping_checks(self) -> frozenset[str]:
        """The checks flapping now."""
        return frozenset(self._flapping)

    def silenced_checks(
        self, checks: Mapping[str, Mapping[str, str]], now: float
    ) -> frozenset[str]:
        """The checks of ``checks`` (name to labels) whose ``down`` alert a silence mutes.

        Nothing per check unless a silence is active, and then only when the active
        silences, the ``checks`` mapping (the same object until the checks change) or
        the location changed since the last call: a scrape asks this every time.
        """
        active = tuple(s for s in self.silences.all() if s.starts_at <= now < s.ends_at)
        if not active:
            return frozenset()
        memo_active, memo_checks, memo_location, muted = self._muted_memo
        if memo_active != active or memo_checks is not checks or memo_location != self.location:
            muted = frozenset(
                name
                for name, labels in checks.items()
                if any(s.mutes(self._labels(name, labels, "down"), now) for s in active)
            )
            self._muted_memo = (active, checks, self.location, muted)
        return muted

    def held(self, check: str) -> dict[str, Held]:
        """``check``'s held notifications by alert."""
        entry = self._checks.get(check)
        return dict(entry.held) if entry is not None else {}

    # -- internals ---------------------------------------------------------------------

    def _labels(self, check: str, labels: Mapping[str, str], alert: str) -> dict[str, str]:
        return alert_labels(check, labels, alert=alert, location=self.location)

    def _track_flapping(self, check: str, flap: FlapState) -> None:
        if flap.flapping:
            self._flapping.add(check)
        else:
            self._flapping.discard(check)

    def _muted(self, check: str, labels: Mapping[str, str], alert: str, now: float) -> bool:
        return bool(self.silences.muting(self._labels(check, labels, alert), now))

    def _release(
        self,
        check: str,
        labels: Mapping[str, str],
        entry: _Check,
        state: AlertState,
        now: float,
    ) -> list[Transition]:
        out: list[Transition] = []
        for alert in list(entry.held):
            if self._muted(check, labels, alert, now):
                continue
            held = entry.held.pop(alert)
            event = _catch_up(held, _open(alert, state, entry.flap), entry.flap.flapping, alert)
            if event is not None:
                out.append(_transition(check, alert, event, state, entry.flap, now))  # type: ignore[arg-type]
        return out


def _open(alert: str, state: AlertState, flap: FlapState) -> bool:
    if alert == "down":
        return state.firing or flap.flapping
    return state.degraded_firing


def _catch_up(held: Held, is_open: bool, flapping: bool, alert: str) -> str | None:
    """The one event that tells receivers what they missed, or None."""
    if held.was_open and not is_open:
        return "resolved"
    if not is_open:
        return None
    if not held.was_open or held.news:
        if alert == "degraded":
            return "degraded"
        return "flapping" if flapping else "firing"
    return "reminder"


def _transition(
    check: str, alert: AlertKind, event: EventType, state: AlertState, flap: FlapState, now: float
) -> Transition:
    silenced = "notified after a silence ended"
    if alert == "degraded":
        t = degraded_transition(state, event, check, now)
        message = f"{t.message} ({silenced})" if t.message else silenced
        return dataclasses.replace(t, message=message)
    if state.started_at is None and flap.since is not None:
        state = dataclasses.replace(state, started_at=flap.since)
    detail = state.message if event != "resolved" else ""
    if event == "flapping":
        detail = "flapping"
    return dataclasses.replace(
        down_transition(state, event, check, now),
        reason=state.reason if event != "resolved" else None,
        message=f"{detail} ({silenced})" if detail else silenced,
    )
