"""Settings of a ``relay`` check: publish on one connection, receive on others.

YAML shape::

    kind: relay
    url: ws://chat.example/ws
    relay:
      receivers: 2
      join:                                   # run by every connection after connecting
        - send: {type: join, room: "probe-{{run}}", user: "{{connection}}"}
        - expect: {json: {type: joined}}
      publish: {type: message, room: "probe-{{run}}", text: "{{marker}}"}
      match: {json: {type: message}}          # optional; the marker must be contained too
      deadline: 5s

Variables available to ``join``, ``publish`` and ``match``: ``{{run}}`` (unique per run,
e.g. for a private room), ``{{connection}}`` (``publisher``, ``receiver1``, ...),
``{{marker}}`` (unique per run) and ``{{token}}`` (OAuth2).
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, field_validator

from agent.config.steps import Matcher, Step
from agent.config.types import Duration, Frozen, Int

__all__ = ["DEFAULT_RELAY_DEADLINE", "DEFAULT_RELAY_PUBLISH", "RelayConfig"]

DEFAULT_RELAY_DEADLINE = 5.0
DEFAULT_RELAY_PUBLISH = "{{marker}}"


class RelayConfig(Frozen):
    """One publisher, ``receivers`` listeners, a delivery deadline."""

    receivers: Int = Field(1, ge=1, le=32)
    #: Steps every connection runs after connecting (join the room, subscribe).
    join: tuple[Step, ...] = ()
    #: What the publisher sends (string: text, mapping/list: JSON); must hold
    #: ``{{marker}}``, replaced by a value unique to the run.
    publish: Any = DEFAULT_RELAY_PUBLISH
    #: Extra predicate a delivered message must satisfy besides containing the marker.
    match: Matcher | None = None
    #: How long after publishing every receiver must have seen the marker.
    deadline: Duration = Field(DEFAULT_RELAY_DEADLINE, gt=0)

    @field_validator("publish")
    @classmethod
    def _publish_has_marker(cls, value: Any) -> Any:
        if "{{marker}}" not in repr(value).replace(" ", ""):
            raise ValueError("publish must contain {{marker}} so receivers can recognise it")
        return value

    @field_validator("match")
    @classmethod
    def _marker_owns_contains(cls, value: Matcher | None) -> Matcher | None:
        if value is not None and value.contains is not None:
            raise ValueError("match.contains is taken by the marker; use json, path or regex")
        return value
