"""The MQTT 3.1.1 and 5.0 packets a monitoring client needs, encoded and decoded.

Written here rather than taken from a library: PyPI's standalone codec (``mqtt-codec``)
is unmaintained since 2019 and 3.1.1-only, and the maintained clients (paho-mqtt,
aiomqtt, amqtt) own their socket, which would put their I/O between wsprobe's
timestamps and the wire. Only client-side packets are encoded (CONNECT, PUBLISH and
its acknowledgements, SUBSCRIBE, PINGREQ, DISCONNECT); every packet a server may
send is decoded. MQTT 5 properties are parsed to skip them and to read the reason
string servers attach to refusals.

Anything that breaks the packet grammar raises :class:`MQTTFormatError`.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

__all__ = [
    "CONNACK",
    "DISCONNECT",
    "PINGRESP",
    "PUBACK",
    "PUBCOMP",
    "PUBLISH",
    "PUBREC",
    "PUBREL",
    "SUBACK",
    "Ack",
    "ConnAck",
    "MQTTFormatError",
    "Packet",
    "PacketReader",
    "Publish",
    "ack",
    "connect",
    "disconnect",
    "parse_ack",
    "parse_connack",
    "parse_publish",
    "parse_suback",
    "pingreq",
    "publish",
    "subscribe",
    "topic_matches",
]

CONNECT, CONNACK, PUBLISH, PUBACK, PUBREC, PUBREL, PUBCOMP = 1, 2, 3, 4, 5, 6, 7
SUBSCRIBE, SUBACK, UNSUBSCRIBE, UNSUBACK, PINGREQ, PINGRESP, DISCONNECT, AUTH = range(8, 16)

_REASON_STRING = 0x1F

# MQTT 5 property identifier -> its value's encoding.
_PROPERTY_TYPES: dict[int, str] = {
    0x01: "byte", 0x02: "int4", 0x03: "str", 0x08: "str", 0x09: "bin", 0x0B: "varint",
    0x11: "int4", 0x12: "str", 0x13: "int2", 0x15: "str", 0x16: "bin", 0x17: "byte",
    0x18: "int4", 0x19: "byte", 0x1A: "str", 0x1C: "str", 0x1F: "str", 0x21: "int2",
    0x22: "int2", 0x23: "int2", 0x24: "byte", 0x25: "byte", 0x26: "pair", 0x27: "int4",
    0x28: "byte", 0x29: "byte", 0x2A: "byte",
}  # fmt: skip


class MQTTFormatError(ValueError):
    """Bytes that are not a well-formed MQTT packet."""


@dataclass(frozen=True, slots=True)
class Packet:
    """One packet off the wire: its type, the fixed header's flags, the rest."""

    type: int
    flags: int
    body: bytes


@dataclass(frozen=True, slots=True)
class ConnAck:
    """The server's answer to CONNECT."""

    session_present: bool
    code: int
    reason_string: str | None


@dataclass(frozen=True, slots=True)
class Publish:
    """A message delivered to us."""

    topic: str
    payload: bytes
    qos: int
    retain: bool
    packet_id: int | None


@dataclass(frozen=True, slots=True)
class Ack:
    """PUBACK/PUBREC/PUBREL/PUBCOMP/SUBACK/DISCONNECT: packet id and reason code(s)."""

    packet_id: int
    codes: tuple[int, ...]
    reason_string: str | None = None


# --- encoding ---------------------------------------------------------------------


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        n, digit = divmod(n, 128)
        out.append(digit | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _str(text: str) -> bytes:
    data = text.encode()
    return struct.pack("!H", len(data)) + data


def _packet(kind: int, flags: int, body: bytes) -> bytes:
    return bytes([kind << 4 | flags]) + _varint(len(body)) + body


def connect(
    *,
    client_id: str,
    version: int,
    keepalive: int,
    username: str | None = None,
    password: str | None = None,
    clean: bool = True,
) -> bytes:
    """CONNECT for protocol level ``version`` (4: 3.1.1, 5: 5.0)."""
    flags = (0x02 if clean else 0) | (0x80 if username is not None else 0)
    flags |= 0x40 if password is not None else 0
    body = _str("MQTT") + bytes([version, flags]) + struct.pack("!H", keepalive)
    if version == 5:
        body += _varint(0)  # no properties
    body += _str(client_id)
    if username is not None:
        body += _str(username)
    if password is not None:
        body += _str(password)
    return _packet(CONNECT, 0, body)


def publish(
    topic: str, payload: bytes, *, qos: int, retain: bool, packet_id: int | None, version: int
) -> bytes:
    """PUBLISH; ``packet_id`` is required for QoS 1 and 2."""
    body = _str(topic)
    if qos:
        assert packet_id is not None
        body += struct.pack("!H", packet_id)
    if version == 5:
        body += _varint(0)
    return _packet(PUBLISH, qos << 1 | int(retain), body + payload)


def ack(kind: int, packet_id: int) -> bytes:
    """PUBACK, PUBREC, PUBREL or PUBCOMP with success (valid in 3.1.1 and 5)."""
    return _packet(kind, 0x02 if kind == PUBREL else 0, struct.pack("!H", packet_id))


def subscribe(packet_id: int, topic: str, *, qos: int, version: int) -> bytes:
    """SUBSCRIBE to one topic filter."""
    body = struct.pack("!H", packet_id)
    if version == 5:
        body += _varint(0)
    return _packet(SUBSCRIBE, 0x02, body + _str(topic) + bytes([qos]))


def pingreq() -> bytes:
    """PINGREQ."""
    return _packet(PINGREQ, 0, b"")


def disconnect() -> bytes:
    """DISCONNECT (normal disconnection)."""
    return _packet(DISCONNECT, 0, b"")


# --- decoding ---------------------------------------------------------------------


class PacketReader:
    """Split a byte stream (WebSocket messages may cut or join packets) into packets."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[Packet]:
        """Add ``data``; return every packet now complete."""
        self._buffer += data
        packets: list[Packet] = []
        while len(self._buffer) >= 2:
            length, pos = 0, 1
            for shift in range(4):
                if pos >= len(self._buffer):
                    return packets  # the length itself is not complete yet
                byte = self._buffer[pos]
                length |= (byte & 0x7F) << (7 * shift)
                pos += 1
                if not byte & 0x80:
                    break
            else:
                raise MQTTFormatError("remaining length longer than 4 bytes")
            if len(self._buffer) < pos + length:
                return packets
            first = self._buffer[0]
            kind = first >> 4
            if kind == 0:
                raise MQTTFormatError("packet type 0 is reserved")
            packets.append(Packet(kind, first & 0x0F, bytes(self._buffer[pos : pos + length])))
            del self._buffer[: pos + length]
        return packets


class _Cursor:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise MQTTFormatError("packet shorter than its fields")
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def byte(self) -> int:
        return self.take(1)[0]

    def int2(self) -> int:
        return int(struct.unpack("!H", self.take(2))[0])

    def varint(self) -> int:
        value = 0
        for shift in range(4):
            byte = self.byte()
            value |= (byte & 0x7F) << (7 * shift)
            if not byte & 0x80:
                return value
        raise MQTTFormatError("variable byte integer longer than 4 bytes")

    def text(self) -> str:
        try:
            return self.take(self.int2()).decode()
        except UnicodeDecodeError:
            raise MQTTFormatError("string is not UTF-8") from None

    def rest(self) -> bytes:
        return self.take(len(self.data) - self.pos)

    def properties(self) -> str | None:
        """Skip an MQTT 5 property block; return its reason string, if any."""
        end = self.varint() + self.pos
        if end > len(self.data):
            raise MQTTFormatError("properties longer than the packet")
        reason = None
        while self.pos < end:
            ident = self.varint()
            kind = _PROPERTY_TYPES.get(ident)
            if kind is None:
                raise MQTTFormatError(f"unknown property 0x{ident:02x}")
            if kind == "str":
                value = self.text()
                if ident == _REASON_STRING:
                    reason = value
            elif kind == "pair":
                self.text()
                self.text()
            elif kind == "bin":
                self.take(self.int2())
            elif kind == "varint":
                self.varint()
            else:
                self.take({"byte": 1, "int2": 2, "int4": 4}[kind])
        return reason


def parse_connack(packet: Packet, *, version: int) -> ConnAck:
    """CONNACK: session present, return code (3.1.1) or reason code (5)."""
    cur = _Cursor(packet.body)
    flags, code = cur.byte(), cur.byte()
    reason = cur.properties() if version == 5 and cur.pos < len(cur.data) else None
    return ConnAck(bool(flags & 1), code, reason)


def parse_publish(packet: Packet, *, version: int) -> Publish:
    """PUBLISH sent to us."""
    qos = (packet.flags >> 1) & 0x03
    if qos == 3:
        raise MQTTFormatError("PUBLISH with QoS 3")
    cur = _Cursor(packet.body)
    topic = cur.text()
    packet_id = cur.int2() if qos else None
    if version == 5:
        cur.properties()
    return Publish(topic, cur.rest(), qos, bool(packet.flags & 1), packet_id)


def parse_ack(packet: Packet, *, version: int) -> Ack:
    """PUBACK/PUBREC/PUBREL/PUBCOMP: packet id and (MQTT 5) reason code."""
    cur = _Cursor(packet.body)
    packet_id = cur.int2()
    code, reason = 0, None
    if version == 5 and cur.pos < len(cur.data):
        code = cur.byte()
        if cur.pos < len(cur.data):
            reason = cur.properties()
    return Ack(packet_id, (code,), reason)


def parse_suback(packet: Packet, *, version: int) -> Ack:
    """SUBACK: packet id and one return/reason code per topic filter."""
    cur = _Cursor(packet.body)
    packet_id = cur.int2()
    reason = cur.properties() if version == 5 else None
    codes = tuple(cur.rest())
    if not codes:
        raise MQTTFormatError("SUBACK without a return code")
    return Ack(packet_id, codes, reason)


def parse_disconnect(packet: Packet, *, version: int) -> Ack:
    """DISCONNECT from the server (MQTT 5): reason code and string."""
    cur = _Cursor(packet.body)
    code = cur.byte() if cur.pos < len(cur.data) else 0
    reason = cur.properties() if version == 5 and cur.pos < len(cur.data) else None
    return Ack(0, (code,), reason)


def topic_matches(topic_filter: str, topic: str) -> bool:
    """Whether ``topic`` matches ``topic_filter`` (``+`` one level, ``#`` the rest)."""
    if topic.startswith("$") and topic_filter[:1] in ("+", "#"):
        return False  # wildcards never match $SYS-style topics at the first level
    want, have = topic_filter.split("/"), topic.split("/")
    for i, level in enumerate(want):
        if level == "#":
            return True
        if i >= len(have) or (level != "+" and level != have[i]):
            return False
    return len(want) == len(have)
