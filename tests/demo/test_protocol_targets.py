"""The demo's protocol targets answer real wsprobe probes, and the example checks pass.

One set of targets (python-socketio, strawberry-graphql, Mosquitto, RabbitMQ) runs in a
thread for the module; a missing broker skips its tests, or fails them in CI.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from agent.config import CheckConfig
from agent.config.loader import load_config
from agent.demo import DemoServer, ProtocolPorts, ProtocolTargets
from agent.demo import brokers as demo_brokers
from agent.probes import PROBES
from agent.result import Reason
from agent.runtime.registries import REGISTRIES
from tests.protocol_servers.launch import missing

# RabbitMQ boots in ~10 s idle, longer on a loaded machine.
pytestmark = pytest.mark.timeout(150)

ROOT = Path(__file__).resolve().parents[2]
#: Which target each example file's checks probe, and the broker it needs.
PROTOCOL_FILES = {
    "socketio.yaml": ("socketio", None),
    "graphql.yaml": ("graphql", None),
    "mqtt.yaml": ("mqtt", "mosquitto (Debian package mosquitto)"),
    "stomp.yaml": ("stomp", "rabbitmq-server (Debian package rabbitmq-server)"),
}


class TargetsThread:
    """ProtocolTargets on free ports, on their own loop in a thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.targets = ProtocolTargets()

    def call(self, coro: Any, timeout: float) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def __enter__(self) -> TargetsThread:
        self.thread.start()
        self.call(self.targets.start("127.0.0.1", ProtocolPorts.after(0)), 30)
        self.call(self.targets.wait_ready(), 120)
        return self

    def __exit__(self, *exc: object) -> None:
        self.call(self.targets.stop(), 30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


@pytest.fixture(scope="module")
def targets() -> Iterator[ProtocolTargets]:
    """Every protocol target this machine can run, started once for the module."""
    with TargetsThread() as running:
        yield running.targets


def _url(targets: ProtocolTargets, protocol: str, needs: str | None) -> str:
    if protocol not in targets.urls:
        missing(needs or protocol)
    return targets.urls[protocol]


def _examples(file: str) -> list[CheckConfig]:
    config = ROOT / "checks" / file
    agent = ROOT / "config.example.yaml"
    checks = load_config(agent, registries=REGISTRIES).checks
    names = {c["name"] for c in yaml.safe_load(config.read_text(encoding="utf-8"))["checks"]}
    return [c for c in checks if c.name in names]


def _aimed(check: CheckConfig, url: str) -> CheckConfig:
    """The example check with its host:port replaced by the running target's."""
    aimed = urlsplit(check.url)._replace(netloc=urlsplit(url).netloc).geturl()
    return check.model_copy(update={"url": aimed})


@pytest.mark.parametrize("file", sorted(PROTOCOL_FILES))
async def test_example_protocol_checks_succeed(targets: ProtocolTargets, file: str) -> None:
    """Each protocol example in checks/ succeeds against the demo's real server."""
    protocol, needs = PROTOCOL_FILES[file]
    url = _url(targets, protocol, needs)
    checks = _examples(file)
    assert checks
    for example in checks:
        assert example.protocol is not None
        check = _aimed(example, url)
        result = await PROBES[check.kind](check)
        assert result.success, f"{check.name}: {result.reason}: {result.message}"
        assert result.phases["protocol"] > 0
        assert len(result.steps) == len(example.protocol.steps)


@pytest.mark.parametrize(
    ("protocol", "name"),
    [
        ("socketio", "socketio"),
        ("graphql", "graphql-transport-ws"),
        ("graphql", "subscriptions-transport-ws"),
    ],
    ids=["socketio", "graphql-transport-ws", "subscriptions-transport-ws"],
)
async def test_wrong_token_is_auth_rejected(
    targets: ProtocolTargets, protocol: str, name: str
) -> None:
    """The Socket.IO and GraphQL targets refuse a wrong token in their handshake."""
    url = _url(targets, protocol, None)
    check = CheckConfig.model_validate(
        {
            "name": "wrong-token",
            "url": url,
            "pings": 0,
            "protocol": {"name": name, "payload": {"token": "not-the-token"}},
        }
    )
    result = await PROBES["probe"](check)
    assert result.reason is Reason.AUTH_REJECTED, result.message


async def test_socketio_join_tells_the_room(targets: ProtocolTargets) -> None:
    """join acknowledges and sends ``joined`` with the room's member count."""
    url = _url(targets, "socketio", None)
    steps = [
        {"emit": {"event": "join", "args": ["r1"], "ack": True}},
        {"expect": {"event": "joined", "json": [{"room": "r1", "members": 1}]}},
        {"name": "bad", "emit": {"event": "join", "args": [5], "ack": True}},
    ]
    check = CheckConfig.model_validate(
        {
            "name": "join",
            "url": url,
            "pings": 0,
            "protocol": {"name": "socketio", "payload": {"token": "demo-token"}, "steps": steps},
        }
    )
    result = await PROBES["probe"](check)
    assert result.success, result.message


def _no_brokers(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A machine without Mosquitto and RabbitMQ: nothing on PATH, no known paths."""
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(demo_brokers, "_MOSQUITTO_PATHS", ())
    monkeypatch.setattr(demo_brokers, "_RABBITMQ_PATHS", ())


async def test_missing_brokers_logged_and_the_rest_starts(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Without mosquitto/RabbitMQ one line each says how to get them; Socket.IO still works."""
    _no_brokers(monkeypatch, tmp_path)
    caplog.set_level(logging.INFO, logger="agent.demo")
    targets = ProtocolTargets()
    await targets.start("127.0.0.1", ProtocolPorts.after(0))
    try:
        assert sorted(targets.urls) == ["graphql", "socketio"]
        lines = [r.getMessage() for r in caplog.records if "skipped" in r.getMessage()]
        assert lines == [
            "demo MQTT target skipped: mosquitto is not installed"
            " (apt-get install mosquitto; make test installs it)",
            "demo STOMP target skipped: RabbitMQ is not installed"
            " (apt-get install rabbitmq-server; make test installs it)",
        ]
        check = CheckConfig.model_validate(
            {
                "name": "sio",
                "url": targets.urls["socketio"],
                "pings": 1,
                "protocol": {"name": "socketio", "payload": {"token": "demo-token"}},
            }
        )
        result = await PROBES["probe"](check)
        assert result.success, result.message
    finally:
        await targets.stop()


async def test_missing_graphql_library_logged_and_the_rest_starts(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Without the demo extra (strawberry) GraphQL is left out with a line saying so."""
    _no_brokers(monkeypatch, tmp_path)
    # None in sys.modules makes the import raise ImportError, as a missing package does.
    monkeypatch.setitem(sys.modules, "agent.demo.graphql_schema", None)
    caplog.set_level(logging.WARNING, logger="agent.demo")
    targets = ProtocolTargets()
    await targets.start("127.0.0.1", ProtocolPorts.after(0))
    try:
        assert sorted(targets.urls) == ["socketio"]
        assert any(
            "demo GraphQL target skipped: strawberry-graphql is not installed" in r.getMessage()
            and "wsprobe[demo]" in r.getMessage()
            for r in caplog.records
        )
    finally:
        await targets.stop()


async def test_stop_during_broker_boot_leaves_nothing(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Stopping while RabbitMQ boots kills it and removes its folder."""
    if not os.access("/usr/lib/rabbitmq/bin/rabbitmq-server", os.X_OK):
        missing("rabbitmq-server (Debian package rabbitmq-server)")
    monkeypatch.setattr(demo_brokers, "_MOSQUITTO_PATHS", ())
    monkeypatch.setenv("PATH", str(tmp_path) + os.pathsep + "/usr/bin")
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    targets = ProtocolTargets()
    await targets.start("127.0.0.1", ProtocolPorts.after(0))
    folders = list(tmp_path.glob("wsprobe-demo-rabbitmq-*"))
    assert len(folders) == 1
    await targets.stop()
    assert not folders[0].exists()
    assert "stomp" not in targets.urls


async def test_taken_app_port_fails_the_whole_demo(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A taken Socket.IO/GraphQL port fails start() with OSError, and nothing stays open."""
    _no_brokers(monkeypatch, tmp_path)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        ports = ProtocolPorts(app=busy.getsockname()[1], mqtt=0, stomp=0)
        demo = DemoServer(protocol_ports=ports)
        with pytest.raises(OSError, match="address already in use"):
            await demo.start("127.0.0.1", 0)
    assert demo.protocols is None
    with pytest.raises(RuntimeError):
        _ = demo.port  # the WebSocket paths were closed again


@pytest.mark.parametrize(
    ("port", "expected"),
    [(8765, (8766, 8767, 8768)), (0, (0, 0, 0)), (65533, (0, 0, 0))],
    ids=["default", "free", "past-65535"],
)
def test_protocol_ports_follow_the_demo_port(port: int, expected: tuple[int, ...]) -> None:
    """The protocol targets take the three ports after the demo's, or free ones."""
    ports = ProtocolPorts.after(port)
    assert (ports.app, ports.mqtt, ports.stomp) == expected


async def test_graphql_ticks_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    """ticks(count:) yields at most MAX_TICKS, numbered from 1, so no client holds it forever."""
    from agent.demo import graphql_schema

    monkeypatch.setattr(graphql_schema, "TICK_INTERVAL", 0)
    view = graphql_schema.graphql_view()
    result = await view.schema.subscribe("subscription { ticks(count: 1000) { seq } }")
    seqs = [item.data["ticks"]["seq"] async for item in result]  # type: ignore[union-attr]
    assert seqs == list(range(1, graphql_schema.MAX_TICKS + 1))
