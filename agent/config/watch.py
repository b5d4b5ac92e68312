"""Settings of a ``watch`` check: a persistent session judged continuously.

YAML shape (every key optional)::

    watch:
      initial_delay: 1s        # first reconnect waits up to this (full jitter)
      max_delay: 60s           # cap of the exponential backoff
      max_retries: null        # consecutive failed reconnects before giving up; null: forever
      reset_after: null        # healthy this long resets the backoff; null: max_delay
      grace: 5s                # a disconnect counts as failure only after this long
      stale_after: 30s         # no message matching ``match`` for this long: stale
      match: {json: {type: trade}}
      min_rate: 0.5            # matching messages per second, over rate_window
      rate_window: 60s
      sequence: $.seq          # a counter in matching messages: jumps count as gaps
      ping_interval: 20s       # protocol pings; RTT reported; timeout is check.ping_timeout
      answer:                  # reply to the server's application-level pings
        match: {json: {type: ping}}
        reply: {type: pong}
        echo: [id]             # fields copied from the ping into the reply
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, model_validator

from agent.config.steps import JsonPath, Matcher
from agent.config.types import Duration, Frozen, Int, Number

__all__ = [
    "DEFAULT_GRACE",
    "DEFAULT_INITIAL_DELAY",
    "DEFAULT_MAX_DELAY",
    "DEFAULT_RATE_WINDOW",
    "DEFAULT_WATCH_PING_INTERVAL",
    "AnswerConfig",
    "WatchConfig",
]

DEFAULT_INITIAL_DELAY = 1.0
DEFAULT_MAX_DELAY = 60.0
#: Long enough to ride out one quick reconnect (a deploy, a load-balancer drain) without
#: paging; a session that drops every few minutes still shows in reconnects_total.
DEFAULT_GRACE = 5.0
DEFAULT_RATE_WINDOW = 60.0
DEFAULT_WATCH_PING_INTERVAL = 20.0


class AnswerConfig(Frozen):
    """How to answer the server's application-level pings.

    A message matching ``match`` is answered with ``reply`` (a mapping or list is sent
    as JSON, a string as text) and does not count as a data message for staleness or
    rate: a feed that only heartbeats is still stale.
    """

    match: Matcher
    reply: Any
    #: Top-level fields copied from the ping into a JSON reply (e.g. a correlation id).
    echo: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _reply_shape(self) -> AnswerConfig:
        if self.reply is None:
            raise ValueError("answer.reply is required")
        if self.echo and not isinstance(self.reply, dict):
            raise ValueError("answer.echo needs a JSON object reply")
        return self


class WatchConfig(Frozen):
    """Reconnect policy and liveness rules of one held session."""

    initial_delay: Duration = Field(DEFAULT_INITIAL_DELAY, gt=0)
    max_delay: Duration = Field(DEFAULT_MAX_DELAY, gt=0)
    max_retries: Int | None = Field(None, ge=0)
    reset_after: Duration | None = Field(None, gt=0)
    grace: Duration = Field(DEFAULT_GRACE, ge=0)
    stale_after: Duration | None = Field(None, gt=0)
    match: Matcher | None = None
    min_rate: Number | None = Field(None, gt=0)
    rate_window: Duration = Field(DEFAULT_RATE_WINDOW, gt=0)
    ping_interval: Duration | None = Field(DEFAULT_WATCH_PING_INTERVAL, gt=0)
    answer: AnswerConfig | None = None
    #: JSON path of a per-subscription counter in matching messages (``$.seq``): a
    #: jump forward is a gap (messages lost), a jump back a restart (not counted).
    sequence: JsonPath | None = None

    @model_validator(mode="after")
    def _delays_ordered(self) -> WatchConfig:
        if self.initial_delay > self.max_delay:
            raise ValueError(
                f"initial_delay ({self.initial_delay:g}s) must not exceed "
                f"max_delay ({self.max_delay:g}s)"
            )
        return self

    @property
    def effective_reset_after(self) -> float:
        """Seconds a connection must stay up before the backoff starts over."""
        return self.reset_after if self.reset_after is not None else self.max_delay
