"""The alert-state families: each flag's gauge per check, read at every scrape."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from agent.config.models import CheckConfig
from agent.metrics.alerts import ALERT_FLAGS
from agent.metrics.registry import JOIN_CHECKS, Metrics


def _flags_by_family(metrics: Metrics) -> dict[str, set[str]]:
    """Per alert-state family, the checks whose gauge is 1; every check has a sample."""
    out: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(metrics.render().decode()):
        if family.name.startswith("wsprobe_alert_") and family.name[14:] in ALERT_FLAGS:
            assert len(family.samples) == JOIN_CHECKS + 3
            out[family.name] = {s.labels["check"] for s in family.samples if s.value == 1}
    return out


def test_each_flag_family_shows_its_own_checks_across_ranges_and_scrapes() -> None:
    """Flags of different families over the same ranges of checks never mix, scrape after scrape."""
    flags: dict[str, set[str]] = {flag: set() for flag in ALERT_FLAGS}
    metrics = Metrics(location="eu-1", alert_flags=lambda: flags)
    names = [f"c{i:04d}" for i in range(JOIN_CHECKS + 3)]  # two ranges of checks
    metrics.set_checks(
        [CheckConfig(name=n, url="ws://127.0.0.1:9/", interval=10.0, timeout=2.0) for n in names]
    )
    first, last = names[1], names[-1]
    assert _flags_by_family(metrics) == {f"wsprobe_alert_{flag}": set() for flag in ALERT_FLAGS}
    rounds = [
        {"firing": {first}, "flapping": {last}, "maintenance": set(), "silenced": {first, last}},
        {"firing": {last}, "flapping": {first}, "maintenance": {first}, "silenced": set()},
        {"firing": set(), "flapping": {first}, "maintenance": {first}, "silenced": {last}},
    ]
    for wanted in rounds:
        for flag, checks in wanted.items():
            flags[flag] = set(checks)
        got = _flags_by_family(metrics)
        assert got == {f"wsprobe_alert_{flag}": checks for flag, checks in wanted.items()}
