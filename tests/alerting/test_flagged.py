"""AlertService.flagged(): every check's alert-state flags at once, for a scrape.

A real SQLite store and a real AlertService with an injected clock; the per-check
questions (``firing``, ``flapping``, ``in_maintenance``, ``silenced``) are the
reference the sets must agree with, and a scrape must not ask them.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections import Counter
from typing import Any

import pytest

from agent.alerting import AlertService
from agent.alerting import maintenance as maintenance_module
from agent.alerting.silences import Silence
from agent.config import CheckConfig, Config
from agent.config.alerting import FlapConfig
from agent.config.maintenance import MaintenanceWindow
from agent.metrics.alerts import ALERT_FLAGS
from agent.metrics.registry import JOIN_CHECKS, Metrics
from agent.storage import Store
from tests.alerting.test_delivery import config, result
from tests.alerting.test_suppression import Clock, silence_body
from tests.runtime.conftest import parse_samples, value

T0 = dt.datetime(2026, 12, 5, 0, 30, tzinfo=dt.UTC).timestamp()
#: Enough checks for several of the scrape's ranges.
N = 2 * JOIN_CHECKS + 7


class CountingService(AlertService):
    """The real service, counting the per-check questions and flagged() calls."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.calls: Counter[str] = Counter()

    def flagged(self) -> dict[str, frozenset[str]]:
        self.calls["flagged"] += 1
        return super().flagged()

    def firing(self, check: str) -> bool:
        self.calls["firing"] += 1
        return super().firing(check)

    def flapping(self, check: str) -> bool:
        self.calls["flapping"] += 1
        return super().flapping(check)

    def in_maintenance(self, check: str) -> bool:
        self.calls["in_maintenance"] += 1
        return super().in_maintenance(check)

    def silenced(self, check: str) -> bool:
        self.calls["silenced"] += 1
        return super().silenced(check)


def _config() -> Config:
    """N checks, every third labelled team="b"; a window 01:00-02:00 over team b and c1."""
    base = config("http://127.0.0.1:9", failure=1, success=1)
    template = base.checks[0]
    checks = tuple(
        template.model_copy(update={"name": f"c{i}", "labels": {"team": "b" if i % 3 else "a"}})
        for i in range(N)
    )
    window = MaintenanceWindow(
        name="m",
        start=dt.datetime(2026, 12, 5, 1),
        end=dt.datetime(2026, 12, 5, 2),
        checks=("c1",),
        matchers=('team="a"',),
    )
    alerting = base.alerting.model_copy(update={"flap": FlapConfig(max_changes=2, window=600.0)})
    return base.model_copy(
        update={"checks": checks, "maintenance": (window,), "alerting": alerting}
    )


def _per_check(service: AlertService, checks: tuple[CheckConfig, ...]) -> dict[str, set[str]]:
    asks = {
        "firing": service.firing,
        "flapping": service.flapping,
        "maintenance": service.in_maintenance,
        "silenced": service.silenced,
    }
    return {flag: {c.name for c in checks if ask(c.name)} for flag, ask in asks.items()}


def test_flagged_agrees_with_the_per_check_answers(store: Store) -> None:
    """Through firing, flapping, a window opening and closing and silences coming and going."""
    clock = Clock(T0)
    cfg = _config()
    service = AlertService(cfg, store, clock=clock)
    by_name = {c.name: c for c in cfg.checks}

    def agree() -> dict[str, frozenset[str]]:
        flagged = service.flagged()
        assert {k: set(v) for k, v in flagged.items()} == _per_check(service, cfg.checks)
        return flagged

    assert not any(agree().values())
    service.observe(by_name["c5"], result("c5", False))  # firing
    for ok in (False, True, False, True):  # c7 flaps
        service.observe(by_name["c7"], result("c7", ok))
        clock.now += 30
    flagged = agree()
    assert flagged["firing"] == {"c5"}
    assert flagged["flapping"] == {"c7"}
    silence = service.create_silence(silence_body(matchers=['check=~"c1[0-9]"']))
    assert agree()["silenced"] == {f"c1{i}" for i in range(10)}
    service.create_silence(silence_body(matchers=['team="a"', 'check=~"c2.*"'], duration="2h"))
    silenced = agree()["silenced"]
    assert "c21" in silenced
    assert "c22" not in silenced
    assert "c12" in silenced
    clock.now = T0 + 1800  # 01:00: the window opens
    flagged = agree()
    assert flagged["maintenance"] == {"c1"} | {
        c.name for c in cfg.checks if c.labels["team"] == "a"
    }
    service.expire_silence(silence.id)
    assert "c12" not in agree()["silenced"]
    clock.now = T0 + 3 * 3600  # the window and the second silence are over
    assert not agree()["maintenance"]
    assert not agree()["silenced"]
    service.reconfigure(cfg.model_copy(update={"checks": cfg.checks[6:]}))
    assert not agree()["firing"]
    assert agree()["flapping"] == {"c7"}
    asyncio.run(service.aclose())


def test_a_scrape_asks_alerting_once_and_nothing_per_check(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One flagged() per scrape; labels matched again only when windows or silences change."""
    clock = Clock(T0 + 1800)  # inside the window
    cfg = _config()
    service = CountingService(cfg, store, clock=clock)
    service.create_silence(silence_body(matchers=['check=~"c1.*"']))
    service.observe(cfg.checks[4], result("c4", False))
    matched: Counter[str] = Counter()
    mutes, covers = Silence.mutes, maintenance_module._Window.covers

    def counting_mutes(self: Silence, labels: Any, now: float) -> bool:
        matched["silence"] += 1
        return mutes(self, labels, now)

    def counting_covers(self: Any, check: str, labels: Any) -> bool:
        matched["window"] += 1
        return covers(self, check, labels)

    monkeypatch.setattr(Silence, "mutes", counting_mutes)
    monkeypatch.setattr(maintenance_module._Window, "covers", counting_covers)
    metrics = Metrics(location="lab", alert_flags=service.flagged)
    metrics.set_checks(cfg.checks)
    first = metrics.render().decode()
    assert matched == {"silence": N, "window": N}  # once per check, in the first scrape
    assert service.calls == {"flagged": 1}
    matched.clear()
    for _ in range(3):
        assert metrics.render().decode() == first
    assert service.calls == {"flagged": 4}
    assert not matched
    samples = parse_samples(first)
    for flag in ALERT_FLAGS:
        assert sum(v for (name, _), v in samples.items() if name == f"wsprobe_alert_{flag}") == len(
            _per_check(service, cfg.checks)[flag]
        )
    assert value(samples, "wsprobe_alert_firing", check="c4") == 1
    service.calls.clear()
    service.observe(cfg.checks[11], result("c11", False))  # a flag changes: the text follows
    samples = parse_samples(metrics.render().decode())
    assert value(samples, "wsprobe_alert_firing", check="c11") == 1
    assert service.calls == {"flagged": 1}
    asyncio.run(service.aclose())
