"""The demo's protocol targets: one real server per application protocol wsprobe speaks.

- ``socketio``: python-socketio, in process, ``ws://127.0.0.1:8766/socket.io/``;
- ``graphql-transport-ws`` and ``subscriptions-transport-ws``: strawberry-graphql, in
  process (the ``demo`` extra), ``ws://127.0.0.1:8766/graphql``;
- ``mqtt``: Mosquitto, a child process if installed, ``ws://127.0.0.1:8767/mqtt``;
- ``stomp``: RabbitMQ with ``rabbitmq_web_stomp``, a child process if installed,
  ``ws://127.0.0.1:8768/ws``.

A missing optional server is logged once and left out; the others still start.
RabbitMQ boots in the background (~10 s) so it never delays the rest of the demo.

Exceptions: :meth:`ProtocolTargets.start` raises ``OSError`` when the in-process
targets' address cannot be bound; a broker that fails is logged and left out.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass

from agent.demo.app_targets import GRAPHQL_PATH, SOCKETIO_PATH, AppTargets
from agent.demo.brokers import Broker, BrokerError, free_port, mosquitto, rabbitmq

__all__ = ["MQTT_PATH", "STOMP_PATH", "ProtocolPorts", "ProtocolTargets"]

MQTT_PATH = "/mqtt"
#: rabbitmq_web_stomp's endpoint.
STOMP_PATH = "/ws"
_MAX_PORT = 65535

_log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class ProtocolPorts:
    """Where the protocol targets listen; 0 picks a free port."""

    #: Socket.IO and GraphQL (one aiohttp site).
    app: int = 8766
    mqtt: int = 8767
    stomp: int = 8768

    @classmethod
    def after(cls, port: int) -> ProtocolPorts:
        """The three ports after the demo's own ``port``; free ones when it is 0, or
        when they would pass 65535."""
        if port == 0 or port + 3 > _MAX_PORT:
            return cls(app=0, mqtt=0, stomp=0)
        return cls(app=port + 1, mqtt=port + 2, stomp=port + 3)


def _ws(host: str, port: int, path: str) -> str:
    host = f"[{host}]" if ":" in host else host
    return f"ws://{host}:{port}{path}"


class ProtocolTargets:
    """Socket.IO, GraphQL, MQTT and STOMP targets, each a real server."""

    def __init__(self) -> None:
        self._app: AppTargets | None = None
        self._brokers: list[Broker] = []
        self._stomp_boot: asyncio.Task[None] | None = None
        self._booting: Broker | None = None
        #: protocol -> URL of every target that is serving (STOMP once RabbitMQ is up).
        self.urls: dict[str, str] = {}

    async def start(self, host: str, ports: ProtocolPorts) -> None:
        """Start every target whose server is available; log one line with the URLs.

        Args:
            host: Address to bind.
            ports: Where each target listens.

        Raises:
            OSError: The Socket.IO/GraphQL address cannot be bound.
        """
        app = AppTargets()
        await app.start(host, ports.app)
        self._app = app
        self.urls["socketio"] = _ws(host, app.port, SOCKETIO_PATH)
        if app.graphql:
            self.urls["graphql"] = _ws(host, app.port, GRAPHQL_PATH)
        mqtt_port = ports.mqtt or free_port(host)
        broker = mosquitto(host, mqtt_port)
        if broker is not None and await self._start_broker(broker):
            self.urls["mqtt"] = _ws(host, mqtt_port, MQTT_PATH)
        _log.info("demo protocol targets listening: %s", " ".join(self.urls.values()))
        stomp_port = ports.stomp or free_port(host)
        broker = rabbitmq(host, stomp_port)
        if broker is not None:
            url = _ws(host, stomp_port, STOMP_PATH)
            _log.info("demo STOMP target starting (RabbitMQ boots in ~10 s): %s", url)
            self._booting = broker
            self._stomp_boot = asyncio.create_task(self._boot_stomp(broker, url))

    async def _start_broker(self, broker: Broker) -> bool:
        try:
            await broker.start()
        except (BrokerError, OSError) as exc:
            _log.warning("demo %s target skipped: %s", broker.name, exc)
            return False
        self._brokers.append(broker)
        return True

    async def _boot_stomp(self, broker: Broker, url: str) -> None:
        if await self._start_broker(broker):
            self.urls["stomp"] = url
            _log.info("demo STOMP target listening: %s", url)

    async def wait_ready(self) -> None:
        """Wait until a booting broker (RabbitMQ) is ready or has failed."""
        if self._stomp_boot is not None:
            await asyncio.shield(self._stomp_boot)

    async def stop(self) -> None:
        """Stop every target and broker this started."""
        if self._stomp_boot is not None:
            self._stomp_boot.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._stomp_boot
            self._stomp_boot = None
        booting, self._booting = self._booting, None
        if booting is not None and booting not in self._brokers:
            # Cancelled before or while it booted: remove its folder (and process) too.
            await booting.stop(kill=True)
        app, self._app = self._app, None
        if app is not None:
            await app.stop()
        brokers, self._brokers = self._brokers, []
        await asyncio.gather(*(b.stop() for b in brokers))
        self.urls.clear()
