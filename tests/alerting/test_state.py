"""The pure alert state machine: thresholds, reminders, degraded, policy merging."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.alerting.policy import AlertPolicy, resolve_policy
from agent.alerting.state import (
    AlertState,
    Transition,
    mark_delivered,
    removed,
    update,
)
from agent.config.alerting import AlertingConfig
from agent.result import ProbeResult, Reason

POLICY = AlertPolicy(failure_threshold=3, success_threshold=2, repeat_interval=0.0)


def result(code: str) -> ProbeResult:
    """F: failed (closed); A: failed on a deadline the agent's overload consumed;
    S: success; D: success over a latency limit."""
    r = ProbeResult(check="chat", kind="probe", url="ws://127.0.0.1/ws", started_at=0.0)
    if code == "F":
        return r.fail(Reason.CLOSED, "server closed the connection with code 1011")
    if code == "A":
        r.agent_problem = True
        return r.fail(Reason.TIMEOUT, "deadline of 5s reached during ping")
    r.success = True
    if code == "D":
        r.degraded = ["handshake"]
    return r


def run(
    codes: str, policy: AlertPolicy = POLICY, *, step: float = 1.0, state: AlertState | None = None
) -> tuple[AlertState, list[Transition]]:
    """Feed one result per character, one ``step`` second apart."""
    state = state or AlertState()
    out: list[Transition] = []
    for i, code in enumerate(codes.replace(" ", "")):
        state, transitions = update(state, result(code), policy=policy, now=1000.0 + i * step)
        out += transitions
    return state, out


def test_flapping_sequence_gives_one_firing_and_one_resolved() -> None:
    """F,F,S,F,F,F then S,S then ten alternating results (3/2) fire once and resolve once."""
    _, transitions = run("FFSFFF SS FSFSFSFSFS")
    assert [(t.alert, t.event) for t in transitions] == [("down", "firing"), ("down", "resolved")]
    firing, resolved = transitions
    assert firing.at == 1005.0
    assert firing.started_at == 1003.0
    assert firing.consecutive_failures == 3
    assert firing.reason == "closed"
    assert resolved.at == 1007.0
    assert resolved.resolved_at == 1007.0


@pytest.mark.parametrize(
    "codes",
    ["AAAAAA", "FF AAAA", "FFF AAAA SS", "FFF SA AS"],
    ids=["only-agent", "streak-kept", "firing-kept", "recovery-kept"],
)
def test_agent_problem_runs_change_nothing(codes: str) -> None:
    """Runs flagged agent_problem neither count toward a threshold nor break a streak."""
    codes = codes.replace(" ", "")
    state, transitions = run(codes)
    # The same timeline with the agent-problem runs left out: an identical outcome.
    expected_state, expected = AlertState(), []
    for i, code in enumerate(codes):
        if code != "A":
            expected_state, out = update(
                expected_state, result(code), policy=POLICY, now=1000.0 + i
            )
            expected += out
    assert state == expected_state
    assert transitions == expected
    assert all(t.reason != "timeout" for t in transitions)


@pytest.mark.parametrize(
    ("codes", "fail", "ok", "events", "status"),
    [
        ("FF", 3, 2, [], "pending"),
        ("FFF", 3, 2, ["firing"], "firing"),
        ("F", 1, 1, ["firing"], "firing"),
        ("FFFFFF", 3, 2, ["firing"], "firing"),
        ("FFFS", 3, 2, ["firing"], "firing"),
        ("FFFSFS", 3, 2, ["firing"], "firing"),
        ("FFFSS", 3, 2, ["firing", "resolved"], "ok"),
        ("FFFSSFFF", 3, 2, ["firing", "resolved", "firing"], "firing"),
        ("FS", 1, 1, ["firing", "resolved"], "ok"),
        ("FFS", 3, 2, [], "ok"),
        ("SSSS", 3, 2, [], "ok"),
    ],
    ids=[
        "below-threshold-pending",
        "at-threshold-fires",
        "threshold-one",
        "keeps-firing-without-repeat",
        "one-success-not-enough",
        "success-streak-reset-by-failure",
        "resolves-after-two-successes",
        "fires-again-after-resolve",
        "one-one-flaps",
        "pending-cleared-by-success",
        "healthy",
    ],
)
def test_thresholds(codes: str, fail: int, ok: int, events: list[str], status: str) -> None:
    """Firing and resolving follow the consecutive failure/success thresholds."""
    policy = AlertPolicy(failure_threshold=fail, success_threshold=ok, repeat_interval=0.0)
    state, transitions = run(codes, policy)
    assert [t.event for t in transitions] == events
    assert state.status == status


@pytest.mark.parametrize(
    ("repeat", "step", "reminders"),
    [(10.0, 4.0, 2), (10.0, 1.0, 0), (0.0, 100.0, 0), (5.0, 5.0, 7)],
    ids=["every-repeat-interval", "not-before-interval", "disabled-by-zero", "each-run"],
)
def test_reminders_while_firing(repeat: float, step: float, reminders: int) -> None:
    """A reminder is emitted each time repeat_interval has passed since the last event."""
    policy = AlertPolicy(failure_threshold=3, success_threshold=2, repeat_interval=repeat)
    _, transitions = run("FFF" + "F" * 7, policy, step=step)
    assert [t.event for t in transitions].count("reminder") == reminders
    assert transitions[0].event == "firing"


def test_reminder_keeps_incident_start() -> None:
    """Reminders carry the incident's first failure time and the current failure count."""
    policy = AlertPolicy(failure_threshold=2, success_threshold=2, repeat_interval=1.0)
    _, transitions = run("FFF", policy)
    reminder = transitions[-1]
    assert (reminder.event, reminder.started_at, reminder.consecutive_failures) == (
        "reminder",
        1000.0,
        3,
    )


@pytest.mark.parametrize(
    ("codes", "threshold", "events"),
    [
        ("DD", 2, [("degraded", "degraded")]),
        ("D", 2, []),
        ("DSD", 2, []),
        ("DDSS", 2, [("degraded", "degraded"), ("degraded", "resolved")]),
        ("DDS", 2, [("degraded", "degraded")]),
        ("DDFSS", 2, [("degraded", "degraded"), ("degraded", "resolved")]),
        ("DDDD", 0, []),
        ("DFD", 2, []),
    ],
    ids=[
        "fires-at-threshold",
        "below-threshold",
        "reset-by-good-run",
        "resolves-after-success-threshold",
        "one-good-run-not-enough",
        "failure-counts-neither-way",
        "disabled",
        "failure-resets-degraded-streak",
    ],
)
def test_degraded(codes: str, threshold: int, events: list[tuple[str, str]]) -> None:
    """Degraded fires after N over-limit successful runs and resolves like a down alert."""
    policy = AlertPolicy(
        failure_threshold=3, success_threshold=2, repeat_interval=0.0, degraded_threshold=threshold
    )
    _, transitions = run(codes, policy)
    assert [(t.alert, t.event) for t in transitions] == events
    for t in transitions:
        assert t.degraded == ("handshake",)


def test_degraded_disabled_by_reload_resolves() -> None:
    """An open degraded alert ends at the next good run once degraded alerting is off."""
    on = AlertPolicy(degraded_threshold=1)
    state, _ = run("D", on)
    state, transitions = run("S", AlertPolicy(degraded_threshold=0), state=state)
    assert [(t.alert, t.event) for t in transitions] == [("degraded", "resolved")]
    assert not state.degraded_firing


def test_removed_check_resolves_open_alerts() -> None:
    """Removing a check resolves its firing and degraded alerts, saying why."""
    state, _ = run("DFFF", AlertPolicy(degraded_threshold=1))
    transitions = removed(state, check="chat", now=5000.0)
    assert [(t.alert, t.event) for t in transitions] == [
        ("down", "resolved"),
        ("degraded", "resolved"),
    ]
    assert "removed" in transitions[0].message
    assert removed(AlertState(), check="chat", now=1.0) == []


def test_notified_moves_only_by_delivery() -> None:
    """Transitions never set last_notified; mark_delivered does, and never backwards."""
    state, _ = run("FFF")
    assert state.last_notified is None
    state = mark_delivered(state, at=2000.0)
    assert mark_delivered(state, at=1500.0).last_notified == 2000.0


def test_state_round_trips_through_dict() -> None:
    """The persisted form restores an identical state; unknown keys are ignored."""
    state, _ = run("DDFFF", AlertPolicy(degraded_threshold=1))
    data = state.to_dict() | {"url": "ws://x", "future_field": 1}
    assert AlertState.from_dict(data) == state


AGENT = AlertingConfig(
    failure_threshold=5, repeat_interval=600.0, degraded_threshold=2, receivers=("ops", "log")
)


@pytest.mark.parametrize(
    ("check", "expected"),
    [
        (None, AlertPolicy(5, 2, 600.0, 2, ("ops", "log"))),
        (AlertingConfig(), AlertPolicy(5, 2, 600.0, 2, ("ops", "log"))),
        (
            AlertingConfig(failure_threshold=1, success_threshold=4),
            AlertPolicy(1, 4, 600.0, 2, ("ops", "log")),
        ),
        (AlertingConfig(repeat_interval=0.0), AlertPolicy(5, 2, 0.0, 2, ("ops", "log"))),
        (AlertingConfig(degraded_threshold=0), AlertPolicy(5, 2, 600.0, 0, ("ops", "log"))),
        (
            AlertingConfig(receivers=("pd", "ops")),
            AlertPolicy(5, 2, 600.0, 2, ("ops", "log", "pd")),
        ),
        (
            AlertingConfig(receivers=("pd",), default_receivers=False),
            AlertPolicy(5, 2, 600.0, 2, ("pd",)),
        ),
    ],
    ids=[
        "no-override",
        "empty-override",
        "thresholds",
        "reminders-off",
        "degraded-off",
        "receivers-added",
        "receivers-replaced",
    ],
)
def test_resolve_policy(check: AlertingConfig | None, expected: AlertPolicy) -> None:
    """A check's alerting block overrides the agent's field by field; receivers add up."""
    assert resolve_policy(AGENT, check) == expected


def test_resolve_policy_defaults() -> None:
    """With nothing configured the module defaults apply and degraded alerts are off."""
    assert resolve_policy(AlertingConfig(), None) == AlertPolicy()
    assert AlertPolicy().degraded_threshold == 0


@settings(max_examples=100, deadline=None)
@given(
    codes=st.text(alphabet="FSD", max_size=60),
    fail=st.integers(min_value=1, max_value=5),
    ok=st.integers(min_value=1, max_value=5),
    degraded=st.integers(min_value=0, max_value=3),
)
def test_invariants_hold_for_any_sequence(codes: str, fail: int, ok: int, degraded: int) -> None:
    """Any sequence: firing/resolved alternate, each backed by a full streak at that run."""
    policy = AlertPolicy(
        failure_threshold=fail,
        success_threshold=ok,
        repeat_interval=0.0,
        degraded_threshold=degraded,
    )
    state = AlertState()
    open_alerts = {"down": False, "degraded": False}
    for i, code in enumerate(codes):
        state, transitions = update(state, result(code), policy=policy, now=float(i))
        for t in transitions:
            if t.event in ("firing", "degraded"):
                assert not open_alerts[t.alert]
                open_alerts[t.alert] = True
            else:
                assert t.event == "resolved"
                assert open_alerts[t.alert]
                open_alerts[t.alert] = False
            if t.event == "firing":
                assert i + 1 >= fail
                assert set(codes[i + 1 - fail : i + 1]) == {"F"}
            if t.event == "degraded":
                assert set(codes[i + 1 - degraded : i + 1]) == {"D"}
            if t.event == "resolved" and t.alert == "down":
                assert set(codes[i + 1 - ok : i + 1]) <= {"S", "D"}
        assert state.firing is open_alerts["down"]
        assert state.degraded_firing is open_alerts["degraded"]


def _reminder_times(times: list[float], policy: AlertPolicy) -> tuple[float, list[float]]:
    """Feed failures at ``times``; return the firing time and the reminder times."""
    state = AlertState()
    firing_at = -1.0
    reminders: list[float] = []
    for now in times:
        state, transitions = update(state, result("F"), policy=policy, now=now)
        for t in transitions:
            if t.event == "firing":
                firing_at = t.at
            elif t.event == "reminder":
                reminders.append(t.at)
    return firing_at, reminders


def test_reminders_do_not_drift_with_scheduling_jitter() -> None:
    """repeat_interval 20s at interval 5s, runs within 10 ms of their slot: no 25 s gaps pile up.

    The firing run is 10 ms late and most later runs 10 ms early, so a reminder counted
    from the run that sent the previous one slips a whole interval every time.
    """
    policy = AlertPolicy(failure_threshold=1, success_threshold=1, repeat_interval=20.0)
    times = [1000.0 + 5 * k + (0.01 if k % 3 == 0 else -0.01) for k in range(60)]
    firing_at, reminders = _reminder_times(times, policy)
    assert firing_at == times[0]
    for k, at in enumerate(reminders, start=1):
        assert firing_at + 20 * k <= at <= firing_at + 20 * k + 5
    assert len(reminders) == int((times[-1] - firing_at) // 20)


@settings(max_examples=200, deadline=None)
@given(
    interval=st.floats(min_value=0.5, max_value=60.0),
    periods=st.integers(min_value=1, max_value=12),
    extra=st.floats(min_value=0.0, max_value=1.0),
    gaps=st.lists(st.floats(min_value=0.01, max_value=1.0), min_size=5, max_size=300),
)
def test_reminder_is_due_at_most_one_interval_late_never_early(
    interval: float, periods: int, extra: float, gaps: list[float]
) -> None:
    """Runs at most one interval apart: reminder k goes out within [due_k, due_k + interval].

    due_k is firing + k * repeat_interval; no due time is skipped while runs keep coming.
    """
    repeat = interval * (periods + extra)
    times = [0.0]
    for g in gaps:
        times.append(times[-1] + g * interval)
    policy = AlertPolicy(failure_threshold=1, success_threshold=1, repeat_interval=repeat)
    firing_at, reminders = _reminder_times(times, policy)
    for k, at in enumerate(reminders, start=1):
        due = firing_at + k * repeat
        assert due <= at <= due + interval + 1e-9
    assert len(reminders) == int((times[-1] - firing_at) // repeat)


def test_missed_reminders_after_a_long_gap_collapse_into_one() -> None:
    """After an agent stop of 3.5 periods, one reminder goes out and the next is a period later."""
    policy = AlertPolicy(failure_threshold=1, success_threshold=1, repeat_interval=20.0)
    firing_at, reminders = _reminder_times([0.0, 5.0, 75.0, 80.0, 94.0, 95.0, 100.0], policy)
    assert (firing_at, reminders) == (0.0, [75.0, 95.0])


def test_checks_that_only_succeeded_share_one_state() -> None:
    """Equal success-only histories give one state object; any other history its own."""
    a, _ = run("SSS")
    b, _ = run("SS")
    b, _ = run("S", state=b)
    assert a is b
    assert a == AlertState(consecutive_successes=3)
    recovered, _ = run("FSSS")
    assert recovered is not a
    assert recovered.consecutive_successes == 3
    assert recovered.since is not None
    degraded, _ = run("SSD", AlertPolicy(3, 2, 0.0, degraded_threshold=2))
    assert degraded.degraded_runs == 1
    assert degraded is not a
