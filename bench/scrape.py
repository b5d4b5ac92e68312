"""Reading the agent's ``/metrics`` the way the capacity and cores scenarios need.

A line filter rather than a full parser: with 10,000 checks the exposition is
megabytes, and parsing it must not steal the agent's core mid-window.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

__all__ = ["histogram_quantile", "sums"]


def sums(
    texts: Iterable[str], wanted: tuple[str, ...]
) -> tuple[dict[str, float], dict[str, dict[float, float]]]:
    """Counter sums (by name, ``result`` and ``reason``) and histogram buckets by family.

    Args:
        texts: one exposition per agent; their samples are added together.
        wanted: name prefixes of the samples to read; others are skipped unparsed.
    """
    counters: dict[str, float] = defaultdict(float)
    buckets: dict[str, dict[float, float]] = defaultdict(lambda: defaultdict(float))
    for text in texts:
        for line in text.splitlines():
            if not line.startswith(wanted):
                continue
            name, _, rest = line.partition("{")
            labels, _, value = rest.rpartition("} ")
            number = float(value.split()[0])
            if name.endswith("_bucket"):
                le = labels.split('le="', 1)[1].split('"', 1)[0]
                buckets[name[: -len("_bucket")]][float(le)] += number
                continue
            key = name
            for label in ("result", "reason"):
                marker = label + '="'
                if marker in labels:
                    key += "{" + label + "=" + labels.split(marker, 1)[1].split('"', 1)[0] + "}"
            counters[key] += number
    return counters, buckets


def histogram_quantile(
    q: float, before: dict[float, float], after: dict[float, float]
) -> float | None:
    """histogram_quantile over the delta of two cumulative bucket snapshots."""
    bounds = sorted(after)
    counts = [after[b] - before.get(b, 0.0) for b in bounds]
    if not counts or counts[-1] <= 0:
        return None
    rank = q * counts[-1]
    prev_bound, prev_count = 0.0, 0.0
    for bound, count in zip(bounds, counts, strict=True):
        if count >= rank:
            if bound == float("inf"):
                return prev_bound
            span = count - prev_count
            frac = (rank - prev_count) / span if span else 1.0
            return prev_bound + (bound - prev_bound) * frac
        prev_bound, prev_count = bound, count
    return prev_bound
