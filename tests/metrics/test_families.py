"""A check's series: counters, histograms made on first use, and their exposition."""

from __future__ import annotations

import time

import pytest
from prometheus_client.parser import text_string_to_metric_families

from agent.config.models import CheckConfig, CheckMetricsConfig
from agent.metrics.families import STATE_FAMILIES
from agent.metrics.registry import JOIN_CHECKS, Metrics
from agent.metrics.series import SKIP_REASONS, CheckSeries, result_state
from agent.result import ProbeResult, Reason

URL = "ws://127.0.0.1:9/feed"


def _check(name: str, *, histograms: bool = False) -> CheckConfig:
    return CheckConfig(
        name=name,
        url=URL,
        interval=10.0,
        timeout=2.0,
        metrics=CheckMetricsConfig(histograms=histograms),
    )


def _result(
    check: CheckConfig,
    *,
    reason: Reason | None = None,
    pings: tuple[float, ...] = (0.0004, 0.0006),
    relay: dict[str, float] | None = None,
) -> ProbeResult:
    result = ProbeResult(check=check.name, kind="probe", url=URL, started_at=time.time())
    result.phases = {"connect": 0.002, "handshake": 0.003, "total": 0.01}
    result.relay = dict(relay or {})
    if reason is not None:
        return result.fail(reason, "failed")
    result.success = True
    result.status_code = 101
    result.pings = list(pings)
    return result


def _one_check(*, histograms: bool = False) -> tuple[Metrics, CheckConfig, CheckSeries]:
    """A registry with one check, ``feed``, and that check's series."""
    metrics = Metrics(location="eu-1")
    check = _check("feed", histograms=histograms)
    metrics.set_checks([check])
    series = metrics.series(check)
    assert series is not None
    return metrics, check, series


def _samples(metrics: Metrics, check: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """The check's samples, keyed by name and the labels beyond check and location."""
    out = {}
    for family in text_string_to_metric_families(metrics.render().decode()):
        for sample in family.samples:
            if sample.labels.get("check") == check:
                extra = {k: v for k, v in sample.labels.items() if k not in ("check", "location")}
                out[(sample.name, frozenset(extra.items()))] = sample.value
    return out


def test_counters_by_result_failure_reason_and_skip_reason() -> None:
    """Runs count by result, failures by reason (from the first), skips by every reason."""
    metrics, check, series = _one_check()
    metrics.observe(check, _result(check), duration=0.01)
    assert series.failures == {}
    assert not any(name == "wsprobe_probe_failures_total" for name, _ in _samples(metrics, "feed"))
    reasons = [Reason.PING_TIMEOUT, Reason.HANDSHAKE_STATUS, Reason.PING_TIMEOUT]
    for reason in reasons:
        metrics.observe(check, _result(check, reason=reason), duration=0.5)
    metrics.observe(check, _result(check), duration=0.01)
    for reason in ("missed", "overload", "missed"):
        metrics.skipped("feed", reason)
    # The API's "counts" is this dict: results in their documented order.
    assert list(series.results.items()) == [("success", 2), ("failure", 3)]
    assert series.failures == {"ping_timeout": 2, "handshake_status": 1}
    assert series.skipped == {"max_instances": 0, "missed": 2, "overload": 1}
    samples = _samples(metrics, "feed")
    for result, n in series.results.items():
        assert samples[("wsprobe_probes_total", frozenset({("result", result)}))] == n
    for reason, n in series.failures.items():
        assert samples[("wsprobe_probe_failures_total", frozenset({("reason", reason)}))] == n
    for reason in SKIP_REASONS:
        key = ("wsprobe_probes_skipped_total", frozenset({("reason", reason)}))
        assert samples[key] == series.skipped[reason]


def test_unknown_skip_reason_is_refused() -> None:
    """A skip reason outside SKIP_REASONS is a clear error, not a new series."""
    metrics = Metrics(location="eu-1")
    metrics.set_checks([_check("feed")])
    with pytest.raises(ValueError, match="unknown skip reason 'paused'"):
        metrics.skipped("feed", "paused")


@pytest.mark.parametrize("histograms", [False, True], ids=["histograms-off", "histograms-on"])
def test_check_histograms_made_when_first_measured(histograms: bool) -> None:
    """The check's ping and phase histograms exist once measured, and only when opted in."""
    metrics, check, series = _one_check(histograms=histograms)
    metrics.observe(check, _result(check, pings=()), duration=0.01)
    assert series.ping_rtt is None  # no pong yet: no (empty) ping histogram
    assert set(series.phases) == ({"connect", "handshake", "total"} if histograms else set())
    metrics.observe(check, _result(check), duration=0.01)
    names = {name for name, _ in _samples(metrics, "feed")}
    if not histograms:
        assert series.ping_rtt is None
        assert series.phases == {}
        assert not any(name.startswith("wsprobe_check_") for name in names)
        return
    assert series.ping_rtt is not None
    assert series.ping_rtt.count == 2
    assert {
        "wsprobe_check_ping_rtt_seconds_count",
        "wsprobe_check_phase_duration_seconds_count",
    } <= names
    handshake = frozenset({("phase", "handshake")})
    assert _samples(metrics, "feed")[("wsprobe_check_phase_duration_seconds_count", handshake)] == 2


def test_relay_histograms_made_on_the_first_delivery() -> None:
    """Relay delivery histograms appear per receiving connection once one is timed."""
    metrics, check, series = _one_check()
    metrics.observe(check, _result(check), duration=0.01)
    assert series.relay == {}
    metrics.observe(check, _result(check, relay={"rx-a": 0.002, "rx-b": 0.3}), duration=0.01)
    metrics.observe(check, _result(check, relay={"rx-a": 0.004}), duration=0.01)
    assert {name: hist.count for name, hist in series.relay.items()} == {"rx-a": 2, "rx-b": 1}
    samples = _samples(metrics, "feed")
    for receiver, n in (("rx-a", 2), ("rx-b", 1)):
        key = ("wsprobe_relay_delivery_seconds_count", frozenset({("receiver", receiver)}))
        assert samples[key] == n


def test_reload_of_an_equal_check_keeps_its_series_with_the_new_config() -> None:
    """An unchanged check keeps its counts and holds the config just loaded, not the old one."""
    metrics = Metrics(location="eu-1")
    old = _check("feed")
    metrics.set_checks([old])
    metrics.observe(old, _result(old), duration=0.01)
    new = _check("feed")
    assert new == old
    assert new is not old
    metrics.set_checks([new])
    series = metrics.series(new)
    assert series is not None
    assert series.check is new
    assert series.results["success"] == 1


def _state_samples(metrics: Metrics) -> dict[tuple[str, str], float]:
    """(family, check) -> value of the families written from each check's state."""
    names = {name for name, _, _, _ in STATE_FAMILIES}
    return {
        (family.name, sample.labels["check"]): sample.value
        for family in text_string_to_metric_families(metrics.render().decode())
        if family.name in names
        for sample in family.samples
    }


def _wanted(results: dict[str, ProbeResult]) -> dict[tuple[str, str], float]:
    out: dict[tuple[str, str], float] = {}
    for name, result in results.items():
        status = result.status_code or 0
        out[("probe_success", name)] = int(result.success)
        out[("probe_websocket_status_code", name)] = status
        out[("probe_websocket_connection_upgraded", name)] = int(status == 101)
        out[("wsprobe_probe_degraded", name)] = int(bool(result.degraded))
    return out


def test_state_families_follow_each_checks_last_result_across_ranges() -> None:
    """Success, status, upgrade and degraded follow every check's last result, range by range."""
    metrics = Metrics(location="eu-1")
    checks = [_check(f"c{i:04d}") for i in range(JOIN_CHECKS + 3)]  # two ranges
    metrics.set_checks(checks)
    assert _state_samples(metrics) == {}  # no result yet: no sample
    last = {c.name: _result(c) for c in checks[:-1]}  # the last check never reports
    for check in checks[:-1]:
        metrics.observe(check, last[check.name], duration=0.01)
    assert _state_samples(metrics) == _wanted(last)
    first, far = checks[1], checks[JOIN_CHECKS + 1]
    rejected = _result(far, reason=Reason.HANDSHAKE_STATUS)
    rejected.status_code = 503
    degraded = _result(first)
    degraded.degraded = ["gap"]
    agent_problem = _result(first, reason=Reason.PING_TIMEOUT)
    agent_problem.agent_problem = True
    for check, result in ((far, rejected), (first, degraded), (first, agent_problem)):
        metrics.observe(check, result, duration=0.01)
        if not result.agent_problem:
            last[check.name] = result
        assert _state_samples(metrics) == _wanted(last)


def test_checks_in_the_same_state_share_it() -> None:
    """Equal result states are one object, so a check's state costs it a reference."""
    check = _check("feed")
    a, b = _result(check), _result(check)
    assert result_state(a) is result_state(b)
    assert result_state(a) == (1, 101, 0)
    failed = _result(check, reason=Reason.PING_TIMEOUT)
    assert result_state(failed) == (0, 0, 0)
