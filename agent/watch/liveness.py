"""Judging a held session: is it live, and if not, why.

Pure code, no I/O and no clock of its own: every function takes ``now`` (a
``time.perf_counter()`` value), so the rules are tested exactly.

The rules, in order (the first that applies decides):

1. gave up reconnecting (``max_retries`` spent): failed with the last disconnect's reason;
2. disconnected: live during ``grace``, then failed with the disconnect's reason;
3. stale: no message matching ``watch.match`` for ``stale_after`` seconds, counted
   from the last matching message on any connection (or the start of watching), so a
   feed that reconnects fine but never delivers is still caught: ``expect_timeout``;
4. slow: fewer than ``min_rate`` matching messages per second over ``rate_window``
   (judged once the session has watched for a full window): ``expect_timeout``.

Nothing here raises.
"""

from __future__ import annotations

from dataclasses import dataclass

from agent.result import Reason

__all__ = ["RateWindow", "Verdict", "WatchStats", "judge"]

#: Buckets per rate window: the rate is exact to within one bucket (10 %).
_RATE_BUCKETS = 10


@dataclass(frozen=True, slots=True)
class WatchStats:
    """A snapshot of one session, read by metrics at scrape time."""

    #: Connected and its init steps done.
    connected: bool
    #: Disconnects and failed connection attempts, by :class:`Reason` value.
    reconnects: dict[str, int]
    #: Unix time of the last message received (any message), or None.
    last_message_ts: float | None
    #: Messages received over the session's life (answered pings included).
    messages_total: int
    #: Unix time the current connection was established, None while disconnected.
    session_started: float | None
    #: Round trip of the last protocol ping, seconds.
    last_rtt: float | None
    #: No matching message for ``stale_after`` seconds.
    stale: bool
    #: Messages matching ``watch.match`` (all data messages when no match is set).
    matched_total: int = 0
    #: Application-level pings answered.
    answered_total: int = 0
    #: ``max_retries`` spent: the session stopped reconnecting.
    gave_up: bool = False
    #: Jumps forward of ``watch.sequence`` (each loses one or more messages).
    gaps_total: int = 0
    #: Messages lost in those jumps.
    missed_total: int = 0


@dataclass(frozen=True, slots=True)
class Verdict:
    """Whether the session is live now, and the failure reason when it is not."""

    live: bool
    reason: Reason | None = None
    message: str = ""


class RateWindow:
    """Counts events over a sliding window in a fixed ring of buckets (O(1) memory).

    Args:
        window: Length of the window, seconds.
    """

    __slots__ = ("_counts", "_head", "_width", "window")

    def __init__(self, window: float) -> None:
        self.window = window
        self._width = window / _RATE_BUCKETS
        self._counts = [0] * _RATE_BUCKETS
        self._head = 0  # absolute index of the newest bucket

    def _advance(self, now: float) -> None:
        index = int(now // self._width)
        if index <= self._head:
            return
        # Buckets that slid out of the window are emptied; at most one full lap.
        for i in range(max(self._head + 1, index - _RATE_BUCKETS + 1), index + 1):
            self._counts[i % _RATE_BUCKETS] = 0
        self._head = index

    def add(self, now: float) -> None:
        """Count one event at ``now``."""
        self._advance(now)
        self._counts[self._head % _RATE_BUCKETS] += 1

    def rate(self, now: float) -> float:
        """Events per second over the last ``window`` seconds (bucket-granular)."""
        self._advance(now)
        # The newest bucket is partly elapsed; divide by the span actually covered.
        covered = (_RATE_BUCKETS - 1) * self._width + (now - self._head * self._width)
        return sum(self._counts) / covered if covered > 0 else 0.0


def _secs(seconds: float) -> str:
    """Seconds for a message: whole above 10 s, one decimal below."""
    return f"{seconds:.0f}" if seconds >= 10 else f"{seconds:.1f}"


def judge(
    *,
    now: float,
    connected: bool,
    state_since: float,
    watching_since: float,
    grace: float,
    gave_up: bool = False,
    attempts: int = 0,
    down_reason: Reason | None = None,
    down_message: str = "",
    last_match: float | None = None,
    stale_after: float | None = None,
    rate: float | None = None,
    min_rate: float | None = None,
    rate_window: float = 0.0,
) -> Verdict:
    """Apply the liveness rules of the module docstring.

    Args:
        now: perf_counter time of the judgement.
        connected: The session is connected and initialised.
        state_since: perf_counter time the current connected/disconnected state began.
        watching_since: perf_counter time the session started watching.
        grace: Seconds a disconnect is tolerated.
        gave_up: Reconnect attempts are spent.
        attempts: Consecutive reconnect attempts, for the give-up message.
        down_reason: Reason of the last disconnect or failed connection attempt.
        down_message: Human detail of that failure (no secrets).
        last_match: perf_counter time of the last matching message, any connection.
        stale_after: Seconds without a matching message that make the session stale.
        rate: Matching messages per second over the rate window.
        min_rate: Lowest acceptable ``rate``.
        rate_window: Seconds the rate is averaged over.

    Returns:
        The verdict; a failed one carries one reason and a specific message.
    """
    detail = f": {down_message}" if down_message else ""
    if gave_up:
        return Verdict(
            False,
            down_reason or Reason.CLOSED,
            f"gave up reconnecting after {attempts} attempts{detail}",
        )
    if not connected:
        down_for = now - state_since
        if down_for < grace:
            return Verdict(True, None, f"reconnecting for {_secs(down_for)} s{detail}")
        if down_reason is None:
            # The first attempt is still running; check.timeout bounds it.
            return Verdict(True, None, "connecting")
        return Verdict(False, down_reason, f"disconnected for {_secs(down_for)} s{detail}")
    if stale_after is not None:
        quiet = now - (last_match if last_match is not None else watching_since)
        if quiet >= stale_after:
            return Verdict(
                False, Reason.EXPECT_TIMEOUT, f"no matching message for {_secs(quiet)} s"
            )
    if (
        min_rate is not None
        and rate is not None
        and now - watching_since >= rate_window
        and rate < min_rate
    ):
        return Verdict(
            False,
            Reason.EXPECT_TIMEOUT,
            f"message rate {rate:.3g}/s is below min_rate {min_rate:g}/s over {rate_window:g} s",
        )
    return Verdict(True)
