"""The agent's own event-loop lag: measured continuously, used to protect measurements.

Every latency wsprobe publishes is the difference of two ``time.perf_counter()``
readings taken in event-loop callbacks. When the loop is busy (or blocked), a
callback whose socket became ready runs late, and that delay lands inside the
measured phase: the agent would report its own congestion as the target's latency.

:class:`LoopLagMonitor` runs a tiny pacer thread that, every ``interval`` seconds,
posts a time-stamped callback to the loop (``call_soon_threadsafe``) and records how
long it waited before running (perf_counter). That wake-up is the same path a socket
that became readable takes, so one sample is "how long would a pong have waited
before we time-stamped it". The monitor then:

- exports the samples (:meth:`drain_samples`, for a histogram) and the latest value
  (:meth:`current`);
- makes probes wait before they start while lag is over the budget
  (:meth:`admit`), for a bounded time so nothing starves;
- remembers recent spikes above the budget, so the runner can ask whether a probe's
  timing window overlapped one (:meth:`overlapped`) and flag the result
  ``lag_suspect``.

The round trip cannot see a stall that stops the pacer too: it posts after the stall
and the loop runs the sample at once. Two kinds do: the whole process waiting for a
CPU (other processes on the core), and the GIL held by a long C call (a garbage
collection of a large heap, a big sort or ``json.dumps``). Both make the pacer sleep
longer than ``interval`` plus one GIL switch interval, and that excess is one
continuous stall, which the sample carries when it is longer than the round trip.

Admission, flagging and the exported samples use the larger of the two: a client
outside the agent (a ``/healthz`` poller, a target's pong) waits through both.
Exporting round trips only once made a 10,000-check agent report an event-loop lag
p99 of 1-2 ms while a ``/healthz`` poller saw stalls of 218-652 ms around its
scrapes. The loop thread's run-queue wait (``run_delay`` in
``/proc/thread-self/schedstat``) is not used: it is a sum over the interval, and on a
shared core the loop waits in many short slices (1-3 ms each under the kernel's
fair scheduler), so it read as a 10-20 ms stall every sample where an outside client
waited a few milliseconds (``python -m bench.lag_truth``: agent p50 21.5 ms against an
outside p50 of 4.3 ms), and its overstated lag held probes back in admission. A wait
for the CPU of the loop's thread alone is sampled by the round trip like any busy
stretch of the loop.

It raises nothing of its own.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import sys
import threading
import time

__all__ = [
    "DEFAULT_ADMIT_TIMEOUT",
    "DEFAULT_LAG_INTERVAL",
    "DEFAULT_MAX_SAMPLES",
    "DEFAULT_MAX_SPIKES",
    "LoopLagMonitor",
]

#: 50 samples per second: a small fraction of one core (measured in docs/bench-log.md),
#: and any stall longer than ``budget + interval`` is always seen above the budget.
DEFAULT_LAG_INTERVAL = 0.02
#: Longest a probe waits in :meth:`LoopLagMonitor.admit`; after it the probe runs
#: anyway (and is likely flagged ``lag_suspect``) rather than silently never running.
DEFAULT_ADMIT_TIMEOUT = 5.0
#: Samples kept for :meth:`LoopLagMonitor.drain_samples` between two drains: at the
#: default interval, 80 s of history; older ones are dropped if nobody drains.
DEFAULT_MAX_SAMPLES = 4096
#: Spike windows kept for :meth:`LoopLagMonitor.overlapped`; enough for probes whose
#: timeout is far longer than the time between spikes.
DEFAULT_MAX_SPIKES = 256


class LoopLagMonitor:
    """Measures the running event loop's lag and gates probe admission on it.

    Args:
        budget: Lag in seconds above which probes wait in :meth:`admit` and timing
            windows are flagged by :meth:`overlapped`.
        interval: Seconds between two lag samples.
        admit_timeout: Longest :meth:`admit` waits before letting a probe through.
        max_samples: Samples buffered for :meth:`drain_samples`.
        max_spikes: Recent spike windows remembered for :meth:`overlapped`.
    """

    def __init__(
        self,
        *,
        budget: float,
        interval: float = DEFAULT_LAG_INTERVAL,
        admit_timeout: float = DEFAULT_ADMIT_TIMEOUT,
        max_samples: int = DEFAULT_MAX_SAMPLES,
        max_spikes: int = DEFAULT_MAX_SPIKES,
    ) -> None:
        if budget <= 0 or interval <= 0 or admit_timeout < 0:
            raise ValueError("budget and interval must be > 0, admit_timeout >= 0")
        self.budget = budget
        self.interval = interval
        self.admit_timeout = admit_timeout
        self._samples: collections.deque[float] = collections.deque(maxlen=max_samples)
        # (start, end, stall) perf_counter windows that contained a stall above the
        # budget, and how long that stall was.
        self._spikes: collections.deque[tuple[float, float, float]] = collections.deque(
            maxlen=max_spikes
        )
        self._last = 0.0
        self._last_tick = time.perf_counter()
        # perf_counter when the pacer posted the sample the loop has not run yet.
        self._sent: float | None = None
        # perf_counter when the pacer last posted a sample (or started).
        self._posted_at = self._last_tick
        # The hidden stall posted with the queued sample, and since when it counts.
        self._sent_hidden = 0.0
        self._sent_since = self._last_tick
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        # Resolved at each tick whose lag is within budget; admit() waiters await it.
        self._calm: asyncio.Future[None] | None = None
        self.samples_total = 0
        self.spikes_total = 0
        self.admit_waits_total = 0
        #: Samples where a stall the round trip cannot see (the process waiting for a
        #: CPU, or the GIL held in C) was longer than the round trip.
        self.hidden_total = 0

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Start sampling the running loop; calling it twice is harmless.

        Raises:
            RuntimeError: no event loop is running in this thread.
        """
        if self.running:
            return
        loop = asyncio.get_running_loop()
        self._last_tick = self._posted_at = time.perf_counter()
        self._sent = None
        stopping = threading.Event()
        thread = threading.Thread(
            target=self._pace,
            args=(loop, stopping),
            name="wsprobe-loop-lag",
            daemon=True,
        )
        self._stopping, self._thread = stopping, thread
        thread.start()

    async def stop(self) -> None:
        """Stop sampling and release every probe waiting in :meth:`admit`."""
        thread, self._thread = self._thread, None
        if thread is not None:
            self._stopping.set()
            # The pacer wakes on the event at once; joining takes microseconds.
            thread.join(timeout=1.0)
        self._sent = None
        self._release()

    @property
    def running(self) -> bool:
        """Whether sampling is on."""
        return self._thread is not None

    def _pace(self, loop: asyncio.AbstractEventLoop, stopping: threading.Event) -> None:
        """Pacer thread: every ``interval``, post a time-stamped callback to the loop.

        A callback posted from another thread wakes the loop like a socket that became
        readable, so its queueing delay is exactly the delay a pong would see. A loop
        timer would not do: its wake-up is rounded to the selector's millisecond
        timeout, which reads as up to 1 ms of lag on an idle loop.

        With each sample goes the longest stall the round trip cannot see, measured
        here, off the loop: how much longer than ``interval`` plus one GIL switch
        interval this thread slept since the previous post (it got no CPU, or could
        not get the GIL back because a C call held it, the way a long garbage
        collection does; the loop could not run either).
        """
        since = time.perf_counter()
        hidden = 0.0
        # Measured from one wake-up to the next, not from the start of each wait: the
        # GIL may also be lost while this thread posts a sample, and a C call holding
        # it from then on would otherwise fall between two measured spans.
        last = time.perf_counter()
        while True:
            if stopping.wait(self.interval):
                return
            # Waking needs the GIL; a holder running bytecode gives it up within one
            # switch interval, so only the excess says the holder was stuck in C.
            now = time.perf_counter()
            overslept = now - last - self.interval - sys.getswitchinterval()
            last = now
            hidden = max(hidden, overslept)
            if self._sent is not None:
                continue  # previous sample still queued: the loop is stalled right now
            sent = time.perf_counter()
            self._sent_hidden, self._sent_since = hidden, since
            self._sent = self._posted_at = sent
            try:
                loop.call_soon_threadsafe(self._tick, sent, hidden, since)
            except RuntimeError:  # loop closed without stop(): nothing left to watch
                return
            since, hidden = sent, 0.0

    def _tick(self, sent: float, hidden: float = 0.0, since: float | None = None) -> None:
        if self._sent != sent:
            return  # stale sample from before stop()
        now = time.perf_counter()
        self._sent = None
        stall = now - sent
        start = self._last_tick
        if hidden > stall:
            # A stall out of the round trip's sight (no CPU, or the GIL held in C),
            # somewhere between the previous post and now.
            stall = hidden
            self.hidden_total += 1
            if since is not None:
                start = min(start, since)
        # The exported sample is the stall, hidden ones included: an outside client
        # (a /healthz poller, a target's pong) waits through those too.
        self._samples.append(stall)
        self.samples_total += 1
        self._last = stall
        if stall > self.budget:
            # The stall lies somewhere between the previous tick (the loop was
            # responsive then) and now; flag that whole window to be safe.
            self._spikes.append((start, now, stall))
            self.spikes_total += 1
        else:
            self._release()
        self._last_tick = now

    def _release(self) -> None:
        calm, self._calm = self._calm, None
        if calm is not None and not calm.done():
            calm.set_result(None)

    # ------------------------------------------------------------------- queries

    def _pending_lag(self, now: float) -> float:
        """How long a stall still in progress (or not reported yet) has lasted so far.

        Either the queued sample has waited that long, or the pacer has not managed to
        post one for longer than it should: it is stuck behind the GIL and will only
        report the stall once it gets it back.
        """
        sent = self._sent
        if sent is not None:
            # The pacer already knows of any hidden stall it posted with the sample.
            return max(now - sent, self._sent_hidden)
        if self._thread is None:
            return 0.0
        return now - self._posted_at - self.interval - sys.getswitchinterval()

    def current(self) -> float:
        """Seconds of lag now: the last sample, or more if the next tick is overdue."""
        return max(self._last, self._pending_lag(time.perf_counter()))

    def overlapped(self, start: float, end: float) -> bool:
        """Whether a lag spike above the budget touched a perf_counter window.

        The runner asks right after a probe returns, which can be before the monitor's
        own overdue tick has run; an overdue tick is counted as a spike in progress.

        Args:
            start: ``time.perf_counter()`` when the probe's timing began.
            end: ``time.perf_counter()`` when it ended.

        Returns:
            True if the window intersects a recorded spike or the ongoing one.
        """
        since = min(self._last_tick, self._sent_since)
        if self._pending_lag(time.perf_counter()) > self.budget and end > since:
            return True
        # Newest first: spikes are appended in time order, so stop once they end
        # before the window starts.
        for spike_start, spike_end, _ in reversed(self._spikes):
            if spike_end < start:
                break
            if spike_start < end:
                return True
        return False

    def stalled(self, start: float, end: float) -> float:
        """Seconds of stalls above the budget that touched a perf_counter window.

        The sum of the spikes that intersect the window (each counted whole, so it may
        overstate a spike that began before the window), plus a stall in progress.

        Args:
            start: ``time.perf_counter()`` when the window began.
            end: when it ended.

        Returns:
            Seconds the agent itself held up callbacks during the window, at least.
        """
        total = 0.0
        since = min(self._last_tick, self._sent_since)
        pending = self._pending_lag(time.perf_counter())
        if pending > self.budget and end > since:
            total += pending
        for spike_start, spike_end, stall in reversed(self._spikes):
            if spike_end < start:
                break
            if spike_start < end:
                total += stall
        return total

    def drain_samples(self) -> list[float]:
        """Return and forget the samples taken since the previous drain (seconds)."""
        out = list(self._samples)
        self._samples.clear()
        return out

    # ------------------------------------------------------------------ admission

    async def admit(self) -> float:
        """Wait while the loop lags over the budget, at most ``admit_timeout``.

        A probe started on a lagging loop would measure the agent instead of the
        target, so it waits in the queue until a sample is back within budget. The
        wait is bounded: past ``admit_timeout`` the probe runs anyway, so a loop that
        never recovers degrades into flagged results, not into silence.

        Returns:
            Seconds spent waiting (0.0 on the fast path).
        """
        if self.current() <= self.budget or not self.running:
            return 0.0
        self.admit_waits_total += 1
        began = time.perf_counter()
        deadline = began + self.admit_timeout
        loop = asyncio.get_running_loop()
        while self.running and self.current() > self.budget:
            remaining = deadline - time.perf_counter()
            if remaining <= 0:
                break
            if self._calm is None or self._calm.done():
                self._calm = loop.create_future()
            # shield: one waiter timing out must not cancel the future others share.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._calm), remaining)
        return time.perf_counter() - began
