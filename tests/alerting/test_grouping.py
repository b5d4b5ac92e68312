"""Grouping: many events to one receiver go out as few deliveries, still exactly once."""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path
from typing import Any

import pytest

from agent.alerting import AlertService
from agent.alerting.grouping import MAX_GROUP_EVENTS, GroupPolicy, group_delivery_id, plan
from agent.config import CheckConfig, Config
from agent.config.alerting import AgentAlertingConfig, ReceiverConfig
from agent.notifiers import NOTIFIERS
from agent.notifiers.base import Group, HttpNotifier
from agent.notifiers.discord import DISCORD_LIMITS
from agent.notifiers.slack import SLACK_LIMITS
from agent.storage import OutboxRow, Store
from tests.alerting.test_delivery import FAST, FakeClock, Outcomes, deliver, observe_all, result
from tests.notifiers import samples

SECRET = "grp-secret"


def config(url: str, names: list[str], *, teams: int = 1, **alerting: Any) -> Config:
    """Webhook 'hook' (grouped unless told) and checks spread over ``teams`` teams."""
    hook = ReceiverConfig.model_validate(
        {"name": "hook", "type": "webhook", "url": url + "/hook", "secret": SECRET}
        | alerting.pop("receiver", {})
    )
    return Config(
        alerting=AgentAlertingConfig.model_validate(
            {"failure_threshold": 1, "success_threshold": 1, "receivers": ["hook"]}
            | {"group_wait": 0.2, "group_interval": 0.5}
            | alerting
        ),
        receivers=(hook,),
        checks=tuple(
            CheckConfig(name=n, url="ws://127.0.0.1:9/", labels={"team": f"t{i % teams}"})
            for i, n in enumerate(names)
        ),
    )


def delivered(requests: list[Any]) -> list[tuple[str, str]]:
    """(check, event) of every event in every grouped body, after checking signatures."""
    out: list[tuple[str, str]] = []
    for r in requests:
        stamp, sig = r.headers["X-Wsprobe-Signature"].split(",")
        expected = hmac.new(SECRET.encode(), f"{stamp[2:]}.".encode() + r.body, hashlib.sha256)
        assert sig == "v1=" + expected.hexdigest()
        body = r.json()
        assert r.headers["X-Wsprobe-Event"] == "group"
        assert body["count"] == len(body["events"])
        out += [(e["check"], e["event"]) for e in body["events"]]
    return out


async def test_500_checks_failing_together_arrive_grouped_exactly_once_across_restart(
    receiver: Any, tmp_path: Path
) -> None:
    """Receiver down, agent restarted, receiver back: 500 firings in a handful of requests."""
    names = [f"svc-{i:03d}" for i in range(500)]
    cfg = config(receiver.url, names)
    await receiver.stop()
    store = Store(tmp_path)
    first = Outcomes()
    service = AlertService(cfg, store, on_notification=first, **FAST)
    await service.start()
    observe_all(service, cfg, False)
    await first.wait(lambda o: o.count("retry") >= 500, timeout=15)
    await service.aclose()
    store.close()

    await receiver.start()
    store = Store(tmp_path)
    second = Outcomes()
    service = AlertService(cfg, store, on_notification=second, **FAST)
    await deliver(service, second, lambda o: o.count("success") == 500, timeout=15)
    events = delivered(receiver.requests)
    assert sorted(events) == [(n, "firing") for n in names]
    assert len(receiver.requests) <= 3
    ids = [e["delivery_id"] for r in receiver.requests for e in r.json()["events"]]
    assert len(set(ids)) == 500
    assert [r.status for r in store.outbox_rows()] == ["delivered"] * 500
    store.close()


async def test_by_default_events_within_ten_seconds_go_out_as_one_delivery(
    receiver: Any, store: Store
) -> None:
    """No grouping settings: two checks failing 9 s apart reach the webhook in one request."""
    hook = ReceiverConfig.model_validate(
        {"name": "hook", "type": "webhook", "url": receiver.url + "/hook", "secret": SECRET}
    )
    cfg = Config(
        alerting=AgentAlertingConfig.model_validate(
            {"failure_threshold": 1, "receivers": ["hook"]}
        ),
        receivers=(hook,),
        checks=tuple(CheckConfig(name=n, url="ws://127.0.0.1:9/") for n in ("a", "b")),
    )
    clock = FakeClock()
    outcomes = Outcomes()
    service = AlertService(cfg, store, on_notification=outcomes, clock=clock, **FAST)
    service.observe(cfg.checks[0], result("a", False))
    clock.now += 9.0
    service.observe(cfg.checks[1], result("b", False))
    await service.start()
    try:
        clock.now += 1.0  # the first event has waited the default group_wait
        service.reconfigure(cfg)  # wakes the worker, which sleeps on the real clock
        await outcomes.wait(lambda o: o.count("success") == 2)
    finally:
        await service.aclose()
    assert len(receiver.requests) == 1
    assert sorted(delivered(receiver.requests)) == [("a", "firing"), ("b", "firing")]


async def test_group_by_splits_and_resolved_follow_in_order(receiver: Any, store: Store) -> None:
    """group_by [team]: one request per team; a check's resolved comes after its firing."""
    names = [f"c{i}" for i in range(6)]
    cfg = config(receiver.url, names, teams=2, group_by=["team"])
    outcomes = Outcomes()
    service = AlertService(cfg, store, on_notification=outcomes, **FAST)
    observe_all(service, cfg, False, True)
    await deliver(service, outcomes, lambda o: o.count("success") == 12, timeout=10)
    groups = [r.json()["group"] for r in receiver.requests]
    assert sorted(g["team"] for g in groups[:2]) == ["t0", "t1"]
    assert len(receiver.requests) == 4  # firings per team, then resolveds per team
    events = delivered(receiver.requests)
    for name in names:
        assert [e for c, e in events if c == name] == ["firing", "resolved"]


async def test_receiver_with_group_false_gets_one_request_per_event(
    receiver: Any, store: Store
) -> None:
    """A receiver that needs single events opts out with group: false."""
    cfg = config(receiver.url, ["a", "b", "c"], receiver={"group": False})
    outcomes = Outcomes()
    service = AlertService(cfg, store, on_notification=outcomes, **FAST)
    observe_all(service, cfg, False)
    await deliver(service, outcomes, lambda o: o.count("success") == 3)
    assert sorted(r.headers["X-Wsprobe-Event"] for r in receiver.requests) == ["firing"] * 3


def _row(i: int, created: float, *, due: float | None = None) -> OutboxRow:
    return OutboxRow(
        id=i,
        delivery_id=f"d{i}",
        receiver="hook",
        check=f"c{i}",
        event="firing",
        created_at=created,
        next_attempt_at=created if due is None else due,
        attempts=0,
    )


POLICY = GroupPolicy(group_wait=10.0, group_interval=60.0, group_by=("team",))
KEY = (POLICY, ("a",))


@pytest.mark.parametrize(
    ("rows", "sent", "now", "ready", "next_at"),
    [
        ([(1, 100.0), (2, 104.0)], None, 105.0, [], 110.0),
        ([(1, 100.0), (2, 104.0)], None, 110.0, [[1, 2]], None),
        ([(1, 100.0)], 95.0, 110.0, [], 155.0),
        ([(1, 100.0)], 40.0, 110.0, [[1]], None),
    ],
    ids=["waits-group-wait", "sends-whole-group", "waits-group-interval", "interval-passed"],
)
def test_plan(
    rows: list[tuple[int, float]],
    sent: float | None,
    now: float,
    ready: list[list[int]],
    next_at: float | None,
) -> None:
    """group_wait from the oldest event, group_interval from the group's last delivery."""
    heads = [(_row(i, t), KEY) for i, t in rows]
    last_sent = {} if sent is None else {KEY: sent}
    got = plan(heads, last_sent=last_sent, now=now)
    assert [[r.id for r in group] for _, group in got.ready] == ready
    assert got.next_at == next_at


def test_plan_keeps_groups_of_different_settings_apart() -> None:
    """Same label values under two policies (two routes) are two groups with their own waits."""
    fast = GroupPolicy(group_wait=1.0, group_by=("team",))
    heads = [(_row(1, 0.0), (POLICY, ("a",))), (_row(2, 0.0), (fast, ("a",)))]
    got = plan(heads, last_sent={}, now=2.0)
    assert [[r.id for r in rows] for _, rows in got.ready] == [[2]]
    assert got.next_at == 10.0


def test_plan_waits_for_retry_backoff_unless_probing() -> None:
    """A failed group waits for its rows' retry time, except as a failing receiver's probe."""
    key = (GroupPolicy(group_wait=1.0), ())
    heads = [(_row(1, 0.0, due=50.0), key)]
    assert plan(heads, last_sent={}, now=10.0).next_at == 50.0
    assert plan(heads, last_sent={}, now=10.0, ignore_backoff=True).ready


def test_plan_splits_huge_groups_and_ids_are_stable() -> None:
    """More than MAX_GROUP_EVENTS events go out in several requests; ids depend on members."""
    key = (GroupPolicy(group_wait=1.0), ())
    heads = [(_row(i, 0.0), key) for i in range(MAX_GROUP_EVENTS + 3)]
    got = plan(heads, last_sent={}, now=5.0)
    assert [len(rows) for _, rows in got.ready] == [MAX_GROUP_EVENTS, 3]
    assert group_delivery_id(["b", "a"]) == group_delivery_id(["a", "b"])
    assert group_delivery_id(["a"]) != group_delivery_id(["a", "b"])


async def test_a_route_groups_its_checks_while_others_go_out_one_by_one(
    receiver: Any, store: Store
) -> None:
    """group_wait on the payments route only: payments events in one request, others alone."""
    names = ["pay-1", "pay-2", "pay-3", "web-1", "web-2"]
    cfg = config(
        receiver.url,
        names,
        group_wait=0,
        routes=[{"match_re": {"check": "pay-.*"}, "group_wait": 0.2, "group_by": ["alert"]}],
    )
    outcomes = Outcomes()
    service = AlertService(cfg, store, on_notification=outcomes, **FAST)
    observe_all(service, cfg, False)
    await deliver(service, outcomes, lambda o: o.count("success") == 5)
    kinds = sorted(r.headers["X-Wsprobe-Event"] for r in receiver.requests)
    assert kinds == ["firing", "firing", "group"]
    (grouped,) = [r.json() for r in receiver.requests if r.headers["X-Wsprobe-Event"] == "group"]
    assert grouped["group"] == {"alert": "down"}
    assert sorted(e["check"] for e in grouped["events"]) == ["pay-1", "pay-2", "pay-3"]


def _group(n: int) -> Group:
    events = tuple(samples.event("firing" if i % 3 else "resolved") for i in range(n))
    return Group(events=events, delivery_ids=tuple(f"d{i}" for i in range(n)))


@pytest.mark.parametrize("type_", ["slack", "discord", "alertmanager", "webhook"])
def test_grouped_renders_fit_their_limits(type_: str) -> None:
    """200 events: chat messages list what fits and say 'and N more'; AM gets every alert."""
    notifier = NOTIFIERS[type_]
    assert isinstance(notifier, HttpNotifier)
    url = {"alertmanager": "http://am:9093", "webhook": "https://h.example.com/"}.get(
        type_, "https://hooks.example.com/x"
    )
    cfg = samples.receiver(type_, url)
    body = json.loads(notifier.render_group(cfg, _group(200), samples.DELIVERY).body)
    if type_ == "slack":
        text = body["blocks"][1]["text"]["text"]
        assert len(text) <= SLACK_LIMITS["section_text"]
        assert text.rsplit("\n", 1)[-1].startswith("and ")
        assert body["text"] == "wsprobe: 133 firing, 67 resolved"
    elif type_ == "discord":
        embed = body["embeds"][0]
        assert len(embed["description"]) <= DISCORD_LIMITS["description"]
        assert embed["description"].rsplit("\n", 1)[-1].startswith("and ")
    elif type_ == "alertmanager":
        assert len(body) == 200
    else:
        assert body["count"] == 200


@pytest.fixture
def store(tmp_path: Path) -> Any:
    """A fresh SQLite store."""
    s = Store(tmp_path)
    yield s
    s.close()
