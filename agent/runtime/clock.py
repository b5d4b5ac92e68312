"""The clocks and timers the scheduler runs on, behind one small interface.

Two clocks with different jobs: the wall clock (``time.time``) says *which* moment a
run is for (a check's phase is anchored at the Unix epoch, and results carry Unix
times), while the monotonic clock measures *how long* to wait. The wall clock can step
(NTP, a VM resumed, an operator's ``date -s``); the monotonic one never does, so every
wait is measured on it. Timers are part of the interface so that a test can inject a
clock whose time it moves by hand, both clocks together or the wall clock alone.

Raises nothing.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Protocol

__all__ = ["SYSTEM_CLOCK", "Clock", "SystemClock", "Timer"]


class Timer(Protocol):
    """A pending call (``asyncio.TimerHandle``)."""

    def cancel(self) -> None:
        """Do not make the call."""
        ...


class Clock(Protocol):
    """Wall time, monotonic time, and timers on the monotonic clock."""

    def time(self) -> float:
        """Unix seconds; may step forwards or backwards."""
        ...

    def monotonic(self) -> float:
        """Seconds from an arbitrary origin; never steps, only differences mean anything."""
        ...

    def call_later(self, delay: float, callback: Callable[[], None]) -> Timer:
        """Call ``callback`` in the running event loop ``delay`` monotonic seconds from now."""
        ...


class SystemClock:
    """The process's clocks and the running event loop's timers."""

    def time(self) -> float:
        """``time.time()``."""
        return time.time()

    def monotonic(self) -> float:
        """``time.monotonic()``."""
        return time.monotonic()

    def call_later(self, delay: float, callback: Callable[[], None]) -> Timer:
        """``loop.call_later``: asyncio and uvloop both time it on the monotonic clock."""
        return asyncio.get_running_loop().call_later(delay, callback)


SYSTEM_CLOCK = SystemClock()
