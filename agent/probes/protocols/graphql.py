"""GraphQL over WebSocket: ``graphql-transport-ws`` and the legacy ``subscriptions-transport-ws``.

Both are JSON messages ``{type, id?, payload?}``; they differ in names:

====================  ====================  ==========================
                      graphql-transport-ws  subscriptions-transport-ws
====================  ====================  ==========================
subprotocol           graphql-transport-ws  graphql-ws
start an operation    subscribe             start
its data              next                  data
refused init          close 4403 / 4401     connection_error
keepalive             ping -> pong          ka (server only)
====================  ====================  ==========================

Handshake (phase ``protocol``): ``connection_init`` with ``protocol.payload``, then
``connection_ack``. A refusal is ``auth_rejected``; no ack before
``protocol.handshake_timeout`` is ``handshake_status``. The modern protocol's ping/pong
is the measured RTT, and a server ping is answered; the legacy one has no client ping
(WebSocket pings are measured). The codec is JSON: no library needed.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from agent.config.protocols import ProtocolConfig, ProtocolExpect, ProtocolStep
from agent.config.relay import RelayConfig
from agent.probes.errors import AuthRejected, ConnectionClosed, ExpectMismatch, ProbeError
from agent.probes.protocols.base import Session
from agent.probes.protocols.events import Event, malformed
from agent.probes.protocols.spec import Problem, Protocol, RelayPlan, marker_problem
from agent.probes.script.matchers import Message, substitute
from agent.result import ProbeResult

__all__ = ["SUBSCRIPTIONS_TRANSPORT_WS", "TRANSPORT_WS", "GraphQLSession"]

#: Close codes graphql-transport-ws servers use to refuse a connection's credentials.
_AUTH_CLOSE = frozenset({4401, 4403})


@dataclass(frozen=True, slots=True)
class _Names:
    protocol: str
    start: str
    data: str
    stop: str
    legacy: bool


_MODERN = _Names("graphql-transport-ws", "subscribe", "next", "complete", legacy=False)
_LEGACY = _Names("subscriptions-transport-ws", "start", "data", "stop", legacy=True)


class GraphQLSession(Session):
    """One GraphQL over WebSocket connection (either protocol)."""

    names: _Names = _MODERN

    __slots__ = ("subscriptions",)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: Ids of the operations started by ``subscribe`` steps: what a watch counts.
        self.subscriptions: tuple[str, ...] = ()

    def _json(self, message: dict[str, Any]) -> str:
        return json.dumps(message, separators=(",", ":"))

    def decode(self, data: str | bytes, at: float) -> list[Event]:
        try:
            message = json.loads(data)
        except ValueError:
            raise malformed(self.names.protocol, f"not JSON: {_short(data)}") from None
        if not isinstance(message, dict) or not isinstance(message.get("type"), str):
            raise malformed(self.names.protocol, f"no message type: {_short(data)}")
        kind = message["type"]
        op_id = message.get("id")
        key = str(op_id) if op_id is not None else None
        payload = message.get("payload")
        if kind == "ping" and not self.names.legacy:
            self.send_soon(self._json({"type": "pong"}))
            return []
        if kind == "ka":
            return []
        if kind == self.names.data:
            if not isinstance(payload, dict):
                raise malformed(self.names.protocol, f"{kind} without a payload object")
            return [Event("next", key, Message(json.dumps(payload)), extra=payload)]
        if kind in ("connection_ack", "connection_error", "pong", "error", "complete"):
            return [Event(kind, key, extra=payload)]
        raise malformed(self.names.protocol, f"unknown message type {kind!r}")

    async def handshake(self, result: ProbeResult, *, until: float) -> None:
        init: dict[str, Any] = {"type": "connection_init"}
        if self.config.payload is not None:
            init["payload"] = substitute(self.config.payload, self.variables)
        await self.send(self._json(init))
        try:
            event = await self.wait(
                lambda e: e.kind in ("connection_ack", "connection_error"),
                until=until,
                what="connection_ack",
            )
        except ConnectionClosed as exc:
            if exc.code in _AUTH_CLOSE:
                raise AuthRejected(
                    f"the server closed with {exc.code} {exc.close_reason!r} at connection_init"
                ) from exc
            raise
        self.acked_at = event.at
        if event.kind == "connection_error":
            raise AuthRejected(f"connection_error: {_error_text(event.extra)}")

    async def ping(self, *, until: float) -> float | None:
        if self.names.legacy:
            return None
        started = time.perf_counter()  # from before the write, like WebSocket pings
        await self.send(self._json({"type": "ping"}))
        event = await self.wait(lambda e: e.kind == "pong", until=until, what="pong", since=started)
        return event.at - started

    async def step(self, step: ProtocolStep, *, until: float) -> None:
        operation = step.subscribe if step.subscribe is not None else step.query
        assert operation is not None
        assert operation.query is not None  # validated
        payload: dict[str, Any] = {"query": operation.query}
        if operation.variables:
            payload["variables"] = substitute(operation.variables, self.variables)
        if operation.operation_name:
            payload["operationName"] = operation.operation_name
        op_id = operation.id or "1"
        if step.subscribe is not None and op_id not in self.subscriptions:
            self.subscriptions += (op_id,)
        await self.send(self._json({"id": op_id, "type": self.names.start, "payload": payload}))

    def wanted(self, expect: ProtocolExpect, event: Event) -> bool:
        if expect.id is not None and event.key != expect.id:
            return False
        return event.kind == ("complete" if expect.complete else "next")

    def refusal(self, expect: ProtocolExpect, event: Event) -> ProbeError | None:
        if expect.id is not None and event.key != expect.id:
            return None
        if event.kind == "error":
            return ExpectMismatch(f"GraphQL error for {event.key!r}: {_error_text(event.extra)}")
        if event.kind == "next" and not expect.complete:
            errors = event.extra.get("errors") if isinstance(event.extra, dict) else None
            if errors and expect.is_empty():
                return ExpectMismatch(f"GraphQL error for {event.key!r}: {_error_text(errors)}")
        if event.kind == "complete" and not expect.complete:
            return ExpectMismatch(f"the server completed operation {event.key!r} before data")
        return None

    def watched(self, event: Event) -> bool:
        return event.kind == "next" and event.key in self.subscriptions

    def ended(self, event: Event) -> ProbeError | None:
        if event.key not in self.subscriptions:
            return None  # a query's completion, or another operation's
        if event.kind == "error":
            return ExpectMismatch(
                f"GraphQL error for subscription {event.key!r}: {_error_text(event.extra)}"
            )
        if event.kind == "complete":
            return ConnectionClosed(None, detail=f"the server completed subscription {event.key!r}")
        return None


class LegacyGraphQLSession(GraphQLSession):
    """The deprecated ``subscriptions-transport-ws`` protocol (subprotocol ``graphql-ws``)."""

    __slots__ = ()
    names = _LEGACY


def _error_text(errors: Any) -> str:
    """The GraphQL errors' messages, as the server wrote them."""
    items = errors if isinstance(errors, list) else [errors]
    texts = [e.get("message") if isinstance(e, dict) else e for e in items]
    return "; ".join(str(t) for t in texts if t) or "no message"


def _short(data: str | bytes) -> str:
    return repr(data[:60])


def _checks(config: ProtocolConfig) -> list[Problem]:
    problems: list[Problem] = []
    for i, step in enumerate(config.steps):
        operation = step.subscribe or step.query
        if operation is not None and not operation.query:
            problems.append(
                (("steps", i, step.action), "a GraphQL operation needs query: DOCUMENT")
            )
    return problems


#: Operation ids of a relay: the receivers' subscription and the publisher's mutation.
RELAY_SUBSCRIPTION = "relay"
RELAY_MUTATION = "publish"
_RELAY_KEYS = frozenset({"subscribe", "mutation"})


def _relay_checks(relay: RelayConfig) -> list[Problem]:
    problems: list[Problem] = []
    for key, kind in (("subscribe", "subscription"), ("mutation", "mutation")):
        operation = getattr(relay, key)
        if operation is None or not operation.query:
            problems.append(((key,), f"a GraphQL relay needs {key}: {{query: {kind.upper()}}}"))
    if relay.mutation is not None:
        problems += marker_problem(
            relay.mutation.variables, ("mutation", "variables"), "mutation.variables"
        )
    return problems


def _relay(relay: RelayConfig) -> RelayPlan:
    """Subscribe, then the mutation; its own result (or GraphQL error) is its acknowledgement.

    GraphQL subscriptions are not acknowledged, so the plan settles them with a ping.
    """
    assert relay.subscribe is not None
    assert relay.mutation is not None
    subscription = relay.subscribe.model_copy(update={"id": RELAY_SUBSCRIPTION})
    mutation = relay.mutation.model_copy(update={"id": RELAY_MUTATION})
    return RelayPlan(
        subscribe=(ProtocolStep(name="subscribe", subscribe=subscription),),
        publish=(
            ProtocolStep(name="mutation", query=mutation),
            ProtocolStep(
                name="mutation result",
                expect=ProtocolExpect(id=RELAY_MUTATION, timeout=mutation.timeout),
            ),
        ),
        delivery=ProtocolExpect(id=RELAY_SUBSCRIPTION),
        settle=True,
    )


def _graphql(session: type[GraphQLSession], subprotocol: str) -> Protocol:
    """The two GraphQL protocols differ only in their session and subprotocol."""
    return Protocol(
        session=session,
        subprotocols=(subprotocol,),
        required_subprotocol=subprotocol,
        steps=frozenset({"subscribe", "query"}),
        checks=_checks,
        relay_keys=_RELAY_KEYS,
        relay_checks=_relay_checks,
        relay=_relay,
    )


TRANSPORT_WS = _graphql(GraphQLSession, "graphql-transport-ws")
SUBSCRIPTIONS_TRANSPORT_WS = _graphql(LegacyGraphQLSession, "graphql-ws")
