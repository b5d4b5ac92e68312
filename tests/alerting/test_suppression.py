"""Maintenance windows and silences through AlertService, with an injected clock.

A real SQLite store and a real webhook receiver on loopback; the test's clock starts
and ends windows and silences.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import pytest

from agent.alerting import AlertService, SilenceError
from agent.config import Config
from agent.config.alerting import FlapConfig
from agent.config.maintenance import MaintenanceWindow
from agent.metrics.registry import Metrics
from agent.storage import Store
from tests.alerting.test_delivery import FAST, Outcomes, config, deliver, result
from tests.runtime.conftest import parse_samples, value

T0 = dt.datetime(2026, 12, 5, 1, 0, tzinfo=dt.UTC).timestamp()


class Clock:
    """A wall clock the test moves."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def with_windows(cfg: Config, *windows: MaintenanceWindow) -> Config:
    """``cfg`` with maintenance windows."""
    return cfg.model_copy(update={"maintenance": windows})


def run(
    service: AlertService, cfg: Config, clock: Clock, codes: str, *, step: float = 30.0
) -> list[str]:
    """One result per F/S, ``step`` seconds apart on the clock; the events queued."""
    check = cfg.checks[0]
    out: list[str] = []
    for code in codes:
        out += [t.event for t in service.observe(check, result(check.name, code == "S"))]
        clock.now += step
    return out


async def delivered(receiver: Any, service: AlertService, outcomes: Outcomes, n: int) -> list[str]:
    """Start delivery, wait for ``n`` successes, return the events received in order."""
    await deliver(service, outcomes, lambda o: o.count("success") == n)
    return [r.json()["event"] for r in receiver.requests]


@pytest.mark.parametrize(
    "window",
    [
        MaintenanceWindow(
            name="nightly",
            cron="0 2 * * *",
            duration=1800,
            timezone="Europe/Paris",
            checks=("chat",),
        ),
        MaintenanceWindow(
            name="once",
            start=dt.datetime(2026, 12, 5, 2, 0),
            end=dt.datetime(2026, 12, 5, 2, 30),
            timezone="Europe/Paris",
            matchers=('team="rt"',),
        ),
    ],
    ids=["cron-in-a-time-zone", "start-end-by-label"],
)
async def test_maintenance_window_suppresses_and_releases(
    receiver: Any, store: Store, window: MaintenanceWindow
) -> None:
    """In the window failures count for nothing; after it, the alert fires as usual."""
    clock = Clock(T0)  # 01:00 UTC = 02:00 in Paris: the window opens now
    cfg = with_windows(config(receiver.url, failure=2, success=1), window)
    outcomes = Outcomes()
    service = AlertService(cfg, store, on_notification=outcomes, clock=clock, **FAST)
    assert service.in_maintenance("chat")
    state = service.state("chat")["maintenance"]
    assert (state["name"], state["ends_at"]) == (window.name, T0 + 1800)
    assert run(service, cfg, clock, "F" * 60) == []  # 30 minutes of failures, all muted
    assert service.state("chat")["status"] == "ok"
    assert not service.in_maintenance("chat")  # 02:30 Paris: closed
    assert run(service, cfg, clock, "FF") == ["firing"]
    assert await delivered(receiver, service, outcomes, 1) == ["firing"]


async def test_alert_firing_at_the_start_is_not_resolved_by_the_window(
    receiver: Any, store: Store
) -> None:
    """A firing alert stays firing through a window, even if the target recovers in it."""
    clock = Clock(T0 - 120)
    window = MaintenanceWindow(
        name="m",
        start=dt.datetime(2026, 12, 5, 1, 0),
        end=dt.datetime(2026, 12, 5, 1, 10),
        checks=("chat",),
    )
    cfg = with_windows(config(receiver.url, failure=2, success=1), window)
    service = AlertService(cfg, store, clock=clock, **FAST)
    assert run(service, cfg, clock, "FFFF") == ["firing"]
    assert service.in_maintenance("chat")
    assert run(service, cfg, clock, "S" * 20) == []
    assert service.firing("chat")
    assert not service.in_maintenance("chat")
    assert run(service, cfg, clock, "S") == ["resolved"]


def silence_body(**extra: Any) -> dict[str, Any]:
    """A valid silence request for the check 'chat'."""
    return {
        "matchers": ['check="chat"'],
        "duration": "1h",
        "created_by": "ops",
        "comment": "deploy",
        **extra,
    }


async def test_silenced_firing_is_notified_when_the_silence_ends(
    receiver: Any, store: Store
) -> None:
    """A firing held by a silence goes out once the silence is over, and is counted."""
    clock = Clock(T0)
    cfg = config(receiver.url, failure=2, success=1)
    outcomes = Outcomes()
    service = AlertService(cfg, store, on_notification=outcomes, clock=clock, **FAST)
    silence = service.create_silence(silence_body(duration="10m"))
    assert service.silenced("chat")
    assert run(service, cfg, clock, "FF") == []
    assert service.firing("chat")
    assert service.suppressed_counts()["silence"] == 1
    assert service.state("chat")["silenced_by"] == [silence.id]
    clock.now = T0 + 600  # the silence expires
    assert run(service, cfg, clock, "F") == ["firing"]
    assert await delivered(receiver, service, outcomes, 1) == ["firing"]
    assert "silence ended" in receiver.requests[0].json()["message"]


@pytest.mark.parametrize(
    ("before", "during", "sent"),
    [("", "FFS", []), ("FF", "S", ["firing", "resolved"]), ("FF", "SFF", ["firing", "firing"])],
    ids=["came-and-went-inside", "resolved-inside", "new-incident-inside"],
)
async def test_ending_a_silence_brings_receivers_up_to_date(
    receiver: Any, store: Store, before: str, during: str, sent: list[str]
) -> None:
    """Deleting a silence sends one catch-up event per alert, or none when nothing changed."""
    clock = Clock(T0)
    cfg = config(receiver.url, failure=2, success=1)
    outcomes = Outcomes()
    service = AlertService(cfg, store, on_notification=outcomes, clock=clock, **FAST)
    run(service, cfg, clock, before)
    silence = service.create_silence(silence_body())
    assert run(service, cfg, clock, during) == []
    assert service.expire_silence(silence.id) is not None
    assert service.expire_silence(silence.id) is None  # already ended
    assert store.load_alert_states()["chat"]["held"] == {}  # nothing left to send later
    if sent:
        assert await delivered(receiver, service, outcomes, len(sent)) == sent
    else:
        assert service.queue_depth() == 0


def test_silence_is_stored_and_survives_a_restart(tmp_path: Any) -> None:
    """A silence and its held events are read back by a new service on the same file."""
    clock = Clock(T0)
    cfg = config("http://127.0.0.1:9", failure=2, success=1)
    store = Store(tmp_path)
    service = AlertService(cfg, store, clock=clock)
    silence = service.create_silence(silence_body())
    run(service, cfg, clock, "FF")
    asyncio.run(service.aclose())
    store.close()
    store = Store(tmp_path)
    try:
        again = AlertService(cfg, store, clock=clock)
        assert [s["id"] for s in again.silences()] == [silence.id]
        assert again.silenced("chat")
        assert again.state("chat")["held_events"] == 1
        clock.now += 3600
        assert run(again, cfg, clock, "F") == ["firing"]
        asyncio.run(again.aclose())
    finally:
        store.close()


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"matchers": []}, "matchers: a non-empty list"),
        (silence_body(matchers=['check=~".*"']), "too broad"),
        (silence_body(matchers=["check=~(x"]), r"matchers\[0\]: invalid regex"),
        (silence_body(duration="soon"), "duration: invalid duration"),
        (silence_body(bogus=1), r"unknown field\(s\): bogus"),
        (
            {**silence_body(), "ends_at": "2026-12-05T03:00:00Z"},
            "exactly one of ends_at or duration",
        ),
        ({**silence_body(created_by=" ")}, "created_by: a non-empty string"),
        (
            {
                "matchers": ['check="chat"'],
                "ends_at": "2026-12-05T00:00:00Z",
                "created_by": "a",
                "comment": "b",
            },
            "must be in the future",
        ),
        (
            {
                "matchers": ['check="chat"'],
                "ends_at": "tomorrow",
                "created_by": "a",
                "comment": "b",
            },
            "not an RFC 3339 time",
        ),
    ],
    ids=[
        "no-matchers",
        "match-all",
        "bad-regex",
        "bad-duration",
        "unknown-field",
        "both-ends",
        "blank-author",
        "in-the-past",
        "bad-time",
    ],
)
def test_bad_silences_are_refused_naming_the_field(
    store: Store, body: dict[str, Any], message: str
) -> None:
    """Every bad request is refused with a message naming its field; nothing is stored."""
    service = AlertService(config("http://127.0.0.1:9"), store, clock=Clock(T0))
    with pytest.raises(SilenceError, match=message):
        service.create_silence(body)
    assert service.silences() == []
    asyncio.run(service.aclose())


def test_alert_states_reach_the_metrics(store: Store) -> None:
    """The service's flags and counters render as wsprobe_alert_* series."""
    clock = Clock(T0)
    window = MaintenanceWindow(
        name="m", start=dt.datetime(2026, 12, 5, 1), end=dt.datetime(2026, 12, 5, 2), checks=("b",)
    )
    cfg = config("http://127.0.0.1:9", checks=("a", "b"), failure=1, success=1)
    alerting = cfg.alerting.model_copy(update={"flap": FlapConfig(max_changes=2, window=600.0)})
    cfg = with_windows(cfg.model_copy(update={"alerting": alerting}), window)
    service = AlertService(cfg, store, clock=clock)
    service.create_silence(silence_body(matchers=['check="b"']))
    run(service, cfg, clock, "FSFS")  # check a: firing, resolved, flapping
    metrics = Metrics(
        location="lab",
        alert_flags=service.flagged,
        alert_suppressed=service.suppressed_counts,
    )
    metrics.set_checks(cfg.checks)
    samples = parse_samples(metrics.render().decode())
    expected = {
        ("wsprobe_alert_flapping", "a"): 1,
        ("wsprobe_alert_flapping", "b"): 0,
        ("wsprobe_alert_maintenance", "a"): 0,
        ("wsprobe_alert_maintenance", "b"): 1,
        ("wsprobe_alert_silenced", "a"): 0,
        ("wsprobe_alert_silenced", "b"): 1,
    }
    for (name, check), want in expected.items():
        assert value(samples, name, check=check) == want, (name, check)
    suppressed = "wsprobe_alert_notifications_suppressed_total"
    assert value(samples, suppressed, reason="flapping") == 1  # the 4th run's resolved
    assert value(samples, suppressed, reason="silence") == 0
    asyncio.run(service.aclose())


def test_flapping_survives_a_restart_and_a_removed_flapping_check_is_resolved(
    tmp_path: Any,
) -> None:
    """After a restart a flapping check stays quiet; removing it closes its incident."""
    clock = Clock(T0)
    cfg = config("http://127.0.0.1:9", failure=1, success=1)
    cfg = cfg.model_copy(
        update={"alerting": cfg.alerting.model_copy(update={"flap": FlapConfig(max_changes=2)})}
    )
    store = Store(tmp_path)
    service = AlertService(cfg, store, clock=clock)
    assert run(service, cfg, clock, "FSFS") == ["firing", "resolved", "flapping"]
    asyncio.run(service.aclose())
    store.close()
    store = Store(tmp_path)
    try:
        again = AlertService(cfg, store, clock=clock)
        assert again.flapping("chat")
        assert run(again, cfg, clock, "FSFS") == []
        again.reconfigure(cfg.model_copy(update={"checks": ()}))
        rows = store.outbox_rows()
        assert [(r.check, r.event) for r in rows][-1] == ("chat", "resolved")
        asyncio.run(again.aclose())
    finally:
        store.close()
