"""Prometheus text format (0.0.4), written directly and fast.

An agent with 10,000 checks exposes over a million samples; prometheus_client's
generic writer needs tens of seconds for that on a busy core, blocking the event loop
that times every probe. Here each check's label set is escaped once (when the check
is configured) and every sample line is one f-string, and the output is produced in
chunks so the caller can yield to the loop between them. Correctness is checked in
the tests with ``prometheus_client.parser`` and ``promtool check metrics``.

Also holds :class:`Histogram`, the per-series accumulator, and the blackbox-compatible
``probe_*`` families shared by ``/metrics`` and ``/probe``. Raises nothing of its own.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping

from agent.result import ProbeResult

__all__ = [
    "BLACKBOX",
    "LAG_BUCKETS",
    "LATENCY_BUCKETS",
    "RESULTS",
    "Histogram",
    "blackbox_lines",
    "fmt",
    "header",
    "label_str",
    "labels",
    "render_probe",
]

#: Seconds; loopback RTTs are sub-millisecond, slow WANs and TLS reach seconds.
LATENCY_BUCKETS: tuple[float, ...] = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip
#: Seconds of scheduler and event-loop lag: healthy is well under 10 ms.
#: Sub-millisecond buckets so the "loop lag p99 < 2 ms" target is readable from them.
LAG_BUCKETS: tuple[float, ...] = (
    0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0, 2.5, 5.0, 10.0, 30.0,
)  # fmt: skip
RESULTS = ("success", "failure")


def fmt(value: float) -> str:
    """A sample value as Prometheus writes it (``+Inf``, ``NaN``, shortest float)."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return repr(float(value))


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _pair(name: str, value: str) -> str:
    return name + '="' + _escape(value) + '"'


def label_str(pairs: Mapping[str, str]) -> str:
    """``a="x",b="y"`` with values escaped, sorted by name: a series' fixed labels."""
    return ",".join(_pair(name, pairs[name]) for name in sorted(pairs))


def labels(base: str, extra: str = "") -> str:
    """The ``{...}`` part of a sample line from pre-rendered label strings."""
    if base and extra:
        return f"{{{base},{extra}}}"
    if base or extra:
        return f"{{{base or extra}}}"
    return ""


def header(name: str, doc: str, typ: str) -> str:
    """The ``# HELP`` and ``# TYPE`` lines of a family."""
    doc = doc.replace("\\", "\\\\").replace("\n", "\\n")
    return f"# HELP {name} {doc}\n# TYPE {name} {typ}\n"


_LE_CACHE: dict[tuple[float, ...], tuple[str, ...]] = {}


def _le_labels(buckets: tuple[float, ...]) -> tuple[str, ...]:
    cached = _LE_CACHE.get(buckets)
    if cached is None:
        cached = _LE_CACHE[buckets] = (*(f'le="{b!r}"' for b in buckets), 'le="+Inf"')
    return cached


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

    def lines(self, name: str, base: str, extra: str = "") -> Iterator[str]:
        """The ``_bucket``, ``_count`` and ``_sum`` sample lines of this histogram."""
        prefix = f"{base},{extra}" if base and extra else base or extra
        sep = "," if prefix else ""
        cumulative = 0
        les = _le_labels(self.buckets)
        for le, n in zip(les, self.counts, strict=False):
            cumulative += n
            yield f"{name}_bucket{{{prefix}{sep}{le}}} {cumulative}\n"
        yield f"{name}_bucket{{{prefix}{sep}{les[-1]}}} {self.count}\n"
        lbl = labels(prefix)
        yield f"{name}_count{lbl} {self.count}\n"
        yield f"{name}_sum{lbl} {fmt(self.sum)}\n"


#: name -> (help, type) of the blackbox_exporter-compatible gauges, in output order.
BLACKBOX: dict[str, str] = {
    "probe_success": "Whether the probe succeeded.",
    "probe_duration_seconds": "How long the probe took, in seconds.",
    "probe_websocket_duration_seconds": "Duration of each phase of the last probe, in seconds.",
    "probe_websocket_status_code": "HTTP status of the upgrade response (0 when none).",
    "probe_websocket_connection_upgraded": "Whether the connection was upgraded (status 101).",
    "probe_ssl_earliest_cert_expiry": "Earliest certificate expiry in the chain, Unix seconds.",
    "probe_tls_version_info": "The TLS version the last probe negotiated.",
}


def blackbox_lines(name: str, result: ProbeResult, duration: float, base: str) -> Iterable[str]:
    """The sample lines of blackbox family ``name`` for one result."""
    lbl = labels(base)
    if name == "probe_success":
        return (f"probe_success{lbl} {int(result.success)}\n",)
    if name == "probe_duration_seconds":
        return (f"probe_duration_seconds{lbl} {fmt(duration)}\n",)
    if name == "probe_websocket_duration_seconds":
        return [
            f"{name}{labels(base, _pair('phase', phase))} {fmt(seconds)}\n"
            for phase, seconds in result.phases.items()
            if phase != "total"
        ]
    if name == "probe_websocket_status_code":
        return (f"{name}{lbl} {result.status_code or 0}\n",)
    if name == "probe_websocket_connection_upgraded":
        return (f"{name}{lbl} {int(result.status_code == 101)}\n",)
    tls = result.tls
    if name == "probe_ssl_earliest_cert_expiry" and tls and tls.cert_not_after is not None:
        return (f"{name}{lbl} {fmt(tls.cert_not_after)}\n",)
    if name == "probe_tls_version_info" and tls and tls.version:
        return (f"{name}{labels(base, _pair('version', tls.version))} 1\n",)
    return ()


def render_probe(result: ProbeResult, *, duration: float) -> bytes:
    """Exposition text of one on-demand probe: the ``probe_*`` gauges, unlabelled.

    Prometheus adds the target labels through relabelling, as with blackbox_exporter.
    """
    out: list[str] = []
    for name, doc in BLACKBOX.items():
        lines = list(blackbox_lines(name, result, duration, ""))
        if lines:
            out.append(header(name, doc, "gauge"))
            out.extend(lines)
    return "".join(out).encode("utf-8")
