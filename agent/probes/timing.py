"""Deadlines and phase clocks shared by every probe kind."""

from __future__ import annotations

import asyncio
import time

from agent.result import ProbeResult

__all__ = ["add_phase", "bounded"]


def bounded(deadline: float, limit: float | None = None) -> asyncio.Timeout:
    """Time-box an ``async with`` body: until ``deadline`` (perf_counter) or ``limit`` s.

    A plain ``asyncio.timeout`` rather than a generator-based context manager: a probe
    enters about ten of these, and the generator was measurable (docs/bench-log.md).
    The remaining time is computed here, at the ``async with``.

    Raises:
        TimeoutError: the box expired (from the ``async with`` body).
    """
    remaining = deadline - time.perf_counter()
    if limit is not None:
        remaining = min(remaining, limit)
    return asyncio.timeout(max(remaining, 0.0))


def add_phase(result: ProbeResult, phase: str, seconds: float) -> None:
    """Add ``seconds`` to ``result.phases[phase]``.

    Summed, not overwritten: a followed redirect runs the phases again.
    """
    result.phases[phase] = result.phases.get(phase, 0.0) + seconds
