"""Flap control, pure: the state machine's transitions through flap.track, clock injected."""

from __future__ import annotations

import pytest

from agent.alerting.flap import FlapPolicy, FlapState, resolve_flap, track
from agent.alerting.policy import AlertPolicy
from agent.alerting.state import AlertState, Transition, update
from agent.config.alerting import (
    DEFAULT_FLAP_MAX_CHANGES,
    DEFAULT_FLAP_WINDOW,
    AlertingConfig,
    FlapConfig,
)
from agent.notifiers.base import AlertEvent, summary
from agent.result import ProbeResult, Reason

POLICY = AlertPolicy(failure_threshold=2, success_threshold=1, repeat_interval=0.0)
FLAP = FlapPolicy(max_changes=4, window=600.0)


def result(code: str) -> ProbeResult:
    """F: failed (closed); S: success."""
    r = ProbeResult(check="chat", kind="probe", url="ws://127.0.0.1/ws", started_at=0.0)
    if code == "F":
        return r.fail(Reason.CLOSED, "code 1011")
    r.success = True
    return r


def feed(
    codes: str,
    *,
    step: float = 30.0,
    start: float = 0.0,
    flap: FlapPolicy = FLAP,
    policy: AlertPolicy = POLICY,
    state: tuple[AlertState, FlapState] | None = None,
) -> tuple[AlertState, FlapState, list[tuple[float, Transition]]]:
    """One result per character, ``step`` seconds apart; (time, transition) notified."""
    alert, flapping = state or (AlertState(), FlapState())
    out: list[tuple[float, Transition]] = []
    for i, code in enumerate(codes.replace(" ", "")):
        now = start + i * step
        alert, raw = update(alert, result(code), policy=policy, now=now)
        flapping, passed = track(flapping, raw, check="chat", alert=alert, policy=flap, now=now)
        out += [(now, t) for t in passed]
    return alert, flapping, out


def test_flapping_target_sends_one_flapping_event_then_nothing_until_stable() -> None:
    """FFS at 2/1 repeated: two incidents, then one flapping event, then silence."""
    _alert, flap, out = feed("FFS" * 20)  # 30 minutes of flapping
    events = [t.event for _, t in out]
    # 4 changes allowed (firing, resolved, firing, resolved), the 5th is replaced.
    assert events == ["firing", "resolved", "firing", "resolved", "flapping"]
    assert flap.flapping
    flapping = out[-1][1]
    assert flapping.alert == "down"
    assert "5 state changes within 10m" in flapping.message
    assert flapping.started_at == out[0][0]


@pytest.mark.parametrize(
    ("tail", "settled", "last_change"),
    [("S" * 25, "resolved", 420.0), ("F" * 25, "firing", 480.0)],
    ids=["settles-up", "settles-down"],
)
def test_settles_once_after_a_stable_window(tail: str, settled: str, last_change: float) -> None:
    """After a window without a change, one event says how the check settled."""
    alert, flap, _out = feed("FFS" * 5)
    assert flap.flapping
    start = 15 * 30.0
    alert, flap, after = feed(tail, start=start, state=(alert, flap))
    assert [t.event for _, t in after] == [settled]
    at, event = after[0]
    assert "stopped flapping" in event.message
    # A window after the last change: the resolve at 420 s, or the firing at 480 s.
    assert at == last_change + FLAP.window
    assert not flap.flapping


def test_no_reminders_while_flapping() -> None:
    """Reminders of the down alert are held back while it flaps."""
    policy = AlertPolicy(failure_threshold=2, success_threshold=1, repeat_interval=60.0)
    _, flap, out = feed("FFS" * 5 + "FFFFF", policy=policy, flap=FlapPolicy(4, 3600.0))
    assert flap.flapping
    assert [t.event for _, t in out][-1] == "flapping"


def test_changes_older_than_the_window_do_not_count() -> None:
    """Incidents spread wider than the window never make a check flap."""
    # One incident (2 changes) every 10 minutes with a 5-minute window.
    _, flap, out = feed("FFS" + "S" * 17, flap=FlapPolicy(2, 300.0))
    _, flap, out2 = feed("FFS" * 1, start=600.0, flap=FlapPolicy(2, 300.0), state=(_, flap))
    assert not flap.flapping
    assert [t.event for _, t in out + out2] == ["firing", "resolved", "firing", "resolved"]


def test_zero_max_changes_turns_it_off() -> None:
    """max_changes 0: every firing and resolved goes out."""
    _, flap, out = feed("FFS" * 10, flap=FlapPolicy(0, 600.0))
    assert [t.event for _, t in out] == ["firing", "resolved"] * 10
    assert flap == FlapState()


def test_turning_it_off_while_flapping_settles_at_once() -> None:
    """A reload that disables flap control ends flapping at the next result."""
    alert, flap, _ = feed("FFS" * 5)
    assert flap.flapping
    _, flap, out = feed("F", start=1000.0, flap=FlapPolicy(0, 600.0), state=(alert, flap))
    assert [t.event for _, t in out] == ["resolved"]  # one failure at 2/1 is not down
    assert not flap.flapping


def test_state_round_trips_through_a_dict() -> None:
    """Flap state survives the store (a restart does not forget flapping)."""
    _, flap, _ = feed("FFS" * 5)
    assert FlapState.from_dict(flap.to_dict()) == flap
    assert FlapState.from_dict({"changes": "junk"}) == FlapState()
    assert FlapState.from_dict(None) == FlapState()


def test_policy_merges_field_by_field() -> None:
    """A check's flap block overrides the agent's per field; defaults fill the rest."""
    agent = AlertingConfig(flap=FlapConfig(window=900.0))
    check = AlertingConfig(flap=FlapConfig(max_changes=2))
    assert resolve_flap(agent, check) == FlapPolicy(max_changes=2, window=900.0)
    assert resolve_flap(AlertingConfig(), None) == FlapPolicy(
        DEFAULT_FLAP_MAX_CHANGES, DEFAULT_FLAP_WINDOW
    )


@pytest.mark.parametrize(
    ("pattern", "fail", "ok", "without"),
    [("FFFSS", 3, 2, 48), ("FFS", 2, 1, 80)],
    ids=["FFFSS-at-3-2", "FFS-at-2-1"],
)
def test_default_notifications_per_hour_for_a_flapping_pattern(
    pattern: str, fail: int, ok: int, without: int
) -> None:
    """A flapping pattern every 30 s for two hours: 5 notifications with the defaults."""
    policy = AlertPolicy(failure_threshold=fail, success_threshold=ok, repeat_interval=4 * 3600.0)
    hour = pattern * (120 // len(pattern))
    _, _, off = feed(hour, policy=policy, flap=FlapPolicy(0, DEFAULT_FLAP_WINDOW))
    _, _, on = feed(hour * 2, policy=policy, flap=resolve_flap(AlertingConfig(), None))
    assert len(off) == without  # per hour, flap control off
    assert [t.event for _, t in on] == ["firing", "resolved"] * 2 + ["flapping"]


def test_flapping_event_reads_as_flapping() -> None:
    """Receivers that show a one-line summary say FLAPPING, not FIRING."""
    event = AlertEvent(payload={"event": "flapping", "check": "chat", "reason": "closed"})
    assert summary(event).startswith("[FLAPPING] chat: closed")
