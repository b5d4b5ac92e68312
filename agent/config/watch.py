"""Settings of a ``watch`` check: a persistent session judged continuously."""

from __future__ import annotations

from pydantic import Field

from agent.config.steps import Matcher
from agent.config.types import Duration, Frozen

__all__ = ["WatchConfig"]


class WatchConfig(Frozen):
    """Reconnect policy and liveness rules of one held session."""

    initial_delay: Duration = Field(1.0, gt=0)
    max_delay: Duration = Field(60.0, gt=0)
    max_retries: int | None = Field(None, ge=0)
    stale_after: Duration | None = Field(None, gt=0)
    match: Matcher | None = None
    ping_interval: Duration | None = Field(20.0, gt=0)
