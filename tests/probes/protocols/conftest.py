"""Real protocol servers, started once per test session on loopback."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.server import ServerConnection
from websockets.asyncio.server import serve as ws_serve
from websockets.typing import Subprotocol

from agent.config import CheckConfig
from agent.demo.brokers import rabbitmq_node
from agent.probes import probe
from agent.result import ProbeResult
from tests.protocol_servers.launch import free_port, missing, python_server, serve

SERVERS = Path(__file__).resolve().parents[2] / "protocol_servers"


@pytest.fixture(scope="session")
def socketio_port() -> Iterator[int]:
    """A python-socketio server (aiohttp)."""
    with serve(python_server(str(SERVERS / "socketio_server.py"))) as port:
        yield int(port)


async def run(url: str, protocol: dict[str, Any], **fields: Any) -> ProbeResult:
    """Run a ``probe`` check speaking ``protocol`` against ``url``."""
    fields.setdefault("pings", 0)
    fields.setdefault("timeout", 5)
    check = CheckConfig.model_validate(
        {"name": "proto", "url": url, "protocol": protocol, **fields}
    )
    return await probe.run(check)


async def answered_with(frame: str | bytes, *, subprotocol: str, protocol: str) -> ProbeResult:
    """Probe ``protocol`` against a real server that answers its first message with ``frame``.

    For the malformed-frame cases: the server picks ``subprotocol`` and then sends what
    the protocol cannot parse.
    """

    async def handler(ws: ServerConnection) -> None:
        await ws.recv()
        await ws.send(frame)
        await ws.wait_closed()

    async with ws_serve(handler, "127.0.0.1", 0, subprotocols=[Subprotocol(subprotocol)]) as server:
        port = server.sockets[0].getsockname()[1]
        return await run(f"ws://127.0.0.1:{port}", {"name": protocol})


NODE_SERVERS = SERVERS / "node"


@pytest.fixture(scope="session")
def graphql_port() -> Iterator[int]:
    """The node graphql-ws (/graphql) and subscriptions-transport-ws (/legacy) servers."""
    if shutil.which("node") is None:
        missing("node")
    if not (NODE_SERVERS / "node_modules" / "graphql-ws").is_dir():
        missing("the npm packages of tests/protocol_servers/node (npm ci there)")
    with serve(["node", "graphql_server.mjs"], cwd=str(NODE_SERVERS)) as port:
        yield int(port)


@dataclass(frozen=True)
class Broker:
    """A running broker's WebSocket URLs: anonymous and password-protected."""

    open_url: str
    auth_url: str
    username: str = "probe"
    password: str = "pr0be-pass"
    #: RabbitMQ: its rabbitmq_web_mqtt endpoint (MQTT 3.1.1).
    mqtt_url: str = ""


@pytest.fixture(scope="session")
def mosquitto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    """Mosquitto with a plain listener and two WebSocket ones (anonymous, passwords).

    On the password listener the ACL lets the user use ``wsprobe/relay/#`` and only
    publish to ``wsprobe/inbox/#``: a subscription there is granted, nothing delivered.
    """
    binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    passwd = shutil.which("mosquitto_passwd")
    if not Path(binary).exists() or passwd is None:
        missing("mosquitto (Debian package mosquitto)")
    folder = tmp_path_factory.mktemp("mosquitto")
    broker = Broker("", "")
    subprocess.run(
        [passwd, "-b", "-c", str(folder / "passwd"), broker.username, broker.password],
        check=True,
        capture_output=True,
    )
    plain, open_ws, auth_ws = free_port(), free_port(), free_port()
    (folder / "mosquitto.conf").write_text(
        ""
        # As root it would switch to the mosquitto user, who cannot read pytest's folder.
        + ("user root\n" if os.geteuid() == 0 else "")
        + "per_listener_settings true\n"
        "log_dest stderr\nlog_type error\nlog_type warning\nlog_type notice\nlog_type information\n"
        f"listener {plain} 127.0.0.1\nallow_anonymous true\n"
        f"listener {open_ws} 127.0.0.1\nprotocol websockets\nsocket_domain ipv4\n"
        "allow_anonymous true\n"
        f"listener {auth_ws} 127.0.0.1\nprotocol websockets\nsocket_domain ipv4\n"
        f"allow_anonymous false\npassword_file {folder / 'passwd'}\n"
        f"acl_file {folder / 'acl'}\n"
    )
    (folder / "acl").write_text(
        f"user {broker.username}\ntopic readwrite wsprobe/relay/#\ntopic write wsprobe/inbox/#\n"
    )
    os.chmod(folder / "passwd", 0o600)
    with serve(
        [binary, "-c", str(folder / "mosquitto.conf")], ready=lambda line: "running" in line
    ):
        yield Broker(f"ws://127.0.0.1:{open_ws}", f"ws://127.0.0.1:{auth_ws}")


RABBITMQ = Path("/usr/lib/rabbitmq/bin/rabbitmq-server")


@pytest.fixture(scope="session")
def rabbitmq(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    """RabbitMQ with rabbitmq_web_stomp and rabbitmq_web_mqtt, in the foreground with its
    own epmd (~8-16 s)."""
    if not RABBITMQ.exists():
        missing("rabbitmq-server (Debian package rabbitmq-server)")
    folder = tmp_path_factory.mktemp("rabbitmq")
    web_stomp, web_mqtt = free_port(), free_port()
    env = rabbitmq_node(folder, "127.0.0.1", web_stomp_port=web_stomp, web_mqtt_port=web_mqtt)
    epmd = env["ERL_EPMD_PORT"]
    try:
        with serve(
            [str(RABBITMQ)],
            ready=lambda line: "Server startup complete" in line,
            timeout=90,
            env=env,
        ):
            yield Broker(
                f"ws://127.0.0.1:{web_stomp}/ws",
                "",
                "guest",
                "guest",
                mqtt_url=f"ws://127.0.0.1:{web_mqtt}/ws",
            )
    finally:
        # epmd daemonises itself out of the server's process group.
        subprocess.run(
            ["epmd", "-port", epmd, "-kill"], capture_output=True, env={**os.environ, **env}
        )
