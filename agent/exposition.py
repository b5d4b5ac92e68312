"""Building blocks of the exposition: histograms, metric families, ``probe_*`` gauges.

Shared by the agent-wide collector (:mod:`agent.metrics`) and the one-result
``/probe`` answer, which must expose the same blackbox_exporter-compatible gauges.
Raises nothing of its own.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.exposition import generate_latest
from prometheus_client.metrics_core import Metric

from agent.result import ProbeResult

__all__ = [
    "LAG_BUCKETS",
    "LATENCY_BUCKETS",
    "RESULTS",
    "Families",
    "Histogram",
    "add_blackbox",
    "render_probe",
]

LATENCY_BUCKETS: tuple[float, ...] = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip
#: Seconds of scheduler and event-loop lag: healthy is well under 10 ms.
LAG_BUCKETS: tuple[float, ...] = (
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
)  # fmt: skip
RESULTS = ("success", "failure")


class Histogram:
    """A classic cumulative Prometheus histogram over fixed buckets."""

    __slots__ = ("buckets", "count", "counts", "sum")

    def __init__(self, buckets: tuple[float, ...] = LATENCY_BUCKETS) -> None:
        self.buckets = buckets
        self.counts = [0] * len(buckets)
        self.count = 0
        self.sum = 0.0

    def observe(self, value: float) -> None:
        """Add one observation (seconds)."""
        self.count += 1
        self.sum += value
        for i, bound in enumerate(self.buckets):
            if value <= bound:
                self.counts[i] += 1
                break

    def add_to(self, metric: Metric, labels: dict[str, str]) -> None:
        """Append this histogram's ``_bucket``, ``_count`` and ``_sum`` samples."""
        cumulative = 0
        for bound, n in zip(self.buckets, self.counts, strict=True):
            cumulative += n
            metric.add_sample(
                metric.name + "_bucket", {**labels, "le": _float_str(bound)}, cumulative
            )
        metric.add_sample(metric.name + "_bucket", {**labels, "le": "+Inf"}, self.count)
        metric.add_sample(metric.name + "_count", labels, self.count)
        metric.add_sample(metric.name + "_sum", labels, self.sum)


def _float_str(value: float) -> str:
    return repr(float(value))


class Families:
    """Metric families being filled during one collection, created on first use."""

    def __init__(self) -> None:
        self._by_name: dict[str, Metric] = {}

    def get(self, name: str, doc: str, typ: str) -> Metric:
        metric = self._by_name.get(name)
        if metric is None:
            metric = self._by_name[name] = Metric(name, doc, typ)
        return metric

    def gauge(self, name: str, doc: str, labels: dict[str, str], value: float) -> None:
        self.get(name, doc, "gauge").add_sample(name, labels, value)

    def counter(self, name: str, doc: str, labels: dict[str, str], value: float) -> None:
        # The family is named without _total; exposition adds it back on TYPE/HELP.
        self.get(name, doc, "counter").add_sample(name + "_total", labels, value)

    def histogram(self, name: str, doc: str, labels: dict[str, str], hist: Histogram) -> None:
        hist.add_to(self.get(name, doc, "histogram"), labels)

    def __iter__(self) -> Iterator[Metric]:
        return iter(self._by_name.values())


def add_blackbox(
    out: Families, result: ProbeResult, duration: float, labels: dict[str, str]
) -> None:
    """Add the blackbox_exporter-compatible ``probe_*`` gauges of one result."""
    out.gauge("probe_success", "Whether the probe succeeded.", labels, float(result.success))
    out.gauge("probe_duration_seconds", "How long the probe took, in seconds.", labels, duration)
    for phase, seconds in result.phases.items():
        if phase == "total":
            continue
        out.gauge(
            "probe_websocket_duration_seconds",
            "Duration of each phase of the last probe, in seconds.",
            {**labels, "phase": phase},
            seconds,
        )
    out.gauge(
        "probe_websocket_status_code",
        "HTTP status of the upgrade response (0 when none was received).",
        labels,
        float(result.status_code or 0),
    )
    out.gauge(
        "probe_websocket_connection_upgraded",
        "Whether the connection was upgraded to WebSocket (status 101).",
        labels,
        float(result.status_code == 101),
    )
    if result.tls is not None:
        if result.tls.cert_not_after is not None:
            out.gauge(
                "probe_ssl_earliest_cert_expiry",
                "Earliest certificate expiry in the peer's chain, Unix seconds.",
                labels,
                result.tls.cert_not_after,
            )
        if result.tls.version:
            out.gauge(
                "probe_tls_version_info",
                "The TLS version the last probe negotiated.",
                {**labels, "version": result.tls.version},
                1.0,
            )


class _ProbeOnly:
    """A one-result collector for ``/probe`` (blackbox style: no agent state)."""

    def __init__(self, result: ProbeResult, duration: float) -> None:
        self._result = result
        self._duration = duration

    def collect(self) -> Iterator[Metric]:
        out = Families()
        add_blackbox(out, self._result, self._duration, {})
        return iter(out)


def render_probe(result: ProbeResult, *, duration: float) -> bytes:
    """Exposition text of one on-demand probe: the ``probe_*`` gauges, unlabelled.

    Prometheus adds the target labels through relabelling, as with blackbox_exporter.
    """
    return generate_latest(_ProbeOnly(result, duration))
