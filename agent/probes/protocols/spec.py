"""One registry entry: a protocol's subprotocols, URL form, validation and session class.

A protocol that can carry a ``relay`` check also says which ``relay:`` keys it reads
and turns them into a :class:`RelayPlan`: the steps of its own vocabulary each receiver
and the publisher run, and the event a delivery is.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeAlias

from agent.config import CheckConfig
from agent.config.models import ExpectConfig
from agent.config.protocols import ProtocolConfig, ProtocolExpect, ProtocolStep
from agent.config.relay import RelayConfig, holds_marker
from agent.probes.protocols.base import Session

__all__ = ["Problem", "Protocol", "RelayPlan", "marker_problem", "prepare"]

#: A mistake in a check's ``protocol:`` mapping: the key path under it, and the cause.
Problem: TypeAlias = tuple[tuple[str | int, ...], str]


def _same_url(url: str, config: ProtocolConfig) -> str:
    return url


@dataclass(frozen=True, slots=True)
class RelayPlan:
    """A relay in a protocol's own steps.

    Attributes:
        subscribe: what each receiver runs after ``protocol.steps``, before the publish.
        publish: what the publisher runs; the publish time is taken before it.
        delivery: the event each receiver waits for (the relay adds the marker).
        settle: the subscription has no acknowledgement, so a ping round trip after it
            proves the server has read it before anything is published.
    """

    subscribe: tuple[ProtocolStep, ...]
    publish: tuple[ProtocolStep, ...]
    delivery: ProtocolExpect
    settle: bool = False


def marker_problem(value: object, path: tuple[str | int, ...], what: str) -> list[Problem]:
    """A problem at ``path`` when ``value`` lacks ``{{marker}}`` (``what`` names its role)."""
    if holds_marker(value):
        return []
    return [(path, f"{what} must contain {{{{marker}}}} so receivers can recognise it")]


@dataclass(frozen=True, slots=True)
class Protocol:
    """How to speak one protocol.

    Attributes:
        session: the :class:`Session` subclass that speaks it.
        subprotocols: offered in the upgrade (the check's own are offered first).
        required_subprotocol: the one the server must choose, if the protocol needs it.
        steps: step actions the protocol accepts (``expect`` and ``sleep`` always).
        url: maps the check's URL to the one dialled (e.g. Socket.IO's path and query).
        checks: extra validation of the check's ``protocol:`` mapping.
        listens: the protocol reads ``protocol.listen`` (Socket.IO's event names).
        watch_subscribes: a watch gets messages only from a ``subscribe`` step.
        relay_keys: the ``relay:`` keys a relay in this protocol reads (``publish``
            among them when it is the protocol's own publish mapping).
        relay_checks: extra validation of a relay's keys (given they are the right ones).
        relay: the relay's :class:`RelayPlan`, from a validated ``relay:`` block (None:
            the protocol cannot carry a relay).
    """

    session: type[Session]
    subprotocols: tuple[str, ...] = ()
    required_subprotocol: str | None = None
    steps: frozenset[str] = frozenset()
    url: Callable[[str, ProtocolConfig], str] = _same_url
    checks: Callable[[ProtocolConfig], list[Problem]] = field(default=lambda config: [])
    listens: bool = False
    watch_subscribes: bool = True
    relay_keys: frozenset[str] = frozenset()
    relay_checks: Callable[[RelayConfig], list[Problem]] = field(default=lambda relay: [])
    relay: Callable[[RelayConfig], RelayPlan] | None = None

    def validate(self, config: ProtocolConfig) -> list[Problem]:
        """Problems with ``config`` for this protocol, each at its key; empty when usable."""
        problems: list[Problem] = []
        allowed = self.steps | {"expect", "sleep"}
        for i, step in enumerate(config.steps):
            if step.action not in allowed:
                problems.append(
                    (
                        ("steps", i, step.action),
                        f"{config.name} has no {step.action!r} step"
                        f" (it has: {', '.join(sorted(allowed))})",
                    )
                )
        if config.listen and not self.listens:
            problems.append((("listen",), f"{config.name} has no listen (Socket.IO's only)"))
        return problems + self.checks(config)

    def validate_watch(self, config: ProtocolConfig) -> list[Problem]:
        """Problems with ``config`` on a ``watch`` check: it needs something to count."""
        if self.watch_subscribes and not any(s.subscribe for s in config.steps):
            return [
                (
                    ("steps",),
                    f"a watch over {config.name} needs a subscribe step: its messages"
                    " are what the watch counts",
                )
            ]
        return []

    def validate_relay(self, config: ProtocolConfig, relay: RelayConfig) -> list[Problem]:
        """Problems with a relay's ``relay:`` block in this protocol, each at its key."""
        if self.relay is None:
            return [((), f"{config.name} cannot carry a relay check")]
        uses = ", ".join(sorted(self.relay_keys))
        problems: list[Problem] = []
        if relay.join:
            problems.append(
                (
                    ("join",),
                    "relay.join sends raw frames; with protocol:, every connection runs"
                    " protocol.steps after the handshake",
                )
            )
        written = relay.protocol_keys()
        if "publish" in relay.model_fields_set:
            written.append("publish")
        for key in written:
            if key not in self.relay_keys:
                problems.append(((key,), f"a {config.name} relay has no {key!r} (it uses: {uses})"))
        return problems or self.relay_checks(relay)


def prepare(check: CheckConfig, protocol: Protocol) -> CheckConfig:
    """``check`` as dialled for ``protocol``: its URL form and subprotocols."""
    assert check.protocol is not None
    offered = tuple(dict.fromkeys((*check.subprotocols, *protocol.subprotocols)))
    update: dict[str, object] = {
        "url": protocol.url(check.url, check.protocol),
        "subprotocols": offered,
    }
    if protocol.required_subprotocol and check.expect.subprotocol is None:
        update["expect"] = ExpectConfig(
            status=check.expect.status,
            subprotocol=protocol.required_subprotocol,
            close_code=check.expect.close_code,
        )
    return check.model_copy(update=update)
