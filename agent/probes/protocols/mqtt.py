"""MQTT 3.1.1 and 5 over WebSocket (subprotocol ``mqtt``, binary frames).

Handshake (phase ``protocol``): CONNECT with the client id, keep-alive and
``protocol.username``/``password``, then CONNACK. Refusals for credentials (3.1.1
codes 4 and 5; MQTT 5 reason codes 0x86, 0x87, 0x8A, 0x8C) are ``auth_rejected``,
the others ``handshake_status``, each with the code's name and the server's reason
string. PINGREQ/PINGRESP is the measured RTT; a watch also sends PINGREQ whenever it
has been silent for half the keep-alive. Messages delivered at QoS 1 and 2 are
acknowledged as the protocol requires. Packets: :mod:`.mqtt_codec`.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from pydantic import ValidationError

from agent.config.protocols import ProtocolConfig, ProtocolExpect, ProtocolStep, Publish
from agent.config.relay import RelayConfig
from agent.probes.errors import AuthRejected, ConnectionClosed, ExpectMismatch, ProbeError
from agent.probes.protocols import mqtt_codec as codec
from agent.probes.protocols.base import Session
from agent.probes.protocols.events import Event, ProtocolRefused, malformed
from agent.probes.protocols.spec import Problem, Protocol, RelayPlan, marker_problem
from agent.probes.script.matchers import Message, substitute
from agent.result import ProbeResult

__all__ = ["PROTOCOL", "MQTTSession"]

_CONNACK_311 = {
    1: "unacceptable protocol version",
    2: "identifier rejected",
    3: "server unavailable",
    4: "bad user name or password",
    5: "not authorized",
}
_AUTH_311 = frozenset({4, 5})
_REASONS_5 = {
    0x80: "unspecified error",
    0x81: "malformed packet",
    0x82: "protocol error",
    0x83: "implementation specific error",
    0x84: "unsupported protocol version",
    0x85: "client identifier not valid",
    0x86: "bad user name or password",
    0x87: "not authorized",
    0x88: "server unavailable",
    0x89: "server busy",
    0x8A: "banned",
    0x8C: "bad authentication method",
    0x8E: "session taken over",
    0x8F: "topic filter invalid",
    0x90: "topic name invalid",
    0x91: "packet identifier in use",
    0x97: "quota exceeded",
    0x99: "payload format invalid",
    0x9F: "connection rate exceeded",
}
_AUTH_5 = frozenset({0x86, 0x87, 0x8A, 0x8C})


def _code_text(code: int, version: int) -> str:
    names = _CONNACK_311 if version == 4 else _REASONS_5
    return f"0x{code:02x} {names.get(code, 'unknown code')}"


class MQTTSession(Session):
    """One MQTT client session."""

    name = "mqtt"

    __slots__ = ("_ids", "_reader_state", "version")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.version = 5 if self.config.version == "5" else 4
        self._reader_state = codec.PacketReader()
        self._ids = 0

    def _next_id(self) -> int:
        self._ids = self._ids % 65535 + 1
        return self._ids

    def decode(self, data: str | bytes, at: float) -> list[Event]:
        if isinstance(data, str):
            raise malformed("MQTT", "a text frame (MQTT over WebSocket is binary)")
        try:
            return [e for p in self._reader_state.feed(data) if (e := self._event(p))]
        except codec.MQTTFormatError as exc:
            raise malformed("MQTT", str(exc)) from None

    def _event(self, packet: codec.Packet) -> Event | None:
        v = self.version
        if packet.type == codec.CONNACK:
            return Event("connack", extra=codec.parse_connack(packet, version=v))
        if packet.type == codec.PINGRESP:
            return Event("pingresp")
        if packet.type == codec.PUBLISH:
            msg = codec.parse_publish(packet, version=v)
            if msg.qos == 1 and msg.packet_id is not None:
                self.send_soon(codec.ack(codec.PUBACK, msg.packet_id))
            elif msg.qos == 2 and msg.packet_id is not None:
                self.send_soon(codec.ack(codec.PUBREC, msg.packet_id))
            return Event("publish", msg.topic, _message(msg.payload), extra=msg)
        if packet.type == codec.PUBREL:
            self.send_soon(codec.ack(codec.PUBCOMP, codec.parse_ack(packet, version=v).packet_id))
            return None
        if packet.type in (codec.PUBACK, codec.PUBREC, codec.PUBCOMP):
            parsed = codec.parse_ack(packet, version=v)
            return Event(f"ack{packet.type}", str(parsed.packet_id), extra=parsed)
        if packet.type == codec.SUBACK:
            parsed = codec.parse_suback(packet, version=v)
            return Event("suback", str(parsed.packet_id), extra=parsed)
        if packet.type == codec.DISCONNECT:
            return Event("disconnect", extra=codec.parse_disconnect(packet, version=v))
        if packet.type in (codec.UNSUBACK, codec.AUTH):
            return None
        raise codec.MQTTFormatError(f"packet type {packet.type} is not sent by servers")

    async def handshake(self, result: ProbeResult, *, until: float) -> None:
        config = self.config
        password = config.password.get_secret_value() if config.password is not None else None
        await self.send(
            codec.connect(
                client_id=config.client_id or f"wsprobe-{uuid.uuid4().hex[:12]}",
                version=self.version,
                keepalive=min(int(config.keepalive), 65535),
                username=config.username,
                password=password,
            )
        )
        event = await self.wait(lambda e: e.kind == "connack", until=until, what="CONNACK")
        self.acked_at = event.at
        connack: codec.ConnAck = event.extra
        if connack.code == 0:
            return
        text = f"CONNACK {_code_text(connack.code, self.version)}"
        if connack.reason_string:
            text += f": {connack.reason_string}"
        auth = _AUTH_311 if self.version == 4 else _AUTH_5
        raise AuthRejected(text) if connack.code in auth else ProtocolRefused(text)

    async def ping(self, *, until: float) -> float | None:
        started = time.perf_counter()
        await self.send(codec.pingreq())
        event = await self.wait(
            lambda e: e.kind == "pingresp",
            until=until,
            what="PINGRESP",
            refuse=self._gone,
            since=started,
        )
        return event.at - started

    async def step(self, step: ProtocolStep, *, until: float) -> None:
        if step.subscribe is not None:
            sub = step.subscribe
            assert sub.topic is not None
            packet_id = self._next_id()
            topic = substitute(sub.topic, self.variables)
            await self.send(codec.subscribe(packet_id, topic, qos=sub.qos, version=self.version))
            event = await self._ack("suback", packet_id, sub.timeout, until)
            refused = [c for c in event.extra.codes if c >= 0x80]
            if refused:
                raise ExpectMismatch(f"SUBSCRIBE to {topic!r} refused: {_code_text(refused[0], 5)}")
            return
        pub = step.publish
        assert pub is not None
        assert pub.topic is not None
        pub_id = self._next_id() if pub.qos else None
        payload = substitute(pub.payload, self.variables)
        data = payload if isinstance(payload, str) else json.dumps(payload)
        await self.send(
            codec.publish(
                substitute(pub.topic, self.variables),
                data.encode(),
                qos=pub.qos,
                retain=pub.retain,
                packet_id=pub_id,
                version=self.version,
            )
        )
        if pub_id is None:
            return
        packet_id = pub_id
        if pub.qos == 1:
            self._check_ack(await self._ack(f"ack{codec.PUBACK}", packet_id, pub.timeout, until))
            return
        self._check_ack(await self._ack(f"ack{codec.PUBREC}", packet_id, pub.timeout, until))
        await self.send(codec.ack(codec.PUBREL, packet_id))
        self._check_ack(await self._ack(f"ack{codec.PUBCOMP}", packet_id, pub.timeout, until))

    async def _ack(self, kind: str, packet_id: int, limit: float, until: float) -> Event:
        key = str(packet_id)
        return await self.wait(
            lambda e: e.kind == kind and e.key == key,
            until=min(time.perf_counter() + limit, until),
            what=f"{kind.upper()} of packet {packet_id}",
            refuse=self._gone,
        )

    def _check_ack(self, event: Event) -> None:
        acked: codec.Ack = event.extra
        if acked.codes[0] >= 0x80:
            text = f"PUBLISH refused: {_code_text(acked.codes[0], 5)}"
            raise ExpectMismatch(text + (f": {acked.reason_string}" if acked.reason_string else ""))

    def _gone(self, event: Event) -> ProbeError | None:
        if event.kind != "disconnect":
            return None
        sent: codec.Ack = event.extra
        text = f"server sent DISCONNECT {_code_text(sent.codes[0], 5)}"
        return ConnectionClosed(
            None, detail=text + (f": {sent.reason_string}" if sent.reason_string else "")
        )

    def wanted(self, expect: ProtocolExpect, event: Event) -> bool:
        if event.kind != "publish":
            return False
        return expect.topic is None or codec.topic_matches(
            substitute(expect.topic, self.variables), event.key or ""
        )

    def refusal(self, expect: ProtocolExpect, event: Event) -> ProbeError | None:
        return self._gone(event)

    async def goodbye(self) -> None:
        await self.send_quietly(codec.disconnect())

    def watched(self, event: Event) -> bool:
        return event.kind == "publish"

    def ended(self, event: Event) -> ProbeError | None:
        return self._gone(event)

    def keepalive_interval(self) -> float | None:
        # The broker drops a client silent for 1.5 keep-alive periods.
        return float(min(int(self.config.keepalive), 65535)) or None

    def keepalive_frame(self) -> bytes:
        return codec.pingreq()


def _message(payload: bytes) -> Message:
    """A text payload is matched as text (JSON, regex); any other as binary."""
    try:
        return Message(payload.decode())
    except UnicodeDecodeError:
        return Message(payload)


def _checks(config: ProtocolConfig) -> list[Problem]:
    problems: list[Problem] = []
    for i, step in enumerate(config.steps):
        sub = step.subscribe
        if sub is not None and sub.topic is None:
            problems.append((("steps", i, "subscribe"), "an MQTT subscribe needs topic: FILTER"))
        if step.publish is not None and step.publish.topic is None:
            problems.append((("steps", i, "publish"), "an MQTT publish needs topic: NAME"))
    if config.keepalive > 65535:
        problems.append((("keepalive",), "MQTT allows at most 65535 s"))
    return problems


def _relay_checks(relay: RelayConfig) -> list[Problem]:
    problems: list[Problem] = []
    if relay.subscribe is None or relay.subscribe.topic is None:
        problems.append((("subscribe",), "an MQTT relay needs subscribe: {topic: FILTER, qos: N}"))
    try:
        publish = Publish.model_validate(relay.publish)
    except ValidationError as exc:
        if not isinstance(relay.publish, dict):
            return [*problems, (("publish",), _PUBLISH_SHAPE)]
        return problems + [
            (("publish", *error["loc"]), error["msg"]) for error in exc.errors(include_url=False)
        ]
    if publish.topic is None:
        problems.append((("publish",), _PUBLISH_SHAPE))
    elif any(c in publish.topic for c in "+#"):
        problems.append((("publish", "topic"), "a PUBLISH topic has no + or # wildcards"))
    return problems + marker_problem(publish.payload, ("publish", "payload"), "publish.payload")


_PUBLISH_SHAPE = "an MQTT relay publishes with publish: {topic: NAME, payload: ..., qos: N}"


def _relay(relay: RelayConfig) -> RelayPlan:
    """SUBSCRIBE (its SUBACK), then one PUBLISH (its PUBACK/PUBCOMP at QoS 1/2)."""
    assert relay.subscribe is not None
    return RelayPlan(
        subscribe=(ProtocolStep(name="subscribe", subscribe=relay.subscribe),),
        publish=(ProtocolStep(name="publish", publish=Publish.model_validate(relay.publish)),),
        delivery=ProtocolExpect(topic=relay.subscribe.topic),
    )


PROTOCOL = Protocol(
    session=MQTTSession,
    subprotocols=("mqtt",),
    required_subprotocol="mqtt",
    steps=frozenset({"subscribe", "publish"}),
    checks=_checks,
    relay_keys=frozenset({"subscribe", "publish"}),
    relay_checks=_relay_checks,
    relay=_relay,
)
