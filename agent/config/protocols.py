"""The ``protocol:`` key of a check: which application protocol to speak, and its steps.

YAML shape (``protocol: NAME`` alone is short for ``protocol: {name: NAME}``)::

    protocol:
      name: socketio              # a key of agent.probes.protocols.PROTOCOLS
      namespace: /chat            # Socket.IO namespace
      payload: {token: "{{token}}"}   # Socket.IO connect auth / GraphQL connection_init
      listen: [tick]              # Socket.IO: the events a watch counts
      steps:
        - emit: {event: join, args: [lobby], ack: true}
        - expect: {event: joined, json: [lobby]}

Which fields a protocol reads, and which step actions it accepts, is checked by the
protocol's own ``validate`` (the registry lives with the probes; config validation
asks it through :mod:`agent.config._rules`). Secrets: ``password`` is a
:data:`~agent.config.types.Secret`; a ``payload`` takes a secret as ``{{token}}``
from ``auth.token`` so it is never written in clear.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from agent.config.steps import ActionStep, Matcher
from agent.config.types import Duration, Frozen, Int, Secret

__all__ = [
    "DEFAULT_KEEPALIVE",
    "DEFAULT_STEP_TIMEOUT",
    "PROTOCOL_STEP_ACTIONS",
    "Emit",
    "ProtocolConfig",
    "ProtocolExpect",
    "ProtocolStep",
    "Publish",
    "Subscribe",
]

DEFAULT_STEP_TIMEOUT = 5.0
#: MQTT keep-alive and STOMP heart-beat announced to the server.
DEFAULT_KEEPALIVE = 60.0


class Emit(Frozen):
    """Socket.IO: emit ``event`` with ``args``; with ``ack``, wait for the ack (its RTT)."""

    event: str = Field(min_length=1)
    args: tuple[Any, ...] = ()
    ack: bool = False
    timeout: Duration = Field(DEFAULT_STEP_TIMEOUT, gt=0)


class Subscribe(Frozen):
    """A subscription (or, for GraphQL, any operation), as each protocol reads it.

    MQTT: ``topic`` and ``qos``; STOMP: ``destination``, ``id`` and ``headers`` (both
    wait for the acknowledgement, SUBACK or a receipt, whose RTT is the step's
    duration). GraphQL ``subscribe``/``query``: ``query`` (the document),
    ``variables``, ``operation_name``, and ``id`` naming the operation for expects.
    """

    topic: str | None = None
    qos: Int = Field(0, ge=0, le=2)
    destination: str | None = None
    id: str | None = None
    headers: dict[str, str] = {}
    query: str | None = None
    variables: dict[str, Any] = {}
    operation_name: str | None = None
    timeout: Duration = Field(DEFAULT_STEP_TIMEOUT, gt=0)


class Publish(Frozen):
    """MQTT ``publish`` (topic, QoS, retain) or STOMP ``send`` (destination, headers).

    MQTT QoS 1/2 and a STOMP ``receipt: true`` wait for the acknowledgement; its RTT is
    the step's duration. ``payload`` strings are sent as they are, anything else as JSON.
    """

    topic: str | None = None
    destination: str | None = None
    payload: Any = ""
    qos: Int = Field(0, ge=0, le=2)
    retain: bool = False
    headers: dict[str, str] = {}
    receipt: bool = False
    timeout: Duration = Field(DEFAULT_STEP_TIMEOUT, gt=0)


class ProtocolExpect(Matcher):
    """Wait for a protocol event; the matcher fields judge its data.

    The data is: Socket.IO the event's argument list (JSON), GraphQL a ``next``
    payload (``{data: ...}``), MQTT the PUBLISH payload, STOMP the MESSAGE body.
    Events of other names, operations, topics or destinations are skipped and kept
    for later expects.
    """

    #: Socket.IO event name.
    event: str | None = None
    #: GraphQL operation id (of a subscribe/query step).
    id: str | None = None
    #: GraphQL: wait for the operation's ``complete`` instead of data.
    complete: bool = False
    #: MQTT topic filter (``+`` and ``#`` wildcards).
    topic: str | None = None
    #: STOMP destination of the MESSAGE.
    destination: str | None = None
    #: STOMP headers the MESSAGE must carry (equal values).
    headers: dict[str, str] = {}
    timeout: Duration = Field(DEFAULT_STEP_TIMEOUT, gt=0)


#: The action keys of a protocol step (exactly one per step).
PROTOCOL_STEP_ACTIONS = ("emit", "subscribe", "query", "publish", "send", "expect", "sleep")


class ProtocolStep(ActionStep):
    """One protocol step; exactly one action key is set."""

    ACTIONS = PROTOCOL_STEP_ACTIONS
    NOUN = "protocol step"

    emit: Emit | None = None
    subscribe: Subscribe | None = None
    query: Subscribe | None = None
    publish: Publish | None = None
    send: Publish | None = None
    expect: ProtocolExpect | None = None
    sleep: Duration | None = Field(None, ge=0)


class ProtocolConfig(Frozen):
    """Which protocol a check speaks and how it introduces itself."""

    name: str = Field(min_length=1)
    #: Socket.IO: the server's path (``/socket.io/`` by default).
    path: str | None = None
    #: Socket.IO namespace.
    namespace: str = "/"
    #: Socket.IO connect auth payload, GraphQL ``connection_init`` payload.
    payload: Any = None
    #: Socket.IO: the events a watch counts as its messages (every event when empty).
    listen: tuple[str, ...] = ()
    #: MQTT / STOMP credentials.
    username: str | None = None
    password: Secret | None = None
    #: MQTT client identifier (a fresh ``wsprobe-...`` one by default).
    client_id: str | None = None
    #: MQTT protocol version.
    version: Literal["3.1.1", "5"] = "3.1.1"
    #: STOMP ``host`` header (the broker's virtual host).
    host: str | None = None
    #: MQTT keep-alive / STOMP heart-beat announced to the server (and kept by a watch).
    keepalive: Duration = Field(DEFAULT_KEEPALIVE, ge=0)
    #: How long the protocol's own handshake may take (within the check's timeout).
    handshake_timeout: Duration = Field(DEFAULT_STEP_TIMEOUT, gt=0)
    steps: tuple[ProtocolStep, ...] = ()

    @model_validator(mode="before")
    @classmethod
    def _short_form(cls, data: Any) -> Any:
        if isinstance(data, str):
            return {"name": data}
        if isinstance(data, dict) and isinstance(data.get("version"), int | float):
            # YAML reads an unquoted 5 as an int.
            data = {**data, "version": str(data["version"])}
        if isinstance(data, dict) and isinstance(data.get("listen"), str):
            data = {**data, "listen": [data["listen"]]}
        return data
