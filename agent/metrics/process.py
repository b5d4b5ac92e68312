"""The standard ``process_*`` and ``python_*`` families of prometheus_client.

Every Prometheus-instrumented process exports them, and dashboards and alerts written
for any Python exporter read them (resident memory, CPU seconds, open descriptors,
garbage collections). They are a few dozen samples, so prometheus_client's own writer
renders them on each scrape; the per-check families stay with the fast writer of
:mod:`agent.metrics.text`, and :func:`with_process` appends these after them.
Raises nothing of its own.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from prometheus_client import (
    CollectorRegistry,
    GCCollector,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)

__all__ = ["process_text", "with_process"]

#: A registry of its own: the default one is global and would also hold whatever a
#: library registered there.
_REGISTRY = CollectorRegistry(auto_describe=False)
ProcessCollector(registry=_REGISTRY)
PlatformCollector(registry=_REGISTRY)
GCCollector(registry=_REGISTRY)


def process_text() -> str:
    """The process and Python runtime families in Prometheus text format, read now."""
    return generate_latest(_REGISTRY).decode("utf-8")


def with_process(chunks: Iterable[str]) -> Iterator[str]:
    """``chunks`` (the agent's own exposition), then the process and Python families.

    Args:
        chunks: pieces of the exposition, e.g. ``Metrics.render_chunks()``.

    Yields:
        Each piece of ``chunks``, then one piece read when the others are done.
    """
    yield from chunks
    yield process_text()
