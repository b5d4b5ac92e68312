"""Exposition completeness: counters at 0 from the start, process and Python collectors,
and a meaningful ``probe_duration_seconds`` for watch checks."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable

import pytest
from prometheus_client.parser import text_string_to_metric_families

from agent.config.models import CheckConfig
from agent.metrics.alerts import NOTIFICATION_OUTCOMES
from agent.metrics.process import with_process
from agent.metrics.registry import SKIP_REASONS, Metrics
from agent.result import ProbeResult, Reason
from agent.watch import WatchStats
from tests.tools import require_tool

URL = "ws://127.0.0.1:9/feed"
#: Counters whose label values are only known once they happen (22 failure reasons per
#: check would multiply a 10,000-check exposition); documented in docs/metrics.md.
LAZY_COUNTERS = {"wsprobe_probe_failures"}


def _stats(messages: int = 0, **reconnects: int) -> WatchStats:
    return WatchStats(
        connected=True,
        reconnects=dict(reconnects),
        last_message_ts=time.time(),
        messages_total=messages,
        session_started=time.time(),
        last_rtt=None,
        stale=False,
    )


def _metrics(
    watch_stats: Callable[[str], WatchStats | None] | None = None,
) -> tuple[Metrics, CheckConfig, CheckConfig]:
    metrics = Metrics(
        location="eu-1",
        alert_flags=lambda: {"firing": frozenset()},
        queue_depth=lambda: 0,
        watch_stats=watch_stats,
    )
    probe = CheckConfig(name="plain", url=URL, interval=10.0, timeout=2.0)
    watch = CheckConfig(name="feed", kind="watch", url=URL, interval=10.0, timeout=2.0)
    metrics.set_checks([probe, watch])
    metrics.set_receivers(["ops", "pager"])
    return metrics, probe, watch


def _result(check: CheckConfig, *, success: bool, total: float | None) -> ProbeResult:
    result = ProbeResult(check=check.name, kind=check.kind, url=URL, started_at=time.time())
    if total is not None:
        result.phases = {"connect": total / 2, "handshake": total / 2, "total": total}
    if success:
        result.success = True
        result.status_code = 101
        return result
    return result.fail(Reason.CLOSED, "server closed the connection (1006)")


def _counters(text: str) -> dict[str, dict[frozenset[tuple[str, str]], float]]:
    out: dict[str, dict[frozenset[tuple[str, str]], float]] = {}
    for family in text_string_to_metric_families(text):
        if family.type == "counter":
            series = out.setdefault(family.name, {})
            for sample in family.samples:
                if sample.name.endswith("_total"):
                    series[frozenset(sample.labels.items())] = sample.value
    return out


def test_every_counter_is_present_at_zero_before_any_event() -> None:
    """Every counter series that an event creates already exists, at 0, before it."""
    stats = _stats()
    metrics, probe, watch = _metrics(lambda name: stats if name == "feed" else None)
    fresh = _counters(metrics.render().decode())

    metrics.observe(probe, _result(probe, success=False, total=0.1), duration=0.1)
    metrics.observe(watch, _result(watch, success=True, total=0.1), duration=0.1)
    for reason in SKIP_REASONS:
        metrics.skipped("plain", reason)
    for outcome in NOTIFICATION_OUTCOMES:
        metrics.notification("ops", outcome)
    stats = _stats(5, closed=1, ping_timeout=2)
    busy = _counters(metrics.render().decode())

    for name, series in busy.items():
        if name.startswith(("python_", "process_")) or name in LAZY_COUNTERS:
            continue
        assert name in fresh, f"{name} appears only after its first event"
        assert set(series) <= set(fresh[name]), f"{name} gains series after events"
        assert all(v == 0 for v in fresh[name].values()), f"{name} does not start at 0"
    feed = {("check", "feed"), ("location", "eu-1")}
    reconnects = fresh["wsprobe_watch_reconnects"]
    assert {dict(k)["reason"] for k in reconnects} == {r.value for r in Reason}
    assert frozenset(feed | {("reason", "closed")}) in busy["wsprobe_watch_reconnects"]
    plain = ("check", "plain")
    skipped = {dict(k)["reason"] for k in fresh["wsprobe_probes_skipped"] if plain in k}
    assert skipped == set(SKIP_REASONS)
    notified = {(dict(k)["receiver"], dict(k)["outcome"]) for k in fresh["wsprobe_notifications"]}
    assert notified == {(r, o) for r in ("ops", "pager") for o in NOTIFICATION_OUTCOMES}


def test_receivers_follow_the_config() -> None:
    """A reload keeps a kept receiver's counts and drops a removed receiver's series."""
    metrics, _, _ = _metrics()
    metrics.notification("ops", "success")
    metrics.notification("pager", "failed")
    metrics.set_receivers(["ops", "chat"])
    counts = _counters(metrics.render().decode())["wsprobe_notifications"]
    by_pair = {(dict(k)["receiver"], dict(k)["outcome"]): v for k, v in counts.items()}
    assert by_pair[("ops", "success")] == 1
    assert by_pair[("chat", "success")] == 0
    assert not any(receiver == "pager" for receiver, _ in by_pair)


def test_process_and_python_collectors_appended() -> None:
    """/metrics carries the standard process_* and python_* families, and promtool accepts it."""
    metrics, probe, _ = _metrics()
    metrics.observe(probe, _result(probe, success=True, total=0.02), duration=0.02)
    text = "".join(with_process(metrics.render_chunks())).encode()
    assert text.startswith(metrics.render())
    families = {f.name: f for f in text_string_to_metric_families(text.decode())}
    assert families["process_resident_memory_bytes"].samples[0].value > 0
    assert families["process_cpu_seconds"].type == "counter"
    assert families["process_open_fds"].samples[0].value > 0
    info = families["python_info"].samples[0].labels
    assert info["major"] == "3"
    assert {s.labels["generation"] for s in families["python_gc_collections"].samples} == {
        "0", "1", "2",
    }  # fmt: skip
    promtool = require_tool("promtool", install="Debian package prometheus")
    proc = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True)
    assert proc.returncode == 0, proc.stdout.decode() + proc.stderr.decode()


@pytest.mark.parametrize("success", [True, False], ids=["live", "down"])
def test_watch_duration_is_the_last_connection_time(success: bool) -> None:
    """A watch report between connections keeps the last connect's duration, not 0."""
    metrics, _, watch = _metrics()

    def duration() -> float:
        text = metrics.render().decode()
        for family in text_string_to_metric_families(text):
            if family.name == "probe_duration_seconds":
                return next(s.value for s in family.samples if s.labels["check"] == "feed")
        raise AssertionError("no probe_duration_seconds for the watch check")

    metrics.observe(watch, _result(watch, success=True, total=0.125), duration=0.125)
    assert duration() == pytest.approx(0.125)
    metrics.observe(watch, _result(watch, success=success, total=None), duration=0.0)
    assert duration() == pytest.approx(0.125)
    metrics.observe(watch, _result(watch, success=True, total=0.25), duration=0.25)
    assert duration() == pytest.approx(0.25)


def test_degraded_gauge_follows_the_last_run() -> None:
    """wsprobe_probe_degraded is 1 after a run over a limit and 0 after one within them."""
    metrics, probe, _ = _metrics()

    def degraded() -> float | None:
        for family in text_string_to_metric_families(metrics.render().decode()):
            if family.name == "wsprobe_probe_degraded":
                return next(s.value for s in family.samples if s.labels["check"] == "plain")
        return None

    assert degraded() is None  # like probe_success: only after a first run
    slow = _result(probe, success=True, total=0.8)
    slow.judge_limits({"handshake": 0.1})
    metrics.observe(probe, slow, duration=0.8)
    assert degraded() == 1
    metrics.observe(probe, _result(probe, success=True, total=0.02), duration=0.02)
    assert degraded() == 0
