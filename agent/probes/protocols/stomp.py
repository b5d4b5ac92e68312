"""STOMP 1.2 (negotiating 1.1 and 1.0) over WebSocket.

Handshake (phase ``protocol``): CONNECT with ``accept-version:1.0,1.1,1.2``, ``host``
(``protocol.host``, ``/`` by default: RabbitMQ reads it as the virtual host) and
``login``/``passcode``; then CONNECTED, or ERROR: ``auth_rejected`` when the server's
message is about the credentials, ``handshake_status`` otherwise, quoting it. STOMP
has no ping; the measured RTT is a receipt: ``BEGIN`` of a transaction asking for one,
then ``ABORT`` (no message is sent anywhere). A watch negotiates heart-beats of
``protocol.keepalive``, sends its own when idle, and ends a session whose server
missed its heart-beats for two periods (``ping_timeout``). Frames: :mod:`.stomp_frames`.
"""

from __future__ import annotations

import json
import re
import time
from typing import Any

from agent.config.protocols import ProtocolConfig, ProtocolExpect, ProtocolStep
from agent.config.relay import RelayConfig
from agent.probes.errors import AuthRejected, ExpectMismatch, ProbeError
from agent.probes.protocols import stomp_frames as frames
from agent.probes.protocols.base import Session
from agent.probes.protocols.events import Event, ProtocolRefused, malformed
from agent.probes.protocols.spec import Problem, Protocol, RelayPlan, marker_problem
from agent.probes.script.matchers import Message, substitute
from agent.result import ProbeResult

__all__ = ["PROTOCOL", "StompSession"]

#: Words in an ERROR answering CONNECT that say the credentials were refused.
_CREDENTIALS = re.compile(
    r"access refused|login|passcode|password|credential|authenticat|unauthori", re.IGNORECASE
)


class StompSession(Session):
    """One STOMP connection."""

    name = "stomp"

    __slots__ = ("_beat", "_frames", "_receipts", "_server_beat", "_subscriptions", "version")
    server_keepalive = "heart-beat"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._frames = frames.FrameReader()
        self._receipts = 0
        self._subscriptions = 0
        self.version = "1.0"
        #: Seconds between our heart-beats, as negotiated (held sessions only).
        self._beat: float | None = None
        #: Seconds between the server's heart-beats, as negotiated (held sessions only).
        self._server_beat: float | None = None

    def decode(self, data: str | bytes, at: float) -> list[Event]:
        raw = data.encode() if isinstance(data, str) else data
        try:
            return [_event(f) for f in self._frames.feed(raw)]
        except frames.StompFormatError as exc:
            raise malformed("STOMP", str(exc)) from None

    def _receipt_id(self) -> str:
        self._receipts += 1
        return f"wsprobe-{self._receipts}"

    async def _await_receipt(self, receipt: str, *, until: float, what: str) -> Event:
        return await self.wait(
            lambda e: e.kind == "RECEIPT" and e.headers.get("receipt-id") == receipt,
            until=until,
            what=f"the RECEIPT of {what}",
            refuse=_server_error,
        )

    async def handshake(self, result: ProbeResult, *, until: float) -> None:
        config = self.config
        headers = {"accept-version": "1.0,1.1,1.2", "host": config.host or "/"}
        if config.username is not None:
            headers["login"] = config.username
        if config.password is not None:
            headers["passcode"] = config.password.get_secret_value()
        # A held session offers to beat and to be beaten every keepalive; a probe
        # leaves too soon for either.
        beat = int(config.keepalive * 1000) if self.held else 0
        headers["heart-beat"] = f"{beat},{beat}"
        await self.send(frames.encode("CONNECT", headers))
        event = await self.wait(
            lambda e: e.kind in ("CONNECTED", "ERROR"), until=until, what="CONNECTED"
        )
        self.acked_at = event.at
        if event.kind == "CONNECTED":
            self.version = event.headers.get("version", "1.0")
            server_beats = event.headers.get("heart-beat", "0,0")
            self._beat = _beat_interval(beat, server_beats)
            self._server_beat = _beat_interval(beat, server_beats, theirs=True)
            return
        text = _error_text(event)
        if _CREDENTIALS.search(text):
            raise AuthRejected(f"STOMP ERROR: {text}")
        raise ProtocolRefused(f"STOMP ERROR: {text}")

    async def ping(self, *, until: float) -> float | None:
        receipt = self._receipt_id()
        transaction = f"wsprobe-ping-{receipt}"
        started = time.perf_counter()
        await self.send(frames.encode("BEGIN", {"transaction": transaction, "receipt": receipt}))
        event = await self._await_receipt(receipt, until=until, what="a BEGIN")
        await self.send(frames.encode("ABORT", {"transaction": transaction}))
        return event.at - started

    async def step(self, step: ProtocolStep, *, until: float) -> None:
        if step.subscribe is not None:
            sub = step.subscribe
            assert sub.destination is not None
            self._subscriptions += 1
            receipt = self._receipt_id()
            subscription = {
                "id": sub.id or f"sub-{self._subscriptions}",
                "destination": substitute(sub.destination, self.variables),
                "ack": "auto",
                **substitute(sub.headers, self.variables),
                "receipt": receipt,
            }
            await self.send(frames.encode("SUBSCRIBE", subscription))
            limit = min(time.perf_counter() + sub.timeout, until)
            await self._await_receipt(receipt, until=limit, what=f"SUBSCRIBE {sub.destination}")
            return
        pub = step.send
        assert pub is not None
        assert pub.destination is not None
        payload = substitute(pub.payload, self.variables)
        body = (payload if isinstance(payload, str) else json.dumps(payload)).encode()
        headers: dict[str, str] = {
            "destination": substitute(pub.destination, self.variables),
            **substitute(pub.headers, self.variables),
        }
        asked = self._receipt_id() if pub.receipt else None
        if asked is not None:
            headers["receipt"] = asked
        await self.send(frames.encode("SEND", headers, body))
        if asked is not None:
            limit = min(time.perf_counter() + pub.timeout, until)
            await self._await_receipt(asked, until=limit, what=f"SEND to {pub.destination}")

    def wanted(self, expect: ProtocolExpect, event: Event) -> bool:
        if event.kind != "MESSAGE":
            return False
        if expect.destination is not None and event.key != substitute(
            expect.destination, self.variables
        ):
            return False
        wanted_headers = substitute(expect.headers, self.variables)
        return all(event.headers.get(k) == v for k, v in wanted_headers.items())

    def refusal(self, expect: ProtocolExpect, event: Event) -> ProbeError | None:
        return _server_error(event)

    async def goodbye(self) -> None:
        await self.send_quietly(frames.encode("DISCONNECT", {}))

    def watched(self, event: Event) -> bool:
        return event.kind == "MESSAGE"

    def ended(self, event: Event) -> ProbeError | None:
        return _server_error(event)

    def keepalive_interval(self) -> float | None:
        return self._beat

    def keepalive_frame(self) -> bytes:
        return b"\n"

    def silence_limit(self) -> float | None:
        # Twice the period, like RabbitMQ's own tolerance for a client's beats.
        return 2 * self._server_beat if self._server_beat else None


def _beat_interval(offered_ms: int, answer: str, *, theirs: bool = False) -> float | None:
    """Seconds between heart-beats as negotiated, or None when there are none.

    STOMP 1.1: the server's ``heart-beat: sx,sy`` answers our ``cx,cy`` (we offer the
    same value both ways). We beat every ``max(cx, sy)`` when both are set; with
    ``theirs``, the server beats every ``max(sx, cy)`` when both are set.
    """
    try:
        sx, sy = (int(part) for part in answer.split(","))
    except ValueError:
        return None
    wanted_ms = sx if theirs else sy
    if not offered_ms or not wanted_ms:
        return None
    return max(offered_ms, wanted_ms) / 1000


def _event(frame: frames.Frame) -> Event:
    data = None
    if frame.command == "MESSAGE":
        try:
            data = Message(frame.body.decode())
        except UnicodeDecodeError:
            data = Message(frame.body)
    return Event(frame.command, frame.headers.get("destination"), data, frame.headers, frame)


def _error_text(event: Event) -> str:
    frame: frames.Frame = event.extra
    message = frame.headers.get("message", "")
    detail = frame.body.decode(errors="replace").strip()
    return "; ".join(t for t in (message, detail[:200]) if t) or "no message"


def _server_error(event: Event) -> ProbeError | None:
    if event.kind == "ERROR":
        return ExpectMismatch(f"STOMP ERROR: {_error_text(event)}")
    return None


def _checks(config: ProtocolConfig) -> list[Problem]:
    problems: list[Problem] = []
    for i, step in enumerate(config.steps):
        sub = step.subscribe
        if sub is not None and sub.destination is None:
            problems.append(
                (("steps", i, "subscribe"), "a STOMP subscribe needs destination: NAME")
            )
        if step.send is not None and step.send.destination is None:
            problems.append((("steps", i, "send"), "a STOMP send needs destination: NAME"))
    return problems


#: The SUBSCRIBE id of a relay's receivers; their MESSAGE frames carry it back.
RELAY_SUBSCRIPTION = "wsprobe-relay"


def _relay_checks(relay: RelayConfig) -> list[Problem]:
    problems: list[Problem] = []
    if relay.subscribe is None or relay.subscribe.destination is None:
        problems.append((("subscribe",), "a STOMP relay needs subscribe: {destination: NAME}"))
    if relay.send is None or relay.send.destination is None:
        problems.append((("send",), "a STOMP relay needs send: {destination: NAME, payload: ...}"))
    else:
        problems += marker_problem(relay.send.payload, ("send", "payload"), "send.payload")
    return problems


def _relay(relay: RelayConfig) -> RelayPlan:
    """SUBSCRIBE with a receipt, then one SEND; a delivery is a MESSAGE of that subscription."""
    assert relay.subscribe is not None
    assert relay.send is not None
    subscription = relay.subscribe.id or RELAY_SUBSCRIPTION
    return RelayPlan(
        subscribe=(
            ProtocolStep(
                name="subscribe", subscribe=relay.subscribe.model_copy(update={"id": subscription})
            ),
        ),
        publish=(ProtocolStep(name="send", send=relay.send),),
        delivery=ProtocolExpect(headers={"subscription": subscription}),
    )


PROTOCOL = Protocol(
    session=StompSession,
    subprotocols=("v12.stomp", "v11.stomp", "v10.stomp"),
    steps=frozenset({"subscribe", "send"}),
    checks=_checks,
    relay_keys=frozenset({"subscribe", "send"}),
    relay_checks=_relay_checks,
    relay=_relay,
)
