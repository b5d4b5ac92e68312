"""What a protocol session files in its inbox, and the failures a protocol adds.

Every protocol module decodes frames into :class:`Event` objects; a handshake the
server refuses for a reason other than credentials raises :class:`ProtocolRefused`
(``handshake_status``), and a frame the protocol cannot parse raises the
:func:`malformed` ``protocol_error``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from agent.config.protocols import ProtocolExpect
from agent.probes.errors import ProbeError, ProtocolError
from agent.probes.script.matchers import Message
from agent.result import Reason

__all__ = ["Event", "ProtocolRefused", "describe_expect", "malformed"]


class ProtocolRefused(ProbeError):
    """The server refused the protocol's handshake for a reason other than credentials."""

    reason = Reason.HANDSHAKE_STATUS
    title = "protocol handshake refused"


def malformed(protocol: str, what: str) -> ProtocolError:
    """A :class:`ProtocolError` for a frame ``protocol`` cannot parse."""
    err = ProtocolError(f"malformed {protocol} frame: {what}")
    err.title = f"{protocol} protocol error"  # type: ignore[misc]
    return err


@dataclass(slots=True)
class Event:
    """One decoded protocol event: what it is, its key, its data, when it arrived."""

    kind: str  # e.g. "event", "ack", "next", "publish", "message", "receipt"
    key: str | None = None  # event name, operation id, topic, destination, ack id
    data: Message | None = None
    headers: dict[str, str] = field(default_factory=dict)
    extra: Any = None
    at: float = 0.0


def describe_expect(expect: ProtocolExpect) -> str:
    """How a wait names what it is waiting for, in an expect_timeout message."""
    from agent.probes.script.matchers import describe

    parts = [
        f"{key} {value!r}"
        for key in ("event", "id", "topic", "destination")
        if (value := getattr(expect, key)) is not None
    ]
    if expect.complete:
        parts.append("complete")
    if not expect.is_empty():
        parts.append(describe(expect))
    return ", ".join(parts) or "any event"
