"""One registry entry: a protocol's subprotocols, URL form, validation and session class."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeAlias

from agent.config import CheckConfig
from agent.config.models import ExpectConfig
from agent.config.protocols import ProtocolConfig
from agent.probes.protocols.base import Session

__all__ = ["Problem", "Protocol", "prepare"]

#: A mistake in a check's ``protocol:`` mapping: the key path under it, and the cause.
Problem: TypeAlias = tuple[tuple[str | int, ...], str]


def _same_url(url: str, config: ProtocolConfig) -> str:
    return url


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
    """

    session: type[Session]
    subprotocols: tuple[str, ...] = ()
    required_subprotocol: str | None = None
    steps: frozenset[str] = frozenset()
    url: Callable[[str, ProtocolConfig], str] = _same_url
    checks: Callable[[ProtocolConfig], list[Problem]] = field(default=lambda config: [])
    listens: bool = False
    watch_subscribes: bool = True

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
