"""Socket.IO v5 over Engine.IO v4, WebSocket transport only.

Handshake (phase ``protocol``, from the upgrade's answer): the server's Engine.IO
``open`` packet, then our namespace CONNECT carrying ``protocol.payload`` as the auth
object, then the server's CONNECT (success) or CONNECT_ERROR (``auth_rejected`` with
the server's message). Engine.IO pings from the server are answered at once. Packets
are encoded and decoded with python-engineio's and python-socketio's own packet
classes; only the framing decisions (which packet when) are ours.

Engine.IO v4 has no client-initiated ping, so a check's ``pings`` (and a watch's
``ping_interval``) are WebSocket pings. A watch counts the events named in
``protocol.listen`` (every event when empty) as its messages, and, like Socket.IO's
own client, ends a session whose server sent nothing for ``pingInterval +
pingTimeout`` (from the open packet) as ``ping_timeout``.
"""

from __future__ import annotations

import json
import time
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from engineio import packet as eio
from socketio import packet as sio

from agent.config.protocols import ProtocolConfig, ProtocolExpect, ProtocolStep
from agent.config.relay import RelayConfig
from agent.probes.errors import AuthRejected, ConnectionClosed, ProbeError
from agent.probes.protocols.base import Session
from agent.probes.protocols.events import Event, ProtocolRefused, malformed
from agent.probes.protocols.spec import Problem, Protocol, RelayPlan, marker_problem
from agent.probes.script.matchers import Message, substitute
from agent.result import ProbeResult

__all__ = ["PROTOCOL", "SocketIOSession"]

#: Where a Socket.IO server listens unless ``protocol.path`` says otherwise.
DEFAULT_PATH = "/socket.io/"


def socketio_url(url: str, config: ProtocolConfig) -> str:
    """The Engine.IO WebSocket URL: the server's path with ``EIO=4&transport=websocket``."""
    parts = urlsplit(url)
    path = config.path or (parts.path if parts.path not in ("", "/") else DEFAULT_PATH)
    query = [(k, v) for k, v in parse_qsl(parts.query) if k not in ("EIO", "transport")]
    query += [("EIO", "4"), ("transport", "websocket")]
    return urlunsplit((parts.scheme, parts.netloc, path, urlencode(query), ""))


class SocketIOSession(Session):
    """One Socket.IO namespace connection."""

    name = "socketio"
    server_speaks_first = True

    __slots__ = ("_ack_ids", "_silence", "namespace")
    server_keepalive = "Engine.IO ping"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._ack_ids = 0
        self.namespace = self.config.namespace
        self._silence: float | None = None

    def decode(self, data: str | bytes, at: float) -> list[Event]:
        if isinstance(data, bytes):
            return []  # binary attachments are not matched on
        try:
            packet = eio.Packet(encoded_packet=data)
        except (ValueError, IndexError) as exc:
            raise malformed("Engine.IO", f"{data[:40]!r} ({type(exc).__name__})") from None
        kind = packet.packet_type
        if kind == eio.PING:
            self.send_soon(eio.Packet(eio.PONG, packet.data).encode())
            return []
        if kind == eio.OPEN:
            self._silence = _ping_deadline(packet.data)
            return [Event("open", extra=packet.data)]
        if kind == eio.CLOSE:
            return [Event("closed")]
        if kind != eio.MESSAGE:
            return []
        text = data[1:]
        try:
            msg = sio.Packet(encoded_packet=text)
        except (ValueError, TypeError, IndexError) as exc:
            raise malformed("Socket.IO", f"{text[:40]!r} ({type(exc).__name__})") from None
        if (msg.namespace or "/") != self.namespace:
            return []
        if msg.packet_type == sio.CONNECT:
            return [Event("connect", extra=msg.data)]
        if msg.packet_type == sio.CONNECT_ERROR:
            return [Event("connect_error", extra=msg.data)]
        if msg.packet_type == sio.DISCONNECT:
            return [Event("closed")]
        if msg.packet_type in (sio.EVENT, sio.BINARY_EVENT):
            if not isinstance(msg.data, list) or not msg.data or not isinstance(msg.data[0], str):
                raise malformed("Socket.IO", f"event without a name: {text[:40]!r}")
            args = msg.data[1:]
            return [Event("event", msg.data[0], Message(json.dumps(args)), extra=msg.id)]
        if msg.packet_type in (sio.ACK, sio.BINARY_ACK):
            return [Event("ack", str(msg.id), Message(json.dumps(msg.data or [])))]
        return []

    def _encode(self, packet: sio.Packet) -> str:
        encoded = packet.encode()
        if isinstance(encoded, list):  # binary attachments: not sent by steps
            raise ProbeError("binary Socket.IO arguments are not supported")
        return str(eio.Packet(eio.MESSAGE, encoded).encode())

    async def handshake(self, result: ProbeResult, *, until: float) -> None:
        await self.wait(lambda e: e.kind == "open", until=until, what="the Engine.IO open packet")
        auth = substitute(self.config.payload, self.variables)
        ns = None if self.namespace == "/" else self.namespace
        await self.send(self._encode(sio.Packet(sio.CONNECT, auth, namespace=ns)))
        event = await self.wait(
            lambda e: e.kind in ("connect", "connect_error", "closed"),
            until=until,
            what=f"the CONNECT of namespace {self.namespace!r}",
        )
        self.acked_at = event.at
        if event.kind == "connect_error":
            data = event.extra
            message = data.get("message") if isinstance(data, dict) else data
            raise AuthRejected(f"Socket.IO CONNECT_ERROR: {message or 'no message'}")
        if event.kind == "closed":
            raise ProtocolRefused(f"the server closed namespace {self.namespace!r} at connect")

    async def step(self, step: ProtocolStep, *, until: float) -> None:
        emit = step.emit
        assert emit is not None
        args = substitute(list(emit.args), self.variables)
        ack_id: int | None = None
        if emit.ack:
            self._ack_ids += 1
            ack_id = self._ack_ids
        ns = None if self.namespace == "/" else self.namespace
        packet = sio.Packet(sio.EVENT, [emit.event, *args], namespace=ns, id=ack_id)
        await self.send(self._encode(packet))
        if ack_id is not None:
            key = str(ack_id)
            await self.wait(
                lambda e: e.kind == "ack" and e.key == key,
                until=min(time.perf_counter() + emit.timeout, until),
                what=f"the ack of {emit.event!r}",
                refuse=self._closed,
            )

    def _closed(self, event: Event) -> ProbeError | None:
        if event.kind == "closed":
            return ConnectionClosed(None, detail=f"the server disconnected {self.namespace!r}")
        return None

    def wanted(self, expect: ProtocolExpect, event: Event) -> bool:
        return event.kind == "event" and (expect.event is None or event.key == expect.event)

    def refusal(self, expect: ProtocolExpect, event: Event) -> ProbeError | None:
        return self._closed(event)

    def watched(self, event: Event) -> bool:
        listen = self.config.listen
        return event.kind == "event" and (not listen or event.key in listen)

    def ended(self, event: Event) -> ProbeError | None:
        return self._closed(event)

    def silence_limit(self) -> float | None:
        return self._silence

    async def goodbye(self) -> None:
        ns = None if self.namespace == "/" else self.namespace
        await self.send_quietly(self._encode(sio.Packet(sio.DISCONNECT, namespace=ns)))


def _ping_deadline(handshake: Any) -> float | None:
    """Seconds a client waits for the server's next ping: ``pingInterval + pingTimeout``."""
    if not isinstance(handshake, dict):
        return None
    interval, timeout = handshake.get("pingInterval"), handshake.get("pingTimeout")
    if not isinstance(interval, int | float) or not isinstance(timeout, int | float):
        return None
    return (interval + timeout) / 1000 or None


def _checks(config: ProtocolConfig) -> list[Problem]:
    problems: list[Problem] = []
    if not config.namespace.startswith("/"):
        problems.append((("namespace",), f"namespace {config.namespace!r} must start with '/'"))
    for i, step in enumerate(config.steps):
        if step.expect is not None and step.expect.event is None:
            problems.append((("steps", i, "expect"), "name the Socket.IO event (event: NAME)"))
    return problems


def _relay_checks(relay: RelayConfig) -> list[Problem]:
    if relay.emit is None:
        return [(("emit",), "a Socket.IO relay needs emit: {event: NAME, args: [...]}")]
    return marker_problem(relay.emit.args, ("emit", "args"), "emit.args")


def _relay(relay: RelayConfig) -> RelayPlan:
    """Receivers are in the namespace (and the rooms ``protocol.steps`` joined) already."""
    assert relay.emit is not None
    return RelayPlan(
        subscribe=(),
        publish=(ProtocolStep(emit=relay.emit),),
        delivery=ProtocolExpect(event=relay.event or relay.emit.event),
    )


PROTOCOL = Protocol(
    session=SocketIOSession,
    steps=frozenset({"emit"}),
    url=socketio_url,
    checks=_checks,
    listens=True,
    watch_subscribes=False,
    relay_keys=frozenset({"emit", "event"}),
    relay_checks=_relay_checks,
    relay=_relay,
)
