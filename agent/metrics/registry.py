"""Prometheus exposition of everything the agent measured (PRODUCT.md section 6).

A custom collector over per-check state rather than global ``Gauge``/``Counter``
objects: a check's series exist exactly as long as the check is configured, so a
reload that removes a check makes all of them vanish at once, and a result that
arrives late for a removed check has nowhere to land. Every series carries
``check``, the check's own labels and the agent's ``location``; agent-wide series
carry ``location``. Label values are bounded: reasons, phases, results, receivers.

This module keeps the per-check series and the order of the exposition; the families
it places come from :mod:`agent.metrics.families` (cached per check),
:mod:`agent.metrics.alerts` (alert state, notifications), :mod:`agent.metrics.fleet`
(histograms by kind) and :mod:`agent.metrics.watch` (watch sessions).

Raises nothing of its own.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from collections.abc import Set as AbstractSet

from agent import __version__
from agent.config.models import CheckConfig
from agent.metrics.alerts import (
    FlagRanges,
    NotificationCounts,
    alert_families,
    alerting_lines,
)
from agent.metrics.families import (
    PER_CHECK,
    LiveFamily,
    StateRanges,
    per_range,
    render_block,
)
from agent.metrics.fleet import FleetHistograms
from agent.metrics.series import SKIP_REASONS, CheckSeries, ResultState, result_state
from agent.metrics.text import (
    LAG_BUCKETS,
    Histogram,
    Pieces,
    fmt,
    header,
    label_str,
    labels,
    single_sample,
)
from agent.metrics.watch import WatchStatsView, watch_families
from agent.result import ProbeResult

__all__ = [
    "CHUNK_BYTES",
    "EAGER_RENDERS",
    "JOIN_CHECKS",
    "SKIP_REASONS",
    "TIME_SLICE",
    "CheckSeries",
    "Metrics",
    "WatchStatsView",
]

#: Characters per piece of a chunked exposition at most. Each piece costs the scrape
#: one event-loop turn, and a probe's callback (or a client's request) that becomes
#: ready meanwhile waits for the whole piece (joined, encoded, written; compressed in a
#: worker thread when gzip). A 10,000-check page is ~18 MB: 1 MiB pieces (~21 per
#: scrape) took 1.6-2 ms each to join and encode, 512 KiB pieces (~37) about 1-1.5 ms,
#: 256 KiB pieces (~70) about 1.2 ms too, for twice the turns: on a saturated loop a
#: scrape takes as many turns of it, each as long as the loop is busy
#: (docs/bench-log.md, "What holds the event loop").
CHUNK_BYTES = 512 * 1024
#: Seconds of rendering work (re-rendering changed checks, reading live series) after
#: which a piece ends early, so no piece blocks the event loop much longer than that:
#: at 2 ms, pieces of 2.5-4.4 ms, the longest holds of the loop in a scrape.
TIME_SLICE = 0.001
#: Results per check between two scrapes whose text is rendered as they arrive
#: (:meth:`Metrics.observe`); later ones leave it to the scrape. Rendering every
#: changed check inside the scrape made the 10,000-check scrape ~1.6 s of rendering on
#: an already busy loop, and its loop-lag samples most of those above 2 ms
#: (docs/bench-log.md). Two, not one: a check probed every 30 s and scraped every 40-60 s
#: gets two results between scrapes. A new check starts with this budget too, so the
#: agent's first scrape finds its checks' text ready (rendering 10,000 checks inside
#: it took ~0.3 s of CPU); a check never scraped renders only its first results early,
#: and one probed much faster than it is scraped at most this many extra times.
EAGER_RENDERS = 2
#: Checks whose stored text one ``str.join`` takes at a time in a scrape: large enough
#: that the per-check Python work is gone (a 10,000-check scrape joins in ~20 ms of CPU
#: instead of ~90 ms adding check by check), small enough that one join of the largest
#: family (~0.7 KB per check) stays well under the time slice.
JOIN_CHECKS = 256
#: Label names the text format gives a meaning of its own.
_SAMPLE_LABELS = frozenset({"le", "quantile"})


class Metrics:
    """The agent's metrics: per-check series plus agent-wide ones.

    Everything read at scrape time from the agent's other services is given here; a
    family whose source is not given is left out of the exposition.

    Args:
        location: the agent's ``location`` label value.
        version: reported by ``wsprobe_build_info``.
        alert_flags: the checks each alert-state flag applies to now, by family
            suffix (``firing``, ``flapping``, ``maintenance``, ``silenced``;
            ``AlertService.flagged``): asked once per scrape, one family per key.
        alert_suppressed: notifications held back, by reason
            (``wsprobe_alert_notifications_suppressed_total``).
        queue_depth: notifications waiting (``AlertService.queue_depth``).
        state_health: ``(healthy, write_errors)`` of the state file
            (``Store.health.snapshot``).
        watch_stats: a watch check's session stats, or None.
        loop_lag_samples: event-loop lag samples since the last call
            (``LoopLagMonitor.drain_samples``).
        notifications: the counts of notification outcomes (a new one when not given).
    """

    def __init__(
        self,
        *,
        location: str,
        version: str = __version__,
        alert_flags: Callable[[], Mapping[str, AbstractSet[str]]] | None = None,
        alert_suppressed: Callable[[], Mapping[str, int]] | None = None,
        queue_depth: Callable[[], int] | None = None,
        state_health: Callable[[], tuple[bool, int]] | None = None,
        watch_stats: Callable[[str], WatchStatsView | None] | None = None,
        loop_lag_samples: Callable[[], list[float]] | None = None,
        notifications: NotificationCounts | None = None,
    ) -> None:
        self.location = location
        self.version = version
        self._checks: dict[str, CheckSeries] = {}
        # The alert-state families' names and text per range of checks, across scrapes.
        self._flag_ranges = FlagRanges()
        # The text of STATE_FAMILIES per range of checks, across scrapes.
        self._state_ranges = StateRanges()
        self.in_flight = 0
        #: Scheduled runs waiting for a concurrency slot or for admission.
        self.runs_waiting = 0
        #: Runs that failed on a deadline the agent's own stalls consumed.
        self.agent_problems = 0
        self.scheduler_lag = Histogram(LAG_BUCKETS)
        self.loop_lag = Histogram(LAG_BUCKETS)
        #: Agent-wide histograms by check kind: phase durations and protocol ping RTTs.
        self.fleet = FleetHistograms()
        self.reload_successful = 0.0
        self.reload_success_timestamp = 0.0
        self._alert_flags = alert_flags
        self._alert_suppressed = alert_suppressed
        self._queue_depth = queue_depth
        self._state_health = state_health
        self._watch_stats = watch_stats
        self._loop_lag_samples = loop_lag_samples
        self._notifications = notifications if notifications is not None else NotificationCounts()

    # ---------------------------------------------------------------- updates

    def set_checks(self, checks: Iterable[CheckConfig], *, location: str | None = None) -> None:
        """Make the configured checks exactly ``checks``.

        Unchanged checks keep their series; removed ones lose every series; a changed
        check starts afresh (its labels may differ). A location change relabels all.
        """
        if location is not None and location != self.location:
            self.location = location
            self._checks.clear()
        # Keyed by the checks' ranges, which change with them.
        self._flag_ranges.clear()
        self._state_ranges.clear()
        old = self._checks
        self._checks = {}
        for check in checks:
            kept = old.get(check.name)
            if kept is not None and kept.check == check:
                # The config just loaded: the one the runner holds (identity is the
                # fast path of series()), and the replaced object is freed.
                kept.check = check
                self._checks[check.name] = kept
            else:
                # A check label named like a histogram's own label would corrupt
                # the series; rename it the way Prometheus renames target conflicts.
                own = {
                    (f"exported_{k}" if k in _SAMPLE_LABELS else k): v
                    for k, v in check.labels.items()
                }
                pairs = {**own, "check": check.name, "location": self.location}
                # Eager from the start: the first scrape finds the text of every check
                # that has a result already rendered, rather than rendering them all.
                self._checks[check.name] = CheckSeries(check, label_str(pairs), eager=EAGER_RENDERS)

    def series(self, check: CheckConfig) -> CheckSeries | None:
        """The series of ``check`` if that exact config is current, else None."""
        series = self._checks.get(check.name)
        # Identity first: nearly always the same object, and pydantic's == walks every field.
        if series is None or (series.check is not check and series.check != check):
            return None
        return series

    def observe(self, check: CheckConfig, result: ProbeResult, *, duration: float) -> bool:
        """Record one result; returns False (recording nothing) for a stale check."""
        series = self.series(check)
        if series is None:
            return False
        series.block = None
        if result.lag_suspect:
            series.lag_suspect += 1
        if result.agent_problem:
            # The agent's own stall failed this run: the check's gauges, counters and
            # distributions keep describing its target.
            self.agent_problems += 1
            return True
        series.last = result
        series.state = result_state(result)
        if check.kind != "watch" or "total" in result.phases:
            series.last_duration = duration
        # else: a watch report between connections keeps the duration of the last
        # connection's establishment (connect through init steps), not a meaningless 0.
        series.count(result)
        self.fleet.observe(check.kind, result)
        if check.metrics.histograms:
            series.observe_histograms(result)
        if result.relay:
            series.observe_relay(result.relay)
        if series.eager:
            # Someone scrapes this check: render its text now, in this result's own
            # callback (~0.15 ms), rather than every changed check inside the next scrape
            # (see EAGER_RENDERS).
            series.block = render_block(check, series)
            series.eager -= 1
        return True

    def skipped(self, check_name: str, reason: str) -> None:
        """Count a run that did not happen (a reason of :data:`SKIP_REASONS`).

        Raises:
            ValueError: ``reason`` is not one of :data:`SKIP_REASONS`.
        """
        series = self._checks.get(check_name)
        if series is not None:
            series.skip(reason)
            series.block = None

    def set_receivers(self, names: Iterable[str]) -> None:
        """Make the configured receivers exactly ``names`` (see NotificationCounts)."""
        self._notifications.set_receivers(names)

    def notification(self, receiver: str, outcome: str) -> None:
        """Count one notification outcome, as the :class:`NotificationCounts` given."""
        self._notifications(receiver, outcome)

    def reloaded(self, *, ok: bool) -> None:
        """Record the outcome of a config (re)load."""
        self.reload_successful = float(ok)
        if ok:
            self.reload_success_timestamp = time.time()

    # ---------------------------------------------------------------- exposition

    def render(self) -> bytes:
        """The whole exposition in Prometheus text format, at once."""
        return "".join(self.render_chunks()).encode("utf-8")

    def render_chunks(
        self, *, chunk_bytes: int = CHUNK_BYTES, time_slice: float = TIME_SLICE
    ) -> Iterator[str]:
        """The exposition in pieces of about ``chunk_bytes`` or ``time_slice`` of work.

        Family by family (the text format wants a family's samples together). A check's
        samples of the families in :data:`CACHED` are rendered once per new result (see
        :attr:`CheckSeries.block`), most often as the result arrives (see
        :data:`EAGER_RENDERS`); the first pass takes every check's block, rendering the
        changed ones, so every check appears with one consistent block even if results
        arrive between pieces. Each family is then joined from the stored text
        :data:`JOIN_CHECKS` checks at a time: one ``str.join`` per range rather than
        Python work per check. The state families come from the states taken in the
        first pass, a range's text kept while they are the same
        (:class:`~agent.metrics.families.StateRanges`). The web handler yields to the
        event loop between pieces (an empty piece is such a turn) so a large scrape
        never stalls running probes.
        """
        out = Pieces(chunk_bytes, time_slice)
        entries = list(self._checks.values())
        blocks: list[tuple[str, ...]] = []
        states: list[ResultState] = []
        # Picked out in this pass, which yields on time: a pass of its own over 10,000
        # checks held the loop for 4-6 ms in one piece.
        watches: list[CheckSeries] = []
        for n, series in enumerate(entries, 1):
            if series.check.kind == "watch":
                watches.append(series)
            block = series.block
            if block is None:  # new result since it was last rendered
                block = series.block = render_block(series.check, series)
                out.add("", costly=True)
            elif not n % JOIN_CHECKS:
                out.add("", costly=True)
            series.eager = EAGER_RENDERS
            blocks.append(block)
            states.append(series.state)
            if out.due():
                yield out.take()
        for name, doc, typ, index, from_state in PER_CHECK:
            out.family(header(name, doc, typ))
            for start in range(0, len(blocks), JOIN_CHECKS):
                if from_state:
                    text = self._state_ranges.texts(entries, states, start, JOIN_CHECKS, out)[index]
                else:
                    text = "".join([b[index] for b in blocks[start : start + JOIN_CHECKS]])
                out.add(text, costly=True)
                if out.due():
                    yield out.take()
        for name, doc, typ, text_of in self._live_families():
            out.family(header(name, doc, typ))
            of = watches if name.startswith("wsprobe_watch_") else entries
            for start in range(0, len(of), JOIN_CHECKS):
                out.add(text_of(of[start : start + JOIN_CHECKS]), costly=True)
                if out.due():
                    yield out.take()
        out.family("")
        out.add("".join(self._agent_lines()))
        yield out.take()

    def _live_families(self) -> list[LiveFamily]:
        """Families read at scrape time (alert state, watch sessions): never cached."""
        families = alert_families(self._alert_flags, self._flag_ranges)
        if self._watch_stats is not None:
            families += [per_range(family) for family in watch_families(self._watch_stats)]
        return families

    def _agent_lines(self) -> Iterator[str]:
        loc = label_str({"location": self.location})
        if self._loop_lag_samples is not None:
            for sample in self._loop_lag_samples():
                self.loop_lag.observe(sample)
        name = "wsprobe_scheduler_lag_seconds"
        yield header(name, "Delay from a run's due time to its start, in seconds.", "histogram")
        yield self.scheduler_lag.text(name, loc)
        name = "wsprobe_event_loop_lag_seconds"
        yield header(name, "How late the agent's event loop ran a timer, in seconds.", "histogram")
        yield self.loop_lag.text(name, loc)
        yield from self.fleet.lines(loc)
        name = "wsprobe_agent_problem_runs_total"
        yield single_sample(
            name,
            "Runs that failed on a deadline consumed by the agent's own stalls (not counted"
            " as the check's failures).",
            "counter",
            loc,
            self.agent_problems,
        )
        yield single_sample(
            "wsprobe_probes_in_flight", "Probes running now.", "gauge", loc, self.in_flight
        )
        yield single_sample(
            "wsprobe_runs_waiting",
            "Runs waiting for a concurrency slot or admission: the backlog.",
            "gauge",
            loc,
            self.runs_waiting,
        )
        yield from alerting_lines(
            loc,
            notifications=self._notifications,
            suppressed=self._alert_suppressed,
            queue_depth=self._queue_depth,
        )
        if self._state_health is not None:
            healthy, errors = self._state_health()
            yield single_sample(
                "wsprobe_state_write_errors_total",
                "Writes to the state file that failed.",
                "counter",
                loc,
                errors,
            )
            yield single_sample(
                "wsprobe_state_healthy",
                "Whether the state file takes writes (1) or not (0).",
                "gauge",
                loc,
                int(healthy),
            )
        yield single_sample(
            "wsprobe_config_last_reload_successful",
            "Whether the last configuration reload succeeded.",
            "gauge",
            loc,
            fmt(self.reload_successful),
        )
        yield single_sample(
            "wsprobe_config_last_reload_success_timestamp_seconds",
            "When the configuration was last loaded, Unix seconds.",
            "gauge",
            loc,
            fmt(self.reload_success_timestamp),
        )
        name = "wsprobe_build_info"
        yield header(name, "Always 1; the version label is the running version.", "gauge")
        yield f"{name}{labels(loc, label_str({'version': self.version}))} 1\n"
