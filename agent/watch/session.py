"""One held WebSocket session: reconnect, re-initialise, read, judge, report.

A :class:`WatchSession` runs a task only while connecting (attempt, init steps,
backoff sleep; :mod:`~agent.watch.connecting`). Once connected, a plain session's
messages arrive from its connection's callbacks
(:class:`~agent.probes.connections.delivering.DeliveringConnection`), and so does the
connection's end, which starts the next connect task; a session speaking a
``protocol:`` keeps its task, waiting for the protocol's reader to end. Its timers:
report and protocol ping on the loop's shared :func:`~agent.watch.ticker.ticker`,
staleness and grace on ``loop.call_later`` only while they can fire. Every
``check.interval``, and at once when liveness flips, it hands ``on_result`` a liveness
:class:`~agent.result.ProbeResult`.

Nothing escapes: failures become disconnect reasons and failed results. Only
``start()`` misuse raises ``RuntimeError``.
"""

from __future__ import annotations

import asyncio
import logging
import random as _random
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from websockets import exceptions as wsx

from agent.config import CheckConfig
from agent.config.watch import WatchConfig
from agent.probes.connections.delivering import DeliveringConnection
from agent.probes.connections.reading import ReadingConnection
from agent.probes.errors import ProbeError
from agent.probes.errors.mapping import translate
from agent.probes.script.matchers import Message
from agent.result import ProbeResult, Reason
from agent.watch.backoff import Backoff
from agent.watch.connecting import attempt, close_bounded, protocol_ended
from agent.watch.gate import connect_gate
from agent.watch.liveness import Verdict, WatchStats, judge
from agent.watch.messages import FeedState
from agent.watch.outage import Outage
from agent.watch.pinger import Pinger
from agent.watch.report import ConnectFacts, liveness_result
from agent.watch.stale import StaleTimer
from agent.watch.ticker import Tick, ticker

if TYPE_CHECKING:  # the protocol modules load their codecs: only when a check speaks one
    from agent.probes.protocols.base import Session

__all__ = ["GOING_AWAY", "WatchSession"]

log = logging.getLogger(__name__)

#: Close code sent by :meth:`WatchSession.stop` by default (RFC 6455 "going away").
GOING_AWAY = 1001

# Shared by every check without a ``watch`` block (frozen): one copy per session would
# cost ~1 KiB each (a pydantic model's __dict__ and fields-set).
_DEFAULT_WATCH = WatchConfig()


class WatchSession:
    """Holds one connection for a ``watch`` check for as long as it runs.

    Args:
        check: The check; its ``watch`` block (or the defaults) sets the policy.
        on_result: Called with a liveness result every ``check.interval`` and on
            every liveness change. Must not block.
        random: Returns a float in [0, 1) for backoff jitter; injected by tests.
        gate: Bounds connection attempts in flight; default: the event loop's shared
            gate (:func:`~agent.watch.gate.connect_gate`).
    """

    __slots__ = (
        "_backoff",
        "_conn",
        "_connect_result",
        "_connected_at",
        "_down",
        "_failure",
        "_feed",
        "_gaps_reported",
        "_gate",
        "_last_live",
        "_pinger",
        "_protocol",
        "_random",
        "_report_handle",
        "_session_wall",
        "_stale",
        "_state_since",
        "_stopping",
        "_task",
        "check",
        "gave_up",
        "on_result",
        "watch",
    )

    def __init__(
        self,
        check: CheckConfig,
        *,
        on_result: Callable[[ProbeResult], None],
        random: Callable[[], float] = _random.random,
        gate: asyncio.Semaphore | None = None,
    ) -> None:
        self.check = check
        self.watch: WatchConfig = check.watch or _DEFAULT_WATCH
        self.on_result = on_result
        self.gave_up = False
        self._random = random
        self._gate = gate
        self._backoff = Backoff(
            initial_delay=self.watch.initial_delay,
            max_delay=self.watch.max_delay,
            max_retries=self.watch.max_retries,
            random=random,
        )
        self._feed = FeedState(self.watch)
        self._task: asyncio.Task[None] | None = None
        # Reading while a protocol session holds it, delivering for a plain session.
        self._conn: ReadingConnection | DeliveringConnection | None = None
        # A bug met while handling a message, reported as the disconnect's cause.
        self._failure: ProbeError | None = None
        self._protocol: Session | None = None
        # The connect's whole result until its first report (which carries its phases),
        # then only the connection's facts.
        self._connect_result: ProbeResult | ConnectFacts | None = None
        self._pinger = Pinger(interval=self.watch.ping_interval, timeout=check.ping_timeout)
        self._report_handle: Tick | None = None
        self._stale = StaleTimer(
            self.watch.stale_after,
            feed=self._feed,
            on_stale=self._maybe_report,
        )
        self._down = Outage(check, on_grace=self._maybe_report)
        self._gaps_reported = 0
        self._state_since = 0.0  # when the current connected/disconnected state began
        self._connected_at = 0.0
        self._session_wall: float | None = None
        self._last_live = True
        self._stopping = False

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Start watching in the running event loop (returns at once).

        Raises:
            RuntimeError: Already started, or no running event loop.
        """
        if self._report_handle is not None:  # set from here on (the task may be gone)
            raise RuntimeError("WatchSession already started")
        asyncio.get_running_loop()  # RuntimeError outside one, before any state changes
        self._stale.since = self._state_since = time.perf_counter()
        # Spread the first connects of many sessions started together (agent start,
        # reload) over initial_delay instead of hitting the target all at once.
        self._connect_later(self._random() * self.watch.initial_delay)
        self._report_handle = ticker().call_later(self.check.interval, self._report_tick)
        self._stale.arm()

    async def stop(self, *, code: int = GOING_AWAY) -> None:
        """Stop watching: cancel timers and tasks, close the connection with ``code``.

        The close handshake is bounded by ``check.close_timeout``. Safe to call twice.

        Args:
            code: WebSocket close code sent to the server (1001 "going away").
        """
        self._stopping = True
        if self._report_handle is not None:
            self._report_handle.cancel()
        self._stale.cancel()
        self._down.cancel_grace()
        conn, protocol = self._conn, self._protocol
        ping_task = self._pinger.stop()
        tasks = {t for t in (self._task, ping_task) if t is not None and not t.done()}
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)
        if conn is not None:
            await close_bounded(conn, protocol, code=code, close_timeout=self.check.close_timeout)
        self._conn = None

    def stats(self) -> WatchStats:
        """A snapshot for metrics and the API (cheap; called at scrape time)."""
        feed = self._feed
        return WatchStats(
            connected=self._conn is not None,
            reconnects=dict(self._down.reconnects),
            last_message_ts=feed.last_message_ts,
            messages_total=feed.messages,
            session_started=self._session_wall,
            last_rtt=self._pinger.last_rtt,
            stale=self._stale.is_stale(time.perf_counter()),
            matched_total=feed.matched,
            answered_total=feed.answered,
            gave_up=self.gave_up,
            gaps_total=feed.gaps,
            missed_total=feed.missed,
        )

    # ------------------------------------------------------------------ connecting

    def _connect_later(self, delay: float) -> None:
        """Start the connect task: wait ``delay`` seconds, then make one attempt."""
        task = asyncio.get_running_loop().create_task(
            self._run(delay), name=f"watch:{self.check.name}"
        )
        task.add_done_callback(self._run_done)
        self._task = task

    async def _run(self, delay: float) -> None:
        if delay > 0:
            await asyncio.sleep(delay)
        if self._stopping:
            return
        conn = await self._connect()
        if conn is None:
            self._next_attempt(was_connected=False)
        elif self._protocol is not None:
            await self._hold(conn)
            self._next_attempt(was_connected=True)
        # else: held by the connection's callbacks from now on (connection_ended)

    def _run_done(self, task: asyncio.Task[None]) -> None:
        if self._task is task:
            self._task = None  # a finished task is not kept while connected
        # Every failure inside _run is caught; this is the net for a bug outside those.
        if not task.cancelled() and task.exception() is not None:
            log.error("watch %s: session task crashed", self.check.name, exc_info=task.exception())

    def _next_attempt(self, *, was_connected: bool) -> None:
        """After a failed attempt or a lost connection: the next connect task, or give up."""
        if self._stopping:
            return
        held = time.perf_counter() - self._connected_at
        if was_connected and held >= self.watch.effective_reset_after:
            self._backoff.reset()
        delay = self._backoff.next_delay()
        if delay is not None:
            self._connect_later(delay)
            return
        self.gave_up = True
        log.warning(
            "watch %s: gave up after %d reconnect attempts",
            self.check.name,
            self._backoff.attempts,
        )
        self._report(self._verdict())

    async def _connect(self) -> ReadingConnection | DeliveringConnection | None:
        """One connection attempt; on failure, records the reason and returns None."""
        result, opened = await attempt(self.check, self._gate or connect_gate())
        if opened is None:
            self._went_down(result.reason or Reason.INTERNAL, result.message, was_connected=False)
            return None
        reading, variables, protocol = opened
        conn: ReadingConnection | DeliveringConnection = reading
        if protocol is None:
            # Nothing reads with recv() any more: messages go to message_received.
            conn = DeliveringConnection.take_over(
                reading, self, close_timeout=self.check.close_timeout
            )
        self._conn, self._protocol = conn, protocol
        self._failure = None
        self._connect_result = result
        self._feed.connected(variables)
        self._connected_at = self._state_since = time.perf_counter()
        self._session_wall = time.time()
        self._down.cancel_grace()
        if protocol is not None:
            protocol.watch(self._on_protocol_message)
            self._pinger.start(conn, measure=lambda until: protocol.ping(until=until))
        else:
            self._pinger.start(conn)
        self._stale.arm()  # a stall noticed while disconnected must still be reported
        self._maybe_report()
        return conn

    # ------------------------------------------------------------------ connected, plain

    def message_received(self, data: str | bytes) -> None:
        """One message of a plain session (its connection's callback): judge, answer."""
        conn = self._conn
        if conn is None or self._failure is not None:
            return
        try:
            matched, reply = self._feed.on_message(data)
            if reply is not None:
                assert isinstance(conn, DeliveringConnection)
                conn.send(reply)
            elif matched and self.watch.stale_after is not None:
                self._stale.fresh()
        except Exception as exc:  # a bug: end this connection, reconnect, say why
            log.exception("watch %s: unexpected error while reading", self.check.name)
            self._failure = translate(exc, "watch")
            conn.transport.abort()

    def connection_ended(self, exc: wsx.ConnectionClosed) -> None:
        """A plain session's connection is gone (its callback): record why, reconnect."""
        if self._conn is None:  # stopped: stop() already took it
            return
        error = self._failure or translate(exc, "watch")
        self._disconnected()
        # A ping timeout aborts the transport, so the connection reports a loss;
        # the cause worth reporting is the missing pong.
        failure = self._pinger.failure or error
        self._went_down(failure.reason, str(failure), was_connected=True)
        self._next_attempt(was_connected=True)

    def _disconnected(self) -> None:
        self._pinger.stop()
        self._conn = self._protocol = None
        self._session_wall = None

    # ------------------------------------------------------------------ connected, protocol

    async def _hold(self, conn: ReadingConnection | DeliveringConnection) -> None:
        """Wait until the protocol session's reader ends; record why it ended."""
        protocol = self._protocol
        assert protocol is not None
        try:
            failure = await protocol_ended(self.check.name, protocol, self._pinger)
        finally:
            self._pinger.stop()
            await protocol.stop()
            self._disconnected()
            if not self._stopping:
                conn.transport.abort()
        self._went_down(failure.reason, str(failure), was_connected=True)

    def _on_protocol_message(self, data: Message | None) -> None:
        """One message of the protocol's subscriptions (its keepalives never get here)."""
        if self._feed.on_protocol_message(data) and self.watch.stale_after is not None:
            self._stale.fresh()

    def _went_down(self, reason: Reason, message: str, *, was_connected: bool) -> None:
        """Count one disconnect or failed attempt and start the grace clock."""
        if self._stopping:
            return
        now = time.perf_counter()
        if was_connected:
            self._state_since = now
        # else: still down since an earlier failure; the grace clock keeps running.
        grace_left = max(self.watch.grace - (now - self._state_since), 0.0)
        self._down.went_down(reason, message, grace_left=grace_left, was_connected=was_connected)

    def _report_tick(self) -> None:
        if self._stopping:
            return
        self._report_handle = ticker().call_later(self.check.interval, self._report_tick)
        self._report(self._verdict())

    def _maybe_report(self) -> None:
        """Report at once when liveness changed since the last report."""
        if self._stopping:
            return
        verdict = self._verdict()
        if verdict.live != self._last_live:
            self._report(verdict)

    def _verdict(self) -> Verdict:
        now = time.perf_counter()
        feed = self._feed
        return judge(
            now=now,
            connected=self._conn is not None,
            state_since=self._state_since,
            watching_since=self._stale.since,
            grace=self.watch.grace,
            gave_up=self.gave_up,
            attempts=self._backoff.attempts,
            down_reason=self._down.reason,
            down_message=self._down.message,
            last_match=feed.last_match,
            stale_after=self.watch.stale_after,
            rate=feed.rate.rate(now) if feed.rate is not None else None,
            min_rate=self.watch.min_rate,
            rate_window=self.watch.rate_window,
        )

    def _report(self, verdict: Verdict) -> None:
        self._last_live = verdict.live
        connect = self._connect_result if self._conn is not None else None
        result = liveness_result(
            self.check,
            verdict,
            connect=connect,
            pings=self._pinger.take_rtts(),
            new_gaps=self._feed.gaps - self._gaps_reported,
        )
        if isinstance(connect, ProbeResult):
            # Reported once; later reports copy only the connection's facts.
            self._connect_result = ConnectFacts.of(connect)
        self._gaps_reported = self._feed.gaps
        try:
            self.on_result(result)
        except Exception:
            log.exception("watch %s: on_result callback failed", self.check.name)
