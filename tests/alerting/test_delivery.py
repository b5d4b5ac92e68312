"""AlertService end to end: durable outbox, retries, ordering, restarts, routing."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from agent.alerting import AlertService, routing_problems
from agent.config import CheckConfig, Config
from agent.config.alerting import AgentAlertingConfig, AlertingConfig, ReceiverConfig
from agent.result import ProbeResult, Reason
from agent.storage import Store

FAST = {"retry_initial_interval": 0.01, "retry_max_interval": 0.05}


class Outcomes:
    """Records on_notification calls and lets a test wait for a condition on them."""

    def __init__(self) -> None:
        self.items: list[tuple[str, str]] = []
        self._changed = asyncio.Event()

    def __call__(self, receiver: str, outcome: str) -> None:
        self.items.append((receiver, outcome))
        self._changed.set()

    def count(self, outcome: str) -> int:
        """How many attempts ended with ``outcome``."""
        return sum(1 for _, o in self.items if o == outcome)

    async def wait(self, done: Callable[[Outcomes], bool], *, timeout: float = 5.0) -> None:
        """Wait until ``done(self)`` holds."""
        async with asyncio.timeout(timeout):
            while not done(self):
                self._changed.clear()
                await self._changed.wait()


async def deliver(
    service: AlertService,
    outcomes: Outcomes,
    done: Callable[[Outcomes], bool],
    *,
    timeout: float = 5.0,
) -> None:
    """Start ``service``, wait until ``done(outcomes)`` holds, and close it (also on failure)."""
    await service.start()
    try:
        await outcomes.wait(done, timeout=timeout)
    finally:
        await service.aclose()


def config(
    url: str,
    *,
    checks: tuple[str, ...] = ("chat",),
    failure: int = 1,
    success: int = 1,
    receiver: dict[str, Any] | None = None,
    extra_receivers: tuple[ReceiverConfig, ...] = (),
    check_alerting: dict[str, AlertingConfig] | None = None,
) -> Config:
    """An agent config with one webhook receiver 'hook' as the default route."""
    hook = ReceiverConfig.model_validate(
        {"name": "hook", "type": "webhook", "url": url + "/hook", "secret": "s", **(receiver or {})}
    )
    return Config(
        # group_wait 0: these tests follow single events; test_grouping covers batches.
        alerting=AgentAlertingConfig(
            failure_threshold=failure, success_threshold=success, receivers=("hook",), group_wait=0
        ),
        receivers=(hook, *extra_receivers),
        checks=tuple(
            CheckConfig(
                name=name,
                url=f"ws://user:pw@127.0.0.1:9/{name}?token=t0k3n",
                labels={"team": "rt"},
                alerting=(check_alerting or {}).get(name),
            )
            for name in checks
        ),
    )


def result(check: str, ok: bool) -> ProbeResult:
    """A success, or a failure with reason closed."""
    r = ProbeResult(check=check, kind="probe", url="ws://127.0.0.1:9/", started_at=1.0)
    if ok:
        r.success = True
        return r
    return r.fail(Reason.CLOSED, "code 1011")


def observe_all(service: AlertService, cfg: Config, *oks: bool) -> None:
    """Give every check of ``cfg`` the results ``oks`` (True: a success), check by check."""
    for check in cfg.checks:
        for ok in oks:
            service.observe(check, result(check.name, ok))


def feed(service: AlertService, cfg: Config, codes: str, check: str = "chat") -> list[str]:
    """Observe one result per F/S character; return the events emitted."""
    conf = next(c for c in cfg.checks if c.name == check)
    return [t.event for code in codes for t in service.observe(conf, result(check, code == "S"))]


def events(requests: list[Any]) -> list[tuple[str, str]]:
    """(check, event) of each received webhook body."""
    return [(r.json()["check"], r.json()["event"]) for r in requests]


async def test_firing_is_delivered_and_then_marked_notified(receiver: Any, store: Store) -> None:
    """A firing event reaches the webhook; last_notified moves only once it was accepted."""
    outcomes = Outcomes()
    cfg = config(receiver.url)
    service = AlertService(cfg, store, on_notification=outcomes, **FAST)
    assert feed(service, cfg, "F") == ["firing"]
    assert service.firing("chat")
    assert service.state("chat")["last_notified"] is None
    assert service.queue_depth() == 1
    await deliver(service, outcomes, lambda o: o.count("success") == 1)
    (request,) = receiver.requests
    body = request.json()
    assert (body["event"], body["check"], body["reason"]) == ("firing", "chat", "closed")
    assert body["url"] == "ws://127.0.0.1:9/chat?token=REDACTED"
    assert request.headers["X-Wsprobe-Signature"].startswith("t=")
    assert service.state("chat")["last_notified"] is not None
    assert service.queue_depth() == 0


@pytest.mark.parametrize(
    ("script", "expected"),
    [
        ([503, 503], ["retry", "retry", "success"]),
        ([(429, {"Retry-After": "0"})], ["retry", "success"]),
        (["close"], ["retry", "success"]),
        (["hang"], ["retry", "success"]),
    ],
    ids=["5xx", "429", "dropped-connection", "timeout"],
)
async def test_retryable_failures_are_retried_with_the_same_delivery_id(
    receiver: Any, store: Store, script: list[Any], expected: list[str]
) -> None:
    """5xx, 429, broken connections and timeouts are retried; every retry reuses the id."""
    receiver.script.extend(script)
    outcomes = Outcomes()
    cfg = config(receiver.url, receiver={"timeout": 0.2})
    service = AlertService(cfg, store, on_notification=outcomes, **FAST)
    feed(service, cfg, "F")
    await deliver(service, outcomes, lambda o: o.count("success") == 1)
    assert [o for _, o in outcomes.items] == expected
    ids = {r.headers["X-Wsprobe-Delivery"] for r in receiver.requests}
    assert len(receiver.requests) == len(expected)
    assert len(ids) == 1


@pytest.mark.parametrize("status", [400, 401, 404, 410], ids=str)
async def test_client_errors_are_not_retried(receiver: Any, store: Store, status: int) -> None:
    """A 4xx (other than 429) fails the event at once; the next event still goes out."""
    receiver.script.append(status)
    outcomes = Outcomes()
    cfg = config(receiver.url)
    service = AlertService(cfg, store, on_notification=outcomes, **FAST)
    assert feed(service, cfg, "FS") == ["firing", "resolved"]
    await deliver(service, outcomes, lambda o: o.count("success") == 1)
    assert outcomes.items == [("hook", "failed"), ("hook", "success")]
    assert events(receiver.requests) == [("chat", "firing"), ("chat", "resolved")]


async def test_retry_budget_exhausted_drops_with_error_log(
    receiver: Any, store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    """An event still failing when its retry budget is spent is dropped and logged at ERROR."""
    receiver.script.extend([503] * 100)
    outcomes = Outcomes()
    cfg = config(receiver.url, receiver={"retry_timeout": 0.5})
    service = AlertService(cfg, store, on_notification=outcomes, **FAST)
    feed(service, cfg, "F")
    with caplog.at_level(logging.ERROR):
        await deliver(service, outcomes, lambda o: o.count("dropped") == 1)
    assert outcomes.count("retry") >= 1
    assert service.queue_depth() == 0
    assert any("dropped" in r.getMessage() for r in caplog.records if r.levelno == logging.ERROR)
    assert [row.status for row in store.outbox_rows()] == ["dropped"]


async def test_events_of_a_check_arrive_in_order_despite_retries(
    receiver: Any, store: Store
) -> None:
    """With the receiver failing first, firing/resolved pairs still arrive in order."""
    receiver.script.extend([503, 503, "close"])
    outcomes = Outcomes()
    cfg = config(receiver.url, checks=("chat", "feed"))
    service = AlertService(cfg, store, on_notification=outcomes, **FAST)
    feed(service, cfg, "FSFS", "chat")
    feed(service, cfg, "FS", "feed")
    await deliver(service, outcomes, lambda o: o.count("success") == 6)
    # Distinct deliveries in order of first attempt: a check's next event is never
    # tried before the previous one was accepted.
    first_seen: dict[str, tuple[str, str]] = {}
    for r in receiver.requests:
        first_seen.setdefault(
            r.headers["X-Wsprobe-Delivery"], (r.json()["check"], r.json()["event"])
        )
    for check, n in (("chat", 2), ("feed", 1)):
        assert [e for c, e in first_seen.values() if c == check] == ["firing", "resolved"] * n
    assert len(first_seen) == 6


async def test_restart_loses_nothing_and_repeats_nothing(receiver: Any, tmp_path: Path) -> None:
    """Receiver down across an agent restart: each event delivered exactly once, in order."""
    await receiver.stop()  # down: connections refused until started again
    cfg = config(receiver.url, failure=2, success=2)

    store = Store(tmp_path)
    first = Outcomes()
    service = AlertService(cfg, store, on_notification=first, **FAST)
    await service.start()
    assert feed(service, cfg, "FFFF") == ["firing"]
    await first.wait(lambda o: o.count("retry") >= 2)
    await service.aclose()
    store.close()

    store = Store(tmp_path)
    second = Outcomes()
    service = AlertService(cfg, store, on_notification=second, **FAST)
    assert service.firing("chat")
    assert service.state("chat")["consecutive_failures"] == 4
    # Still failing after the restart: no second "firing"; then it recovers while
    # the receiver is still down.
    assert feed(service, cfg, "FFSS") == ["resolved"]
    assert service.queue_depth() == 2
    await service.start()
    await second.wait(lambda o: o.count("retry") >= 1)
    await receiver.start()
    try:
        await second.wait(lambda o: o.count("success") == 2)
    finally:
        await service.aclose()
    assert events(receiver.requests) == [("chat", "firing"), ("chat", "resolved")]
    assert len({r.headers["X-Wsprobe-Delivery"] for r in receiver.requests}) == 2
    assert service.queue_depth() == 0
    store.close()

    # A third start finds nothing to send: delivered rows are never resent.
    store = Store(tmp_path)
    service = AlertService(cfg, store, **FAST)
    assert service.queue_depth() == 0
    assert [r.status for r in store.outbox_rows()] == ["delivered", "delivered"]
    assert not service.firing("chat")
    store.close()


async def test_observe_is_durable_before_it_returns(receiver: Any, tmp_path: Path) -> None:
    """The outbox row is committed when observe() returns (a crash right after loses nothing)."""
    store = Store(tmp_path)
    cfg = config(receiver.url)
    service = AlertService(cfg, store)
    feed(service, cfg, "F")
    # A second connection sees the committed row without any close or flush.
    with sqlite3.connect(store.path) as other:
        rows = other.execute("SELECT receiver, event, status FROM outbox").fetchall()
    other.close()
    assert rows == [("hook", "firing", "pending")]
    store.close()


async def test_routing_default_plus_per_check(receiver: Any, store: Store) -> None:
    """Events go to the default receivers plus the check's own; unknown names are skipped."""
    ops = ReceiverConfig.model_validate(
        {"name": "ops", "type": "webhook", "url": receiver.url + "/ops"}
    )
    cfg = config(
        receiver.url,
        checks=("chat", "feed", "solo"),
        extra_receivers=(ops,),
        check_alerting={
            "feed": AlertingConfig(receivers=("ops", "nope")),
            "solo": AlertingConfig(receivers=("ops",), default_receivers=False),
        },
    )
    assert routing_problems(cfg) == [
        ("checks[1].alerting.receivers[1]", "no receiver named 'nope'")
    ]
    outcomes = Outcomes()
    service = AlertService(cfg, store, on_notification=outcomes, **FAST)
    for name in ("chat", "feed", "solo"):
        feed(service, cfg, "F", name)
    await deliver(service, outcomes, lambda o: o.count("success") == 4)
    got = sorted((r.path, r.json()["check"]) for r in receiver.requests)
    assert got == [("/hook", "chat"), ("/hook", "feed"), ("/ops", "feed"), ("/ops", "solo")]


async def test_removed_check_is_resolved_on_reload(receiver: Any, store: Store) -> None:
    """A firing check removed by a reload gets a resolved event and its state is dropped."""
    outcomes = Outcomes()
    cfg = config(receiver.url, checks=("chat", "feed"))
    service = AlertService(cfg, store, on_notification=outcomes, **FAST)
    feed(service, cfg, "F", "chat")
    await service.start()
    try:
        service.reconfigure(config(receiver.url, checks=("feed",)))
        await outcomes.wait(lambda o: o.count("success") == 2)
    finally:
        await service.aclose()
    assert events(receiver.requests) == [("chat", "firing"), ("chat", "resolved")]
    resolved = receiver.requests[1].json()
    assert resolved["message"] == "check removed from the configuration"
    assert resolved["labels"] == {"team": "rt"}
    assert not service.firing("chat")
    assert "chat" not in store.load_alert_states()


async def test_removed_receiver_drops_its_queue(receiver: Any, store: Store) -> None:
    """Events queued for a receiver removed by a reload are dropped and counted."""
    outcomes = Outcomes()
    cfg = config(receiver.url)
    service = AlertService(cfg, store, on_notification=outcomes, **FAST)
    feed(service, cfg, "F")
    service.reconfigure(cfg.model_copy(update={"receivers": ()}))
    assert outcomes.items == [("hook", "dropped")]
    assert service.queue_depth() == 0


@pytest.mark.parametrize(
    ("codes", "status", "failures", "successes"),
    [("", "ok", 0, 0), ("FF", "pending", 2, 0), ("FFF", "firing", 3, 0), ("FFFS", "firing", 0, 1)],
    ids=["new", "pending", "firing", "recovering"],
)
async def test_state_for_api(
    receiver: Any, store: Store, codes: str, status: str, failures: int, successes: int
) -> None:
    """state(check) reports status and the consecutive counters for /api/v1/checks."""
    cfg = config(receiver.url, failure=3, success=2)
    service = AlertService(cfg, store)
    feed(service, cfg, codes)
    state = service.state("chat")
    assert (state["status"], state["consecutive_failures"], state["consecutive_successes"]) == (
        status,
        failures,
        successes,
    )
    assert state["firing"] is (status == "firing")


async def test_backlog_is_retried_at_once_after_restart(receiver: Any, tmp_path: Path) -> None:
    """Backoff scheduled before a restart does not delay the backlog after it."""
    cfg = config(receiver.url)
    store = Store(tmp_path)
    service = AlertService(cfg, store)
    feed(service, cfg, "F")
    (row,) = store.outbox_rows()
    store.outbox_retry(row.id, attempts=5, next_attempt_at=row.created_at + 3600)
    store.close()

    store = Store(tmp_path)
    outcomes = Outcomes()
    service = AlertService(cfg, store, on_notification=outcomes)
    await deliver(service, outcomes, lambda o: o.count("success") == 1)
    assert [r.headers["X-Wsprobe-Delivery"] for r in receiver.requests] == [row.delivery_id]
    store.close()


async def test_stop_lets_an_in_flight_attempt_finish(receiver: Any, store: Store) -> None:
    """aclose() waits for an attempt already on the wire, so it is not sent twice."""
    receiver.script.append("slow")
    outcomes = Outcomes()
    cfg = config(receiver.url)
    service = AlertService(cfg, store, on_notification=outcomes, **FAST)
    feed(service, cfg, "F")
    await service.start()
    await receiver.wait_for(1)
    await service.aclose()
    assert outcomes.items == [("hook", "success")]
    assert [r.status for r in store.outbox_rows()] == ["delivered"]


class FakeClock:
    """A wall clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


async def test_down_receiver_is_probed_not_flooded_and_budget_sweeps(
    receiver: Any, store: Store
) -> None:
    """A down receiver gets one attempt per probe period; events past budget drop unattempted."""
    await receiver.stop()
    clock = FakeClock()
    outcomes = Outcomes()
    names = (*(f"c{i}" for i in range(20)), "late", "wake")
    cfg = config(receiver.url, checks=names, receiver={"retry_timeout": 60})
    service = AlertService(
        cfg, store, on_notification=outcomes, clock=clock, retry_initial_interval=5.0
    )
    for name in names[:-2]:
        feed(service, cfg, "F", name)
    await service.start()
    try:
        # The first wave tries up to max_in_flight (8) events, then the receiver is
        # known down and blocked for its probe period.
        await outcomes.wait(lambda o: o.count("retry") == 8)
        clock.now += 120  # every queued event is now past its 60 s budget
        feed(service, cfg, "F", "late")  # enqueue wakes the worker
        await outcomes.wait(lambda o: o.count("dropped") == 20)
        clock.now += 3  # past the probe period (at most 2 s)
        feed(service, cfg, "F", "wake")
        await outcomes.wait(lambda o: o.count("retry") == 9)  # one event probes the receiver
    finally:
        await service.aclose()
    assert outcomes.count("retry") == 9
    assert outcomes.count("success") == 0
    statuses = [r.status for r in store.outbox_rows()]
    assert statuses.count("dropped") == 20
    assert statuses.count("pending") == 2
