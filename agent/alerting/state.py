"""The per-check alert state machine: pure, clock passed in, returns transitions.

Two alerts per check:

- ``down``: ``ok``/``pending`` -> ``firing`` after ``failure_threshold`` consecutive
  failed runs (event ``firing``); ``reminder`` every ``repeat_interval`` while firing;
  ``firing`` -> ``ok`` after ``success_threshold`` consecutive successful runs (event
  ``resolved``). A success inside a failure streak resets it; a failure inside a
  recovery streak resets that.
- ``degraded`` (only when ``degraded_threshold`` > 0): a successful run whose
  ``result.degraded`` is non-empty counts; after ``degraded_threshold`` consecutive
  such runs the event ``degraded`` is emitted; after ``success_threshold`` consecutive
  successful runs within limits the event ``resolved`` (alert ``degraded``) ends it.
  Failed runs count for neither (the ``down`` alert covers them).

"Notified" (``last_notified``) is only moved by :func:`mark_delivered`, which the
dispatcher calls after a receiver accepted an event. A run flagged ``agent_problem``
(its deadline consumed by the agent's own stalls) changes nothing.
"""

from __future__ import annotations

import dataclasses
import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from agent.alerting.policy import AlertPolicy
from agent.result import ProbeResult

if TYPE_CHECKING:
    from agent.alerting.maintenance import OpenWindow

__all__ = [
    "AlertKind",
    "AlertState",
    "EventType",
    "Status",
    "Transition",
    "api_view",
    "degraded_transition",
    "down_transition",
    "mark_delivered",
    "reminder_anchor",
    "removed",
    "steady_ok",
    "update",
]

Status = Literal["ok", "pending", "firing"]
AlertKind = Literal["down", "degraded"]
EventType = Literal["firing", "resolved", "reminder", "degraded", "flapping"]


@dataclass(frozen=True, slots=True)
class Transition:
    """Something worth telling the receivers about."""

    check: str
    alert: AlertKind
    event: EventType
    #: When it happened (the clock value passed to :func:`update`).
    at: float
    #: First failed (or degraded) run of the incident.
    started_at: float
    #: Set on ``resolved``.
    resolved_at: float | None
    consecutive_failures: int
    reason: str | None
    message: str
    #: Over-limit phases, for ``degraded``.
    degraded: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, weakref_slot=True)
class AlertState:
    """Everything the machine remembers about one check (persisted as a dict)."""

    status: Status = "ok"
    consecutive_failures: int = 0
    consecutive_successes: int = 0
    #: When ``status`` last changed.
    since: float | None = None
    #: First failed run of the current streak or incident.
    started_at: float | None = None
    #: Due time of the last ``firing``/``reminder`` queued; the next reminder is due one
    #: ``repeat_interval`` later (see :func:`reminder_anchor`).
    last_event_at: float | None = None
    #: Last time a receiver accepted an event of this check.
    last_notified: float | None = None
    reason: str | None = None
    message: str = ""
    degraded_runs: int = 0
    degraded_ok_runs: int = 0
    degraded_firing: bool = False
    degraded_since: float | None = None
    degraded_phases: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form for the store."""
        # Flat scalar fields: a comprehension, not asdict()'s deep copy (hot path).
        out = {name: getattr(self, name) for name in _STATE_FIELDS}
        out["degraded_phases"] = list(self.degraded_phases)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AlertState:
        """Inverse of :meth:`to_dict`; unknown keys (older/newer versions) are ignored."""
        names = {f.name for f in dataclasses.fields(cls)}
        kwargs = {k: v for k, v in data.items() if k in names}
        kwargs["degraded_phases"] = tuple(kwargs.get("degraded_phases", ()))
        return cls(**kwargs)

    @property
    def firing(self) -> bool:
        """True while the ``down`` alert is firing."""
        return self.status == "firing"


_STATE_FIELDS = tuple(f.name for f in dataclasses.fields(AlertState))


def _replace(state: AlertState, **changes: Any) -> AlertState:
    """``dataclasses.replace`` for :class:`AlertState` (every field is an init field).

    Runs once or twice per result; the generic version re-reads the field list each
    call and cost more than the rest of the state update.
    """
    values = {name: getattr(state, name) for name in _STATE_FIELDS}
    values.update(changes)
    return AlertState(**values)


#: The state of a check that has only ever succeeded, by its success count.
_HEALTHY: weakref.WeakValueDictionary[int, AlertState] = weakref.WeakValueDictionary()


def _one_more_success(state: AlertState) -> AlertState:
    """``state`` after a success: one object for the checks that have only ever succeeded
    as many times (they mostly run in step), not one each (~150 B)."""
    n = state.consecutive_successes
    if _HEALTHY.get(n) is not state and state != AlertState(consecutive_successes=n):
        return _replace(state, consecutive_failures=0, consecutive_successes=n + 1)
    found = _HEALTHY.get(n + 1)
    if found is None:
        found = _HEALTHY[n + 1] = AlertState(consecutive_successes=n + 1)
    return found


def update(
    state: AlertState, result: ProbeResult, *, policy: AlertPolicy, now: float
) -> tuple[AlertState, list[Transition]]:
    """Feed one result into the machine.

    Args:
        state: the check's state before this result.
        result: the run's result (its ``check`` names the check).
        policy: thresholds for this check.
        now: current wall-clock time (Unix seconds).

    Returns:
        The new state and the transitions to notify, in order; ``state`` unchanged and
        none for a run flagged ``agent_problem`` (the agent's overload is not the
        target's failure, nor its recovery).
    """
    if result.agent_problem:
        return state, []
    state, transitions = _update_down(state, result, policy=policy, now=now)
    state, degraded = _update_degraded(state, result, policy=policy, now=now)
    return state, transitions + degraded


def _update_down(
    state: AlertState, result: ProbeResult, *, policy: AlertPolicy, now: float
) -> tuple[AlertState, list[Transition]]:
    check = result.check
    reason = result.reason.value if result.reason else None
    if not result.success:
        failures = state.consecutive_failures + 1
        started = state.started_at if state.started_at is not None else now
        state = _replace(
            state,
            consecutive_failures=failures,
            consecutive_successes=0,
            started_at=started,
            reason=reason,
            message=result.message,
        )
        if state.status != "firing" and failures >= policy.failure_threshold:
            state = _replace(state, status="firing", since=now, last_event_at=now)
            return state, [down_transition(state, "firing", check, now)]
        if state.status == "ok":
            state = _replace(state, status="pending", since=now)
    else:
        successes = state.consecutive_successes + 1
        state = _one_more_success(state)
        if state.status == "firing" and successes >= policy.success_threshold:
            resolved = down_transition(state, "resolved", check, now)
            state = _replace(
                state,
                status="ok",
                since=now,
                started_at=None,
                last_event_at=None,
                reason=None,
                message="",
            )
            return state, [resolved]
        if state.status == "pending":
            state = _replace(
                state, status="ok", since=now, started_at=None, reason=None, message=""
            )
    if state.status == "firing" and policy.repeat_interval > 0 and state.last_event_at is not None:
        anchor = reminder_anchor(state.last_event_at, now, repeat_interval=policy.repeat_interval)
        if anchor is not None:
            state = _replace(state, last_event_at=anchor)
            return state, [down_transition(state, "reminder", check, now)]
    return state, []


def reminder_anchor(last: float, now: float, *, repeat_interval: float) -> float | None:
    """The due time of the reminder to send at ``now``, or None when none is due.

    A reminder is due ``repeat_interval`` after the previous one was due (or after the
    ``firing``). Counting from the due time rather than from the run that noticed it
    keeps reminders on a fixed grid: each goes out at the first run at or after its
    due time (at most one check interval late, never early), and that lateness does
    not add up from one reminder to the next. After a gap of more than two periods
    (agent stopped, scheduler stalled), the missed reminders collapse into one and the
    grid restarts at ``now``, so two reminders never go out back to back.

    Args:
        last: due time of the previous reminder (or the ``firing`` time).
        now: the current run's time.
        repeat_interval: the reminder period (> 0).

    Returns:
        The due time to remember, or None when ``now`` is before the next one.
    """
    elapsed = now - last
    if elapsed < repeat_interval:
        return None
    return last + repeat_interval if elapsed <= 2 * repeat_interval else now


def _transition(
    check: str, alert: AlertKind, event: EventType, now: float, since: float | None, **fields: Any
) -> Transition:
    """One transition at ``now``; an alert without a known start started now."""
    return Transition(
        check=check,
        alert=alert,
        event=event,
        at=now,
        started_at=since if since is not None else now,
        resolved_at=now if event == "resolved" else None,
        **fields,
    )


def down_transition(state: AlertState, event: EventType, check: str, now: float) -> Transition:
    """A ``down`` alert's transition, from the state's failure run."""
    return _transition(
        check,
        "down",
        event,
        now,
        state.started_at,
        consecutive_failures=state.consecutive_failures,
        reason=state.reason,
        message=state.message,
    )


def _update_degraded(
    state: AlertState, result: ProbeResult, *, policy: AlertPolicy, now: float
) -> tuple[AlertState, list[Transition]]:
    check = result.check
    if not result.success:
        if state.degraded_runs or state.degraded_ok_runs:
            state = _replace(state, degraded_runs=0, degraded_ok_runs=0)
        return state, []
    over = tuple(result.degraded) if policy.degraded_threshold > 0 else ()
    if over:
        runs = state.degraded_runs + 1
        state = _replace(
            state,
            degraded_runs=runs,
            degraded_ok_runs=0,
            degraded_phases=over,
            degraded_since=state.degraded_since if state.degraded_since is not None else now,
        )
        if not state.degraded_firing and runs >= policy.degraded_threshold:
            state = _replace(state, degraded_firing=True)
            return state, [degraded_transition(state, "degraded", check, now)]
        return state, []
    if not state.degraded_firing and state.degraded_since is None:
        return state, []  # the common case: nothing to track while within limits
    ok_runs = state.degraded_ok_runs + 1
    state = _replace(state, degraded_runs=0, degraded_ok_runs=ok_runs)
    # Disabling degraded alerts on reload ends one that is firing at the next run.
    if state.degraded_firing and (
        ok_runs >= policy.success_threshold or policy.degraded_threshold == 0
    ):
        resolved = degraded_transition(state, "resolved", check, now)
        state = _replace(state, degraded_firing=False, degraded_since=None, degraded_phases=())
        return state, [resolved]
    if not state.degraded_firing:
        state = _replace(state, degraded_since=None, degraded_phases=())
    return state, []


def degraded_transition(state: AlertState, event: EventType, check: str, now: float) -> Transition:
    """A ``degraded`` alert's transition; its message names the phases over their limit."""
    phases = ", ".join(state.degraded_phases)
    return _transition(
        check,
        "degraded",
        event,
        now,
        state.degraded_since,
        consecutive_failures=0,
        reason=None,
        message=f"over latency limit: {phases}" if phases else "",
        degraded=state.degraded_phases,
    )


def mark_delivered(state: AlertState, *, at: float) -> AlertState:
    """Record that a receiver accepted one of this check's events at ``at``."""
    if state.last_notified is not None and state.last_notified >= at:
        return state
    return _replace(state, last_notified=at)


def removed(state: AlertState, *, check: str, now: float) -> list[Transition]:
    """Transitions that end a removed check's open alerts (its config is gone)."""
    out: list[Transition] = []
    if state.firing:
        out.append(
            dataclasses.replace(
                down_transition(state, "resolved", check, now),
                message="check removed from the configuration",
            )
        )
    if state.degraded_firing:
        out.append(degraded_transition(state, "resolved", check, now))
    return out


def steady_ok(before: AlertState, after: AlertState) -> bool:
    """True when a healthy check stayed healthy: only its success counter moved.

    Not persisting that case saves a write per healthy result (nearly all of them);
    after a restart the counter merely restarts from the last persisted value.
    """
    return (
        before.status == after.status == "ok"
        and not before.degraded_firing
        and not after.degraded_firing
        and before.degraded_since is None
        and after.degraded_since is None
        and before.last_notified == after.last_notified
    )


def api_view(
    state: AlertState,
    *,
    flapping: bool,
    flapping_since: float | None,
    window: OpenWindow | None,
    silenced_by: list[str],
    held_events: int,
) -> dict[str, Any]:
    """A check's alert state as ``/api/v1/checks`` shows it (times: Unix seconds or null).

    Args:
        state: the check's state.
        flapping: whether flap control holds its notifications back, and since when.
        flapping_since: see ``flapping``.
        window: the maintenance window it is in, if any.
        silenced_by: ids of the active silences muting its ``down`` alert.
        held_events: notifications held back for it.
    """
    return {
        "status": state.status,
        "firing": state.firing,
        "consecutive_failures": state.consecutive_failures,
        "consecutive_successes": state.consecutive_successes,
        "since": state.since,
        "started_at": state.started_at,
        "last_notified": state.last_notified,
        "degraded": state.degraded_firing,
        "flapping": flapping,
        "flapping_since": flapping_since,
        "maintenance": (
            None
            if window is None
            else {"name": window.name, "started_at": window.started_at, "ends_at": window.ends_at}
        ),
        "silenced_by": silenced_by,
        "held_events": held_events,
    }
