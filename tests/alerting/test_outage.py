"""Delivery around a receiver outage: probing while down, draining on recovery, the budget."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from agent.alerting import AlertService
from agent.alerting.outbox import RateLimit
from agent.storage import Store
from tests.alerting.test_delivery import FakeClock, Outcomes, config, deliver, events, feed

#: How soon after the receiver is back the backlog must start draining: the probe
#: period (2 s) plus room for a loaded machine.
RECOVERY_DEADLINE = 3.5


async def test_backlog_drains_within_a_probe_period_of_recovery(
    receiver: Any, tmp_path: Path
) -> None:
    """12 queued events, receiver down across a restart, back later: all go out at once.

    Each failed wave counts once, so the receiver is probed every 2 s at most however
    many events failed together; the first probe after it is back releases the backlog.
    """
    await receiver.stop()
    names = tuple(f"c{i}" for i in range(12))
    cfg = config(receiver.url, checks=names)
    store = Store(tmp_path)
    service = AlertService(cfg, store)  # default retry schedule: 1 s doubling to 60 s
    for name in names:
        feed(service, cfg, "F", name)
    store.close()

    store = Store(tmp_path)
    outcomes = Outcomes()
    service = AlertService(cfg, store, on_notification=outcomes)
    await service.start()
    try:
        # A first wave of 8, then single probes: with a failure counted per event
        # the receiver would already be backed off towards the 60 s cap.
        await outcomes.wait(lambda o: o.count("retry") >= 10, timeout=10)
        await receiver.start()
        await outcomes.wait(lambda o: o.count("success") >= 1, timeout=RECOVERY_DEADLINE)
        await outcomes.wait(lambda o: o.count("success") == 12, timeout=RECOVERY_DEADLINE)
    finally:
        await service.aclose()
        store.close()
    assert sorted(events(receiver.requests)) == sorted((n, "firing") for n in names)
    assert outcomes.count("dropped") == outcomes.count("failed") == 0


async def test_one_wave_of_failures_blocks_the_receiver_once(receiver: Any, store: Store) -> None:
    """8 events failing together back the receiver off by one step, not eight.

    The clock stands still, so a probe period of one step (at most the 2 s cap)
    lets the next probe through after 2 s of clock time.
    """
    await receiver.stop()
    clock = FakeClock()
    outcomes = Outcomes()
    names = tuple(f"c{i}" for i in range(8))
    cfg = config(receiver.url, checks=(*names, "wake"))
    service = AlertService(cfg, store, on_notification=outcomes, clock=clock)
    for name in names:
        feed(service, cfg, "F", name)
    await service.start()
    try:
        await outcomes.wait(lambda o: o.count("retry") == 8)
        await receiver.start()
        clock.now += 2.0
        feed(service, cfg, "F", "wake")  # enqueue wakes the worker
        await outcomes.wait(lambda o: o.count("success") == 9)
    finally:
        await service.aclose()
    assert len(events(receiver.requests)) == 9


async def test_event_older_than_its_budget_after_a_restart_is_dropped_not_sent(
    receiver: Any, tmp_path: Path
) -> None:
    """An event queued 2 h before a restart (budget 1 h) is dropped and counted, never sent."""
    clock = FakeClock()
    cfg = config(receiver.url, checks=("old", "new"), receiver={"retry_timeout": 3600})
    store = Store(tmp_path)
    service = AlertService(cfg, store, clock=clock)
    feed(service, cfg, "F", "old")
    store.close()

    clock.now += 7200
    store = Store(tmp_path)
    outcomes = Outcomes()
    service = AlertService(cfg, store, on_notification=outcomes, clock=clock)
    feed(service, cfg, "F", "new")
    await deliver(service, outcomes, lambda o: o.count("success") == 1 and o.count("dropped") == 1)
    assert events(receiver.requests) == [("new", "firing")]
    assert sorted((r.check, r.status) for r in store.outbox_rows()) == [
        ("new", "delivered"),
        ("old", "dropped"),
    ]
    store.close()


async def test_event_that_comes_due_past_its_budget_is_dropped_unsent(
    receiver: Any, store: Store
) -> None:
    """A retry that comes due after the budget (clock jumped, e.g. a suspended host) is not sent.

    Of two events sent together one gets a 503, the other is accepted (the receiver is
    up, so no sweep runs); the clock then jumps past the budget before the retry.
    """
    receiver.script.append(503)
    clock = FakeClock()
    outcomes = Outcomes()
    cfg = config(receiver.url, checks=("a", "b", "wake"), receiver={"retry_timeout": 60})
    service = AlertService(cfg, store, on_notification=outcomes, clock=clock)
    feed(service, cfg, "F", "a")
    feed(service, cfg, "F", "b")
    await service.start()
    try:
        await outcomes.wait(lambda o: o.count("retry") == 1 and o.count("success") == 1)
        clock.now += 61
        feed(service, cfg, "F", "wake")
        await outcomes.wait(lambda o: o.count("dropped") == 1 and o.count("success") == 2)
    finally:
        await service.aclose()
    ids = [r.headers["X-Wsprobe-Delivery"] for r in receiver.requests]
    assert len(ids) == len(set(ids)) == 3
    assert sorted(r.status for r in store.outbox_rows()) == ["delivered", "delivered", "dropped"]


async def test_pagerduty_is_rate_limited_per_receiver(receiver: Any, store: Store) -> None:
    """rate_limit 3/min: 5 events give 3 requests at once, the 4th after 20 s of clock."""
    clock = FakeClock()
    outcomes = Outcomes()
    names = ("a", "b", "c", "d", "e", "wake")
    cfg = config(
        receiver.url,
        checks=names,
        receiver={"type": "pagerduty", "routing_key": "k", "rate_limit": 3},
    )
    service = AlertService(cfg, store, on_notification=outcomes, clock=clock)
    for name in names[:-1]:
        feed(service, cfg, "F", name)
    await service.start()
    try:
        await outcomes.wait(lambda o: o.count("success") == 3)
        clock.now += 20.0  # one more token (3 a minute)
        feed(service, cfg, "F", "wake")
        await outcomes.wait(lambda o: o.count("success") == 4)
    finally:
        await service.aclose()
    assert len(receiver.requests) == 4
    assert outcomes.count("retry") == 0


def test_rate_limit_bucket() -> None:
    """Starts full, refills at per_minute/60 a second, never above per_minute."""
    bucket = RateLimit(120, now=0.0)
    assert bucket.available(0.0) == 120
    bucket.take(120, now=0.0)
    assert bucket.available(0.0) == 0
    assert bucket.wait(0.0) == 0.5
    assert bucket.available(1.0) == 2
    assert bucket.available(3600.0) == 120
