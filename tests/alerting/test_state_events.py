"""Every field of the events the alert state machine returns, and what it remembers."""

from __future__ import annotations

import dataclasses

import pytest

from agent.alerting.state import (
    AlertPolicy,
    AlertState,
    Transition,
    mark_delivered,
    reminder_anchor,
    removed,
    update,
)
from agent.result import ProbeResult, Reason

MESSAGE = "server closed the connection with code 1011"
DOWN = AlertPolicy(failure_threshold=2, success_threshold=2, repeat_interval=0.0)
SLOW = AlertPolicy(
    failure_threshold=2, success_threshold=2, repeat_interval=0.0, degraded_threshold=2
)


def result(code: str) -> ProbeResult:
    """F: failed (closed); S: success; D: success over the handshake limit; B: two limits."""
    r = ProbeResult(check="chat", kind="probe", url="ws://127.0.0.1/ws", started_at=0.0)
    if code == "F":
        return r.fail(Reason.CLOSED, MESSAGE)
    r.success = True
    if code == "D":
        r.degraded = ["handshake"]
    if code == "B":
        r.degraded = ["handshake", "first_message"]
    return r


def run(
    codes: str, policy: AlertPolicy, *, state: AlertState | None = None, start: float = 1000.0
) -> tuple[AlertState, list[tuple[int, Transition]]]:
    """Feed one result per character at start, start+1, ...; transitions with their run."""
    state = state or AlertState()
    out: list[tuple[int, Transition]] = []
    for i, code in enumerate(codes.replace(" ", "")):
        state, transitions = update(state, result(code), policy=policy, now=start + i)
        out += [(i, t) for t in transitions]
    return state, out


def test_down_events_carry_every_field() -> None:
    """firing and resolved name the check, the incident start, the count, reason and message."""
    _, events = run("S FF S S", DOWN)
    assert [t for _, t in events] == [
        Transition(
            check="chat",
            alert="down",
            event="firing",
            at=1002.0,
            started_at=1001.0,
            resolved_at=None,
            consecutive_failures=2,
            reason="closed",
            message=MESSAGE,
        ),
        Transition(
            check="chat",
            alert="down",
            event="resolved",
            at=1004.0,
            started_at=1001.0,
            resolved_at=1004.0,
            consecutive_failures=0,
            reason="closed",
            message=MESSAGE,
        ),
    ]


def test_resolved_incident_is_forgotten() -> None:
    """After resolving, the state holds no incident: the next one starts afresh."""
    state, _events = run("FF SS", DOWN)
    assert (state.status, state.since, state.started_at) == ("ok", 1003.0, None)
    assert (state.reason, state.message, state.last_event_at) == (None, "", None)
    assert (state.consecutive_failures, state.consecutive_successes) == (0, 2)
    _, again = run("F F", DOWN, state=state, start=2000.0)
    assert [(t.event, t.started_at) for _, t in again] == [("firing", 2000.0)]


def test_pending_cleared_by_success_forgets_its_start() -> None:
    """A failure streak that never fired leaves no start time behind."""
    policy = AlertPolicy(failure_threshold=3, success_threshold=2, repeat_interval=0.0)
    state, _ = run("FF S", policy)
    assert (state.status, state.since, state.started_at, state.reason) == ("ok", 1002.0, None, None)
    assert state.message == ""
    _, events = run("FF S FFF", policy)
    assert [(i, t.event, t.started_at) for i, t in events] == [(5, "firing", 1003.0)]


def test_pending_records_when_it_began() -> None:
    """The first failure below the threshold makes the check pending since that run."""
    state, events = run("S F", DOWN)
    assert events == []
    assert (state.status, state.since, state.started_at) == ("pending", 1001.0, 1001.0)
    assert (state.consecutive_failures, state.consecutive_successes) == (1, 0)
    assert (state.reason, state.message) == ("closed", MESSAGE)


def test_firing_state_remembers_the_incident() -> None:
    """While firing the state records since when, the last event and the failure streak."""
    state, _ = run("FFF", DOWN)
    assert state.firing
    assert (state.status, state.since, state.last_event_at) == ("firing", 1001.0, 1001.0)
    assert (state.started_at, state.consecutive_failures) == (1000.0, 3)
    assert not AlertState().firing


@pytest.mark.parametrize(
    ("repeat", "reminders_at"),
    [(2.0, [1003, 1005]), (2.5, [1004]), (0.0, [])],
    ids=["exact-interval", "between-runs", "off"],
)
def test_reminders_count_from_the_last_event(repeat: float, reminders_at: list[int]) -> None:
    """A reminder comes once repeat_interval has passed since firing or the last reminder."""
    policy = dataclasses.replace(DOWN, repeat_interval=repeat)
    _, events = run("FFFFFF", policy)
    reminders = [t for _, t in events if t.event == "reminder"]
    assert [t.at for t in reminders] == reminders_at
    for t in reminders:
        assert (t.started_at, t.resolved_at, t.reason) == (1000.0, None, "closed")
        assert t.consecutive_failures == t.at - 999.0


def test_degraded_events_carry_every_field() -> None:
    """degraded and its resolved name the phases, start at the first slow run, never a reason."""
    _, events = run("S D B S S", SLOW)
    phases = ("handshake", "first_message")
    text = "over latency limit: handshake, first_message"
    assert [t for _, t in events] == [
        Transition("chat", "degraded", "degraded", 1002.0, 1001.0, None, 0, None, text, phases),
        Transition("chat", "degraded", "resolved", 1004.0, 1001.0, 1004.0, 0, None, text, phases),
    ]


def test_degraded_recovery_streak_is_reset_by_a_failure() -> None:
    """A failed run between good runs restarts the count that resolves a degraded alert."""
    _, events = run("DD S F S S", SLOW)
    assert [(i, t.alert, t.event) for i, t in events if t.alert == "degraded"] == [
        (1, "degraded", "degraded"),
        (5, "degraded", "resolved"),
    ]


def test_degraded_streak_is_reset_by_a_failure() -> None:
    """A failed run between slow runs restarts the count that fires a degraded alert."""
    state, events = run("D F D", SLOW)
    assert [t.alert for _, t in events] == []
    assert state.degraded_runs == 1


def test_slow_streak_below_threshold_leaves_no_start_behind() -> None:
    """A slow run followed by a good one does not date a later degraded alert."""
    state, events = run("D S D D", SLOW)
    assert [(t.event, t.started_at) for _, t in events] == [("degraded", 1002.0)]
    state, _ = run("D S", SLOW)
    assert (state.degraded_since, state.degraded_phases, state.degraded_runs) == (None, (), 0)


def test_resolved_degraded_alert_is_forgotten() -> None:
    """After a degraded alert resolves, its phases and start are gone."""
    state, _ = run("DD SS", SLOW)
    assert not state.degraded_firing
    assert (state.degraded_since, state.degraded_phases) == (None, ())
    assert (state.degraded_runs, state.degraded_ok_runs) == (0, 2)


def test_firing_degraded_alert_counts_good_runs() -> None:
    """While a degraded alert fires, each good run is counted and the slow count is zero."""
    state, _ = run("DD S", SLOW)
    assert state.degraded_firing
    assert (state.degraded_runs, state.degraded_ok_runs, state.degraded_since) == (0, 1, 1000.0)


def test_removed_check_events_say_why() -> None:
    """Removing a check resolves its open alerts at that moment, keeping their start."""
    state, _ = run("DD FF", SLOW)
    down, degraded = removed(state, check="feed", now=5000.0)
    assert down == Transition(
        "feed", "down", "resolved", 5000.0, 1002.0, 5000.0, 2, "closed",
        "check removed from the configuration",
    )  # fmt: skip
    assert degraded == Transition(
        "feed", "degraded", "resolved", 5000.0, 1000.0, 5000.0, 0, None,
        "over latency limit: handshake", ("handshake",),
    )  # fmt: skip


def test_delivery_mark_moves_forward_only() -> None:
    """mark_delivered records a later delivery and keeps the latest one."""
    first = mark_delivered(AlertState(), at=10.0)
    assert first.last_notified == 10.0
    assert mark_delivered(first, at=11.0).last_notified == 11.0
    assert mark_delivered(first, at=9.0).last_notified == 10.0


def test_state_dict_lists_phases_and_restores_without_them() -> None:
    """Phases are stored as a JSON list; a stored state without them restores none."""
    state, _ = run("D", SLOW)
    data = state.to_dict()
    assert data["degraded_phases"] == ["handshake"]
    assert data["degraded_runs"] == 1
    del data["degraded_phases"]
    assert AlertState.from_dict(data).degraded_phases == ()


def test_state_is_immutable() -> None:
    """A state and its transitions cannot be changed after the fact."""
    state, events = run("FF", DOWN)
    with pytest.raises(dataclasses.FrozenInstanceError):
        state.status = "ok"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        events[0][1].event = "resolved"  # type: ignore[misc]


NEW_CHECK = {
    "status": "ok",
    "consecutive_failures": 0,
    "consecutive_successes": 0,
    "since": None,
    "started_at": None,
    "last_event_at": None,
    "last_notified": None,
    "reason": None,
    "message": "",
    "degraded_runs": 0,
    "degraded_ok_runs": 0,
    "degraded_firing": False,
    "degraded_since": None,
    "degraded_phases": [],
}


def test_new_check_starts_clean() -> None:
    """A check never run is ok, with no streak, no incident and nothing notified."""
    assert AlertState().to_dict() == NEW_CHECK


def test_healthy_runs_only_count_successes() -> None:
    """Good runs within limits change nothing but the success streak."""
    state, events = run("SSS", SLOW)
    assert events == []
    assert state.to_dict() == NEW_CHECK | {"consecutive_successes": 3}


def test_policy_is_immutable() -> None:
    """A resolved policy cannot be changed by the code it is handed to."""
    with pytest.raises(dataclasses.FrozenInstanceError):
        SLOW.failure_threshold = 1  # type: ignore[misc]


def test_degraded_alert_without_phases_resolves_with_empty_message() -> None:
    """A degraded alert restored without its phases (an older state file) still resolves."""
    (event,) = removed(AlertState(degraded_firing=True), check="feed", now=7.0)
    assert (event.alert, event.event, event.message, event.degraded) == (
        "degraded",
        "resolved",
        "",
        (),
    )


@pytest.mark.parametrize(
    ("now", "due"),
    [(9.5, None), (10.0, 10.0), (15.0, 10.0), (20.0, 10.0), (20.5, 20.5)],
    ids=["early", "on-time", "late", "two-periods", "gap-restarts-grid"],
)
def test_reminder_grid(now: float, due: float | None) -> None:
    """Reminders stay on the grid up to two periods late; a longer gap restarts it at now."""
    assert reminder_anchor(0.0, now, repeat_interval=10.0) == due
