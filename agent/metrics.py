"""Prometheus exposition of everything the agent measured (PRODUCT.md section 6).

A custom collector over per-check state rather than global ``Gauge``/``Counter``
objects: a check's series exist exactly as long as the check is configured, so a
reload that removes a check makes all of them vanish at once, and a result that
arrives late for a removed check has nowhere to land. Every series carries
``check``, the check's own labels and the agent's ``location``; agent-wide series
carry ``location``. Label values are bounded: reasons, phases, results, receivers.

Raises nothing of its own.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from prometheus_client.exposition import generate_latest
from prometheus_client.metrics_core import Metric

from agent import __version__
from agent.config.models import CheckConfig
from agent.exposition import LAG_BUCKETS, RESULTS, Families, Histogram, add_blackbox
from agent.result import ProbeResult

__all__ = ["CheckSeries", "Metrics", "WatchStatsView"]


class WatchStatsView(Protocol):
    """What metrics read from a watch session's stats (agent.watch.WatchStats)."""

    @property
    def connected(self) -> bool: ...

    @property
    def reconnects(self) -> Mapping[str, int]: ...

    @property
    def last_message_ts(self) -> float | None: ...


@dataclass(slots=True)
class CheckSeries:
    """Everything exported for one configured check."""

    labels: dict[str, str]
    last: ProbeResult | None = None
    last_duration: float = 0.0
    results: Counter[str] = field(default_factory=lambda: Counter(dict.fromkeys(RESULTS, 0)))
    failures: Counter[str] = field(default_factory=Counter)
    skipped: Counter[str] = field(default_factory=Counter)
    lag_suspect: int = 0
    ping_rtt: Histogram = field(default_factory=Histogram)
    phases: dict[str, Histogram] = field(default_factory=dict)
    relay: dict[str, Histogram] = field(default_factory=dict)


class Metrics:
    """The agent's metrics: per-check series plus agent-wide ones.

    Args:
        location: the agent's ``location`` label value.
        version: reported by ``wsprobe_build_info``.
    """

    def __init__(self, *, location: str, version: str = __version__) -> None:
        self.location = location
        self.version = version
        self._checks: dict[str, tuple[CheckConfig, CheckSeries]] = {}
        self.in_flight = 0
        self.scheduler_lag = Histogram(LAG_BUCKETS)
        self.loop_lag = Histogram(LAG_BUCKETS)
        self.notifications: Counter[tuple[str, str]] = Counter()
        self.reload_successful = 0.0
        self.reload_success_timestamp = 0.0
        #: Pulled at scrape time; set by the daemon when the services exist.
        self.alert_firing: Callable[[str], bool] | None = None
        self.queue_depth: Callable[[], int] | None = None
        self.watch_stats: Callable[[str], WatchStatsView | None] | None = None
        self.loop_lag_samples: Callable[[], list[float]] | None = None

    # ---------------------------------------------------------------- updates

    def set_checks(self, checks: Iterable[CheckConfig], *, location: str | None = None) -> None:
        """Make the configured checks exactly ``checks``.

        Unchanged checks keep their series; removed ones lose every series; a changed
        check starts afresh (its labels may differ). A location change relabels all.
        """
        if location is not None and location != self.location:
            self.location = location
            self._checks.clear()
        old = self._checks
        self._checks = {}
        for check in checks:
            kept = old.get(check.name)
            if kept is not None and kept[0] == check:
                self._checks[check.name] = kept
            else:
                labels = {**check.labels, "check": check.name, "location": self.location}
                self._checks[check.name] = (check, CheckSeries(labels=labels))

    def series(self, check: CheckConfig) -> CheckSeries | None:
        """The series of ``check`` if that exact config is current, else None."""
        entry = self._checks.get(check.name)
        if entry is None or entry[0] != check:
            return None
        return entry[1]

    def observe(self, check: CheckConfig, result: ProbeResult, *, duration: float) -> bool:
        """Record one result; returns False (recording nothing) for a stale check."""
        series = self.series(check)
        if series is None:
            return False
        series.last = result
        series.last_duration = duration
        series.results["success" if result.success else "failure"] += 1
        if not result.success and result.reason is not None:
            series.failures[result.reason.value] += 1
        if result.lag_suspect:
            series.lag_suspect += 1
        for rtt in result.pings:
            series.ping_rtt.observe(rtt)
        for phase, seconds in result.phases.items():
            series.phases.setdefault(phase, Histogram()).observe(seconds)
        for receiver, seconds in result.relay.items():
            series.relay.setdefault(receiver, Histogram()).observe(seconds)
        return True

    def skipped(self, check_name: str, reason: str) -> None:
        """Count a run that did not happen (``max_instances``, ``missed``)."""
        entry = self._checks.get(check_name)
        if entry is not None:
            entry[1].skipped[reason] += 1

    def notification(self, receiver: str, outcome: str) -> None:
        """Count one notification outcome (AlertService's ``on_notification``)."""
        self.notifications[(receiver, outcome)] += 1

    def reloaded(self, *, ok: bool) -> None:
        """Record the outcome of a config (re)load."""
        self.reload_successful = float(ok)
        if ok:
            self.reload_success_timestamp = time.time()

    # ---------------------------------------------------------------- exposition

    def collect(self) -> Iterator[Metric]:
        """Build every family from the current state (prometheus_client Collector)."""
        out = Families()
        for check, series in self._checks.values():
            self._collect_check(out, check, series)
        self._collect_agent(out)
        return iter(out)

    def render(self) -> bytes:
        """The whole exposition in Prometheus text format."""
        return generate_latest(self)

    def _collect_check(self, out: Families, check: CheckConfig, series: CheckSeries) -> None:
        labels = series.labels
        if series.last is not None:
            add_blackbox(out, series.last, series.last_duration, labels)
        for result, n in sorted(series.results.items()):
            out.counter("wsprobe_probes", "Probe runs by result.", {**labels, "result": result}, n)
        for reason, n in sorted(series.failures.items()):
            out.counter(
                "wsprobe_probe_failures",
                "Failed probe runs by reason.",
                {**labels, "reason": reason},
                n,
            )
        for reason, n in sorted(series.skipped.items()):
            out.counter(
                "wsprobe_probes_skipped",
                "Scheduled runs that did not happen, by reason.",
                {**labels, "reason": reason},
                n,
            )
        out.counter(
            "wsprobe_probes_lag_suspect",
            "Runs whose timing overlapped an event-loop lag spike of the agent.",
            labels,
            series.lag_suspect,
        )
        if series.ping_rtt.count or check.pings:
            out.histogram(
                "wsprobe_ping_rtt_seconds",
                "Round-trip time of protocol pings, in seconds.",
                labels,
                series.ping_rtt,
            )
        for phase, hist in series.phases.items():
            out.histogram(
                "wsprobe_phase_duration_seconds",
                "Duration of each probe phase, in seconds.",
                {**labels, "phase": phase},
                hist,
            )
        for receiver, hist in series.relay.items():
            out.histogram(
                "wsprobe_relay_delivery_seconds",
                "Relay delivery latency per receiving connection, in seconds.",
                {**labels, "receiver": receiver},
                hist,
            )
        if self.alert_firing is not None:
            out.gauge(
                "wsprobe_alert_firing",
                "Whether the check's alert is firing.",
                labels,
                float(self.alert_firing(check.name)),
            )
        if self.watch_stats is not None and check.kind == "watch":
            stats = self.watch_stats(check.name)
            if stats is not None:
                self._collect_watch(out, labels, stats)

    @staticmethod
    def _collect_watch(out: Families, labels: dict[str, str], stats: WatchStatsView) -> None:
        out.gauge(
            "wsprobe_watch_connected",
            "Whether the watch session is connected.",
            labels,
            float(stats.connected),
        )
        for reason, n in sorted(stats.reconnects.items()):
            out.counter(
                "wsprobe_watch_reconnects",
                "Reconnections of the watch session, by the reason it dropped.",
                {**labels, "reason": reason},
                n,
            )
        if stats.last_message_ts is not None:
            out.gauge(
                "wsprobe_watch_last_message_timestamp_seconds",
                "When the watch session last received a message, Unix seconds.",
                labels,
                stats.last_message_ts,
            )

    def _collect_agent(self, out: Families) -> None:
        loc = {"location": self.location}
        if self.loop_lag_samples is not None:
            for sample in self.loop_lag_samples():
                self.loop_lag.observe(sample)
        out.histogram(
            "wsprobe_scheduler_lag_seconds",
            "Delay between a run's scheduled time and its actual start, in seconds.",
            loc,
            self.scheduler_lag,
        )
        out.histogram(
            "wsprobe_event_loop_lag_seconds",
            "How late the agent's event loop ran a timer, in seconds.",
            loc,
            self.loop_lag,
        )
        out.gauge("wsprobe_probes_in_flight", "Probes running now.", loc, self.in_flight)
        for (receiver, outcome), n in sorted(self.notifications.items()):
            out.counter(
                "wsprobe_notifications",
                "Notification deliveries by receiver and outcome.",
                {**loc, "receiver": receiver, "outcome": outcome},
                n,
            )
        if self.queue_depth is not None:
            out.gauge(
                "wsprobe_notification_queue_depth",
                "Notifications waiting in the outbox.",
                loc,
                self.queue_depth(),
            )
        out.gauge(
            "wsprobe_config_last_reload_successful",
            "Whether the last configuration reload succeeded.",
            loc,
            self.reload_successful,
        )
        out.gauge(
            "wsprobe_config_last_reload_success_timestamp_seconds",
            "When the configuration was last loaded successfully, Unix seconds.",
            loc,
            self.reload_success_timestamp,
        )
        out.gauge(
            "wsprobe_build_info",
            "Always 1; the version label tells the running wsprobe version.",
            {**loc, "version": self.version},
            1.0,
        )
