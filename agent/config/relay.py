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

With ``protocol:`` the connections speak the protocol and the keys read like it: every
connection runs ``protocol.steps`` after the protocol handshake (Socket.IO: join the
room), each receiver subscribes, then the publisher publishes once::

    protocol: mqtt
    relay:
      subscribe: {topic: "wsprobe/{{run}}", qos: 1}                  # each receiver
      publish: {topic: "wsprobe/{{run}}", payload: "{{marker}}", qos: 1}   # the publisher

The receivers' key is ``subscribe`` (MQTT topic filter, STOMP destination, GraphQL
subscription document); the publisher's is the protocol's verb: ``emit`` (Socket.IO,
receivers wait for ``event``), ``mutation`` (GraphQL), ``publish`` (MQTT) or ``send``
(STOMP). Which keys a protocol reads is checked by the protocol (``validate_relay``).

Variables available to ``join``, ``publish`` and ``match``: ``{{run}}`` (unique per run,
e.g. for a private room), ``{{connection}}`` (``publisher``, ``receiver1``, ...),
``{{marker}}`` (unique per run) and ``{{token}}`` (OAuth2).
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, field_validator

from agent.config.protocols import Emit, Publish, Subscribe
from agent.config.steps import Matcher, Step
from agent.config.types import Duration, Frozen, Int

__all__ = [
    "DEFAULT_RELAY_DEADLINE",
    "DEFAULT_RELAY_PUBLISH",
    "PROTOCOL_RELAY_KEYS",
    "RelayConfig",
    "holds_marker",
]

#: The keys only a relay speaking a protocol reads (which ones, the protocol decides).
PROTOCOL_RELAY_KEYS = ("subscribe", "emit", "event", "mutation", "send")

DEFAULT_RELAY_DEADLINE = 5.0
DEFAULT_RELAY_PUBLISH = "{{marker}}"


def holds_marker(value: Any) -> bool:
    """Whether ``value`` (text, or JSON-like data) holds the ``{{marker}}`` placeholder."""
    return "{{marker}}" in repr(value).replace(" ", "")


class RelayConfig(Frozen):
    """One publisher, ``receivers`` listeners, a delivery deadline."""

    receivers: Int = Field(1, ge=1, le=32)
    #: Steps every connection runs after connecting (join the room, subscribe).
    join: tuple[Step, ...] = ()
    #: What the publisher sends (string: text, mapping/list: JSON); must hold
    #: ``{{marker}}``, replaced by a value unique to the run. With ``protocol: mqtt``,
    #: the PUBLISH: ``{topic, payload, qos, retain}``.
    publish: Any = DEFAULT_RELAY_PUBLISH
    #: With a protocol: what each receiver subscribes to before the publish.
    subscribe: Subscribe | None = None
    #: Socket.IO: what the publisher emits (``args`` hold ``{{marker}}``).
    emit: Emit | None = None
    #: Socket.IO: the event receivers wait for (the emitted one by default).
    event: str | None = Field(None, min_length=1)
    #: GraphQL: the mutation the publisher runs (``variables`` hold ``{{marker}}``).
    mutation: Subscribe | None = None
    #: STOMP: the SEND of the publisher (``payload`` holds ``{{marker}}``).
    send: Publish | None = None
    #: Extra predicate a delivered message must satisfy besides containing the marker.
    match: Matcher | None = None
    #: How long after publishing every receiver must have seen the marker.
    deadline: Duration = Field(DEFAULT_RELAY_DEADLINE, gt=0)

    @field_validator("publish")
    @classmethod
    def _publish_has_marker(cls, value: Any) -> Any:
        if not holds_marker(value):
            raise ValueError("publish must contain {{marker}} so receivers can recognise it")
        return value

    def protocol_keys(self) -> list[str]:
        """The protocol-only keys written in this block, in declaration order."""
        return [key for key in PROTOCOL_RELAY_KEYS if getattr(self, key) is not None]

    @field_validator("match")
    @classmethod
    def _marker_owns_contains(cls, value: Matcher | None) -> Matcher | None:
        if value is not None and value.contains is not None:
            raise ValueError("match.contains is taken by the marker; use json, path or regex")
        return value
