"""Flap control: a check whose ``down`` alert keeps firing and resolving goes quiet.

Pure: no I/O, the clock is passed in. :func:`track` sits after the state machine
(:func:`agent.alerting.state.update`) and rewrites its transitions::

    stable ──(more than max_changes firing/resolved within window)──▶ flapping
       ▲                                                                 │
       └───────────── no change for a whole window: one settle event ◀───┘

- A *change* is the ``down`` alert firing or resolving: what would page someone. A
  check that fails now and then below its ``failure_threshold`` changes nothing, so
  flap control never adds a notification to a check that would not have paged.
- Entering: the change that crosses the limit is replaced by one ``flapping`` event.
- While flapping: ``firing``, ``resolved`` and ``reminder`` of the ``down`` alert are
  held back (the state machine still runs, so the state stays true).
- Settling: once no change happened for ``window``, one event says how it settled:
  ``firing`` (still failing) or ``resolved`` (up), its message saying it stopped
  flapping. ``degraded`` alerts are not affected.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from agent.alerting.state import AlertState, Transition
from agent.config import Config
from agent.config.alerting import DEFAULT_FLAP_MAX_CHANGES, DEFAULT_FLAP_WINDOW, AlertingConfig

__all__ = ["FlapPolicy", "FlapState", "check_flaps", "resolve_flap", "track"]


@dataclass(frozen=True, slots=True)
class FlapPolicy:
    """Concrete flap settings of one check; ``max_changes`` 0 turns flap control off."""

    max_changes: int = DEFAULT_FLAP_MAX_CHANGES
    window: float = DEFAULT_FLAP_WINDOW


def resolve_flap(agent: AlertingConfig, check: AlertingConfig | None) -> FlapPolicy:
    """Merge the agent's ``alerting.flap`` with a check's, field by field."""
    max_changes: int = DEFAULT_FLAP_MAX_CHANGES
    window: float = DEFAULT_FLAP_WINDOW
    for block in (agent, check):
        flap = block.flap if block is not None else None
        if flap is None:
            continue
        if flap.max_changes is not None:
            max_changes = flap.max_changes
        if flap.window is not None:
            window = flap.window
    return FlapPolicy(max_changes=max_changes, window=window)


def check_flaps(config: Config) -> dict[str, FlapPolicy]:
    """Every check's flap policy, by name; checks without an alerting block share one."""
    shared = resolve_flap(config.alerting, None)
    return {
        c.name: shared if c.alerting is None else resolve_flap(config.alerting, c.alerting)
        for c in config.checks
    }


@dataclass(frozen=True, slots=True)
class FlapState:
    """What flap control remembers about one check (persisted with its alert state)."""

    #: Times of the ``down`` alert's recent changes (within the window), oldest first.
    changes: tuple[float, ...] = ()
    flapping: bool = False
    #: When flapping began.
    since: float | None = None
    #: Last change seen while flapping; settling waits a window after it.
    last_change: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form for the store."""
        return {
            "changes": list(self.changes),
            "flapping": self.flapping,
            "since": self.since,
            "last_change": self.last_change,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> FlapState:
        """Inverse of :meth:`to_dict`; missing or malformed data gives a stable state."""
        if not isinstance(data, dict):
            return cls()
        try:
            return cls(
                changes=tuple(float(t) for t in data.get("changes", ())),
                flapping=bool(data.get("flapping", False)),
                since=_opt_float(data.get("since")),
                last_change=_opt_float(data.get("last_change")),
            )
        except (TypeError, ValueError):
            return cls()


def _opt_float(value: Any) -> float | None:
    return None if value is None else float(value)


def _is_change(t: Transition) -> bool:
    return t.alert == "down" and t.event in ("firing", "resolved")


def track(
    flap: FlapState,
    transitions: list[Transition],
    *,
    check: str,
    alert: AlertState,
    policy: FlapPolicy,
    now: float,
) -> tuple[FlapState, list[Transition]]:
    """Feed one result's transitions through flap control.

    Args:
        flap: the check's flap state before this result.
        transitions: what the state machine returned for this result.
        check: the check's name.
        alert: the check's alert state after this result.
        policy: the check's flap settings.
        now: current wall-clock time (Unix seconds).

    Returns:
        The new flap state and the transitions to notify.
    """
    changes = [t.at for t in transitions if _is_change(t)]
    if flap.flapping:
        last = changes[-1] if changes else flap.last_change
        kept = [t for t in transitions if t.alert != "down"]
        stable_since = last if last is not None else now
        if policy.max_changes <= 0 or now - stable_since >= policy.window:
            return FlapState(), [_settled(check, flap, alert, now, policy), *kept]
        return dataclasses.replace(flap, last_change=last), kept
    if policy.max_changes <= 0:
        return (flap if not flap.changes else FlapState()), transitions
    if not changes:
        return flap, transitions
    horizon = now - policy.window
    recent = tuple(t for t in flap.changes + tuple(changes) if t > horizon)
    if len(recent) <= policy.max_changes:
        return FlapState(changes=recent), transitions
    first = next(t for t in transitions if _is_change(t))
    entered = dataclasses.replace(
        first,
        event="flapping",
        resolved_at=None,
        started_at=recent[0],
        message=(
            f"flapping: {len(recent)} state changes within {_span(policy.window)};"
            f" firing/resolved paused until stable for {_span(policy.window)}"
        ),
    )
    state = FlapState(changes=recent, flapping=True, since=now, last_change=now)
    return state, [entered] + [t for t in transitions if t.alert != "down"]


def _settled(
    check: str, flap: FlapState, alert: AlertState, now: float, policy: FlapPolicy
) -> Transition:
    """The one event that ends flapping, saying how the check settled."""
    started = flap.since if flap.since is not None else now
    stable = f"stopped flapping (stable for {_span(policy.window)})"
    if alert.firing:
        detail = f"{alert.reason}: {alert.message}" if alert.reason else alert.message
        return Transition(
            check=check,
            alert="down",
            event="firing",
            at=now,
            started_at=alert.started_at if alert.started_at is not None else started,
            resolved_at=None,
            consecutive_failures=alert.consecutive_failures,
            reason=alert.reason,
            message=f"{stable}; settled down: {detail}".rstrip(": "),
        )
    return Transition(
        check=check,
        alert="down",
        event="resolved",
        at=now,
        started_at=started,
        resolved_at=now,
        consecutive_failures=0,
        reason=None,
        message=f"{stable}; settled up",
    )


def _span(seconds: float) -> str:
    """``30m``, ``1h``, ``45s``: a window as people write it."""
    for unit, size in (("d", 86400.0), ("h", 3600.0), ("m", 60.0)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds / size:g}{unit}"
    return f"{seconds:g}s"
