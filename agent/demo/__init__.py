"""Built-in demo targets so every example check has something real to probe.

``DemoServer`` serves /echo, /auth, /feed, /chat and /flaky on one port and, given
``protocol_ports``, real Socket.IO, GraphQL, MQTT and STOMP servers on the next ones;
``main`` runs it until SIGINT/SIGTERM. Protocols are documented in ``docs/demo.md``.
"""

from __future__ import annotations

from agent.demo.handlers import DEMO_TOKEN
from agent.demo.protocol_targets import ProtocolPorts, ProtocolTargets
from agent.demo.server import (
    DEFAULT_HOST,
    DEFAULT_PORT,
    FLAKY_CYCLE,
    PATHS,
    DemoServer,
    FlakyMode,
    main,
)

__all__ = [
    "DEFAULT_HOST",
    "DEFAULT_PORT",
    "DEMO_TOKEN",
    "FLAKY_CYCLE",
    "PATHS",
    "DemoServer",
    "FlakyMode",
    "ProtocolPorts",
    "ProtocolTargets",
    "main",
]
