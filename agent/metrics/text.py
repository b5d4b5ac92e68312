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
from collections.abc import Iterable, Mapping
from itertools import accumulate
from time import perf_counter

from agent.result import ProbeResult

__all__ = [
    "BLACKBOX",
    "LAG_BUCKETS",
    "LATENCY_BUCKETS",
    "PHASE_BUCKETS",
    "RESULTS",
    "Histogram",
    "Pieces",
    "blackbox_lines",
    "fmt",
    "header",
    "label_str",
    "labels",
    "render_probe",
    "single_sample",
]

#: Seconds; loopback RTTs are sub-millisecond, slow WANs and TLS reach seconds.
LATENCY_BUCKETS: tuple[float, ...] = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip
#: Seconds; phase durations, two buckets per decade (1, 2.5) from 1 ms to 10 s. Coarser
#: than :data:`LATENCY_BUCKETS` because a check exports one such histogram per phase it
#: measures (six for a plain ``ws://`` probe): the bulk of the exposition. The fine
#: sub-millisecond grid stays on ``wsprobe_ping_rtt_seconds``.
PHASE_BUCKETS: tuple[float, ...] = (0.001, 0.0025, 0.01, 0.025, 0.1, 0.25, 1.0, 2.5, 10.0)
#: Seconds of scheduler and event-loop lag: healthy is well under 10 ms.
#: Sub-millisecond buckets so the "loop lag p99 < 2 ms" target is readable from them.
LAG_BUCKETS: tuple[float, ...] = (
    0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0, 2.5, 5.0, 10.0, 30.0,
)  # fmt: skip
RESULTS = ("success", "failure")


def fmt(value: float) -> str:
    """A sample value as Prometheus writes it (``+Inf``, ``NaN``, shortest float)."""
    if type(value) is float and not value.is_integer() and math.isfinite(value):
        return repr(value)  # the common case first: a measured duration
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


def single_sample(name: str, doc: str, typ: str, loc: str, value: object) -> str:
    """A family of one sample labelled ``loc``: its header and ``name{loc} value``."""
    return f"{header(name, doc, typ)}{name}{{{loc}}} {value}\n"


_LE_CACHE: dict[tuple[float, ...], tuple[str, ...]] = {}


def _le_values(buckets: tuple[float, ...]) -> tuple[str, ...]:
    """The quoted ``le`` label values of ``buckets``, then ``"+Inf"``."""
    cached = _LE_CACHE.get(buckets)
    if cached is None:
        cached = _LE_CACHE[buckets] = (*(f'"{b!r}"' for b in buckets), '"+Inf"')
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

    def text(self, name: str, base: str, extra: str = "") -> str:
        """The ``_bucket``, ``_count`` and ``_sum`` sample lines of this histogram.

        The lines' fixed parts come from a skeleton shared by every histogram of that
        name and buckets; only the labels and values are slotted in (slice
        assignments and one join, ~35 % faster than an f-string per line: a check's
        histograms are most of the cost of rendering it).
        """
        prefix = f"{base},{extra}" if base and extra else base or extra
        skeleton, buckets = _skeleton(name, self.buckets)
        parts = skeleton.copy()
        end = 4 * buckets
        parts[1:end:4] = [f"{prefix}," if prefix else ""] * buckets
        parts[3:end:4] = map(str, [*accumulate(self.counts), self.count])
        parts[end + 1] = parts[end + 5] = labels(prefix)
        parts[end + 3] = str(self.count)
        parts[end + 7] = fmt(self.sum)
        return "".join(parts)


_SKELETONS: dict[tuple[str, tuple[float, ...]], tuple[list[str], int]] = {}


def _skeleton(name: str, buckets: tuple[float, ...]) -> tuple[list[str], int]:
    """A histogram's lines as four parts each (text, labels, text, value), and the
    number of bucket lines; the labels and values are empty slots to fill."""
    cached = _SKELETONS.get((name, buckets))
    if cached is None:
        parts: list[str] = []
        les = _le_values(buckets)
        for i, le in enumerate(les):
            # Each line's newline starts the next line's first part.
            parts += [("\n" if i else "") + f"{name}_bucket{{", "", f"le={le}}} ", ""]
        parts += [f"\n{name}_count", "", " ", "", f"\n{name}_sum", "", " ", "", "\n"]
        cached = _SKELETONS[(name, buckets)] = (parts, len(les))
    return cached


class Pieces:
    """Accumulates exposition text and says when a piece is due.

    A family's HELP/TYPE header is held back until its first sample, so families
    without samples print nothing. Time is read every 64 units of work (an
    ``add``; a ``costly`` one counts 64), so loops over thousands of checks with
    nothing to say still end their piece on time.

    Args:
        chunk_bytes: a piece is due once it holds this many characters.
        time_slice: seconds of work after which a piece is due anyway (possibly empty).
    """

    __slots__ = ("_buf", "_deadline", "_head", "_size", "_work", "chunk_bytes", "time_slice")

    def __init__(self, chunk_bytes: int, time_slice: float) -> None:
        self.chunk_bytes = chunk_bytes
        self.time_slice = time_slice
        self._buf: list[str] = []
        self._size = 0
        self._work = 0
        self._head = ""
        self._deadline = 0.0  # 0: set by the next add

    def family(self, head: str) -> None:
        """Start a family whose header goes before its first sample."""
        self._head = head

    def add(self, text: str, *, costly: bool = False) -> None:
        """Append samples; ``costly`` when producing them took real work."""
        if not self._deadline:
            # The slice starts with work on this piece, not when the previous one was
            # taken: the time the event loop spent elsewhere in between does not count.
            self._deadline = perf_counter() + self.time_slice
        self._work += 64 if costly else 1
        if not text:
            return
        if self._head:
            self._buf.append(self._head)
            self._head = ""
        self._buf.append(text)
        self._size += len(text)

    def due(self) -> bool:
        """Whether the piece reached ``chunk_bytes`` or its time slice."""
        if self._size >= self.chunk_bytes:
            return True
        if self._work < 64:
            return False
        self._work = 0
        return perf_counter() >= self._deadline

    def take(self) -> str:
        """The piece so far (possibly empty) and a fresh start for the next one."""
        piece = "".join(self._buf)
        self._buf = []
        self._size = self._work = 0
        self._deadline = 0.0
        return piece


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
