"""Settings of a ``relay`` check: publish on one connection, receive on others."""

from __future__ import annotations

from pydantic import Field

from agent.config.steps import Step
from agent.config.types import Duration, Frozen

__all__ = ["RelayConfig"]


class RelayConfig(Frozen):
    """One publisher, ``receivers`` listeners, a delivery deadline."""

    receivers: int = Field(1, ge=1, le=32)
    #: Steps every connection runs after connecting (join the room, subscribe).
    join: tuple[Step, ...] = ()
    #: What the publisher sends; ``${marker}`` is replaced by a unique value.
    publish: object = None
    #: How a receiver recognises the marker; defaults to "contains the marker".
    deadline: Duration = Field(5.0, gt=0)
