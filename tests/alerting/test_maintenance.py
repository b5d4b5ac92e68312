"""Is a check in a maintenance window at time t: pure, the time passed in."""

from __future__ import annotations

import datetime as dt

import pytest

from agent.alerting.maintenance import MaintenanceSchedule
from agent.config.maintenance import MaintenanceWindow


def utc(*parts: int) -> float:
    """Unix seconds of a UTC wall-clock time."""
    return dt.datetime(*parts, tzinfo=dt.UTC).timestamp()


NIGHTLY = MaintenanceWindow(
    name="nightly", cron="0 2 * * *", duration=1800, timezone="Europe/Paris", checks=("chat",)
)


@pytest.mark.parametrize(
    ("at", "open_"),
    [
        (utc(2026, 12, 5, 0, 59, 59), False),
        (utc(2026, 12, 5, 1, 0), True),  # 02:00 Paris in winter (UTC+1)
        (utc(2026, 12, 5, 1, 29, 59), True),
        (utc(2026, 12, 5, 1, 30), False),  # the end is exclusive
        (utc(2026, 7, 1, 0, 15), True),  # 02:15 Paris in summer (UTC+2)
        (utc(2026, 7, 1, 1, 15), False),
    ],
    ids=["before", "opens", "last-second", "closes", "summer-time", "summer-utc-hour"],
)
def test_cron_window_follows_its_time_zone(at: float, open_: bool) -> None:
    """A 02:00 Europe/Paris window opens at 01:00 UTC in winter and 00:00 UTC in summer."""
    schedule = MaintenanceSchedule([NIGHTLY])
    assert (schedule.open_for("chat", {}, at=at) is not None) is open_


def test_open_window_says_when_it_ends() -> None:
    """The open window carries its name, start and end."""
    window = MaintenanceSchedule([NIGHTLY]).open_for("chat", {}, at=utc(2026, 12, 5, 1, 10))
    assert window is not None
    assert (window.name, window.started_at, window.ends_at) == (
        "nightly",
        utc(2026, 12, 5, 1, 0),
        utc(2026, 12, 5, 1, 30),
    )


def test_overlapping_openings_merge() -> None:
    """Every 10 minutes for 25 minutes: always open, closing 25 minutes after the last opening."""
    window = MaintenanceWindow(name="w", cron="*/10 * * * *", duration=1500, checks=("chat",))
    found = MaintenanceSchedule([window]).open_for("chat", {}, at=utc(2026, 12, 5, 2, 3))
    assert found is not None
    assert found.ends_at == utc(2026, 12, 5, 2, 25)


def test_start_end_window_in_its_zone_and_by_labels() -> None:
    """Naive start/end read in the window's zone; label matchers pick the checks."""
    window = MaintenanceWindow(
        name="migration",
        start=dt.datetime(2026, 12, 5, 22, 0),
        end=dt.datetime(2026, 12, 6, 1, 0),
        timezone="America/New_York",
        matchers=('team="payments"', 'env=~"prod-.*"'),
    )
    schedule = MaintenanceSchedule([window])
    inside = utc(2026, 12, 6, 3, 0)  # 22:00 New York (UTC-5)
    labels = {"team": "payments", "env": "prod-eu"}
    assert schedule.open_for("pay", labels, at=inside) is not None
    assert schedule.open_for("pay", labels, at=utc(2026, 12, 6, 2, 59)) is None
    assert schedule.open_for("pay", labels, at=utc(2026, 12, 6, 6, 0)) is None
    assert schedule.open_for("pay", {**labels, "env": "stage"}, at=inside) is None
    assert schedule.open_for("chat", {}, at=inside) is None


def test_the_window_ending_last_wins() -> None:
    """Two windows open at once: the one that ends later is reported."""
    short = MaintenanceWindow(
        name="short", start=dt.datetime(2026, 1, 1), end=dt.datetime(2026, 1, 1, 1), checks=("a",)
    )
    long = MaintenanceWindow(
        name="long", start=dt.datetime(2026, 1, 1), end=dt.datetime(2026, 1, 1, 5), checks=("a",)
    )
    found = MaintenanceSchedule([short, long]).open_for("a", {}, at=utc(2026, 1, 1, 0, 30))
    assert found is not None
    assert found.name == "long"
    assert not MaintenanceSchedule()


def test_remembered_answers_match_fresh_ones() -> None:
    """Asking one schedule minute by minute gives what a fresh schedule says each time."""
    window = MaintenanceWindow(
        name="w", cron="*/45 1-3 * * *", duration=1200, timezone="Europe/Paris", checks=("c",)
    )
    kept = MaintenanceSchedule([window])
    start = utc(2026, 12, 5, 0, 0)
    for minute in range(0, 5 * 60, 7):
        at = start + minute * 60.0
        assert kept.open_for("c", {}, at=at) == MaintenanceSchedule([window]).open_for(
            "c", {}, at=at
        ), minute
