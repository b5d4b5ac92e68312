"""Real message brokers as child processes of the demo, when they are installed.

MQTT over WebSocket is Mosquitto (Debian package ``mosquitto``; ~0.1 s to start),
STOMP over WebSocket is RabbitMQ with ``rabbitmq_web_stomp`` (Debian package
``rabbitmq-server``; ~10 s to boot). Neither is required: when the binary is missing
the demo logs one line saying how to get it and goes on without that target.

Each broker runs in a private temporary folder (configuration, data, logs) on loopback
and is stopped with SIGTERM (then SIGKILL) with the demo. Output is drained so a chatty
broker never blocks on a full pipe, and logged at DEBUG.

Exceptions: :meth:`Broker.start` raises :class:`BrokerError` when the broker exits or
is not ready within its deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import signal
import socket
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path

__all__ = [
    "MOSQUITTO_INSTALL",
    "RABBITMQ_INSTALL",
    "Broker",
    "BrokerError",
    "free_port",
    "mosquitto",
    "rabbitmq",
    "rabbitmq_node",
]

MOSQUITTO_INSTALL = "apt-get install mosquitto"
RABBITMQ_INSTALL = "apt-get install rabbitmq-server"
_MOSQUITTO_PATHS = ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto")
_RABBITMQ_PATHS = ("/usr/lib/rabbitmq/bin/rabbitmq-server",)
_MOSQUITTO_READY_TIMEOUT = 10.0
_RABBITMQ_READY_TIMEOUT = 90.0
_STOP_TIMEOUT = 10.0

_log = logging.getLogger(__name__)


class BrokerError(Exception):
    """A broker exited, or did not say it was ready, before its deadline."""


def _which(name: str, paths: tuple[str, ...]) -> str | None:
    # The known paths first: Debian's /usr/sbin/rabbitmq-server switches to the rabbitmq
    # user, who cannot write our private folder; /usr/sbin is not on every PATH either.
    found = next((p for p in paths if os.access(p, os.X_OK)), None)
    return found or shutil.which(name)


def free_port(host: str) -> int:
    """A port free on ``host`` right now, for a broker that cannot be told to pick one."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class Broker:
    """One broker process: started by :meth:`start`, stopped by :meth:`stop`."""

    def __init__(
        self,
        name: str,
        argv: list[str],
        *,
        folder: Path,
        ready: Callable[[str], bool],
        ready_timeout: float,
        env: dict[str, str] | None = None,
        cleanup: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.name = name
        self._argv = argv
        self._folder = folder
        self._ready = ready
        self._ready_timeout = ready_timeout
        self._env = env
        self._cleanup = cleanup
        self._proc: asyncio.subprocess.Process | None = None
        self._drain: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Start the process and wait until it logs its ready line.

        Raises:
            BrokerError: It exited or was not ready within its deadline (then stopped).
        """
        self._proc = await asyncio.create_subprocess_exec(
            *self._argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env={**os.environ, **(self._env or {})},
            cwd=self._folder,  # where an Erlang crash dump would land
            start_new_session=True,  # its children (Erlang's) stop with it
        )
        assert self._proc.stdout is not None  # piped above
        tail: list[str] = []
        try:
            async with asyncio.timeout(self._ready_timeout):
                while True:
                    raw = await self._proc.stdout.readline()
                    if not raw:
                        raise BrokerError(f"{self.name} exited: {' | '.join(tail[-3:])}")
                    line = raw.decode(errors="replace").rstrip()
                    tail.append(line)
                    if self._ready(line):
                        break
        except TimeoutError:
            await self.stop(kill=True)
            raise BrokerError(
                f"{self.name} was not ready within {self._ready_timeout:g}s"
            ) from None
        except BaseException:
            # Also on cancellation (the demo stopping while RabbitMQ boots): never leave
            # a broker behind, and do not wait for a half-booted one to shut down.
            await self.stop(kill=True)
            raise
        self._drain = asyncio.create_task(self._drain_output(self._proc.stdout))

    async def _drain_output(self, output: asyncio.StreamReader) -> None:
        while line := await output.readline():
            _log.debug("%s: %s", self.name, line.decode(errors="replace").rstrip())

    async def stop(self, *, kill: bool = False) -> None:
        """SIGTERM the process group, SIGKILL it after a bound, remove the folder.

        Args:
            kill: SIGKILL at once (a broker that never became ready).
        """
        proc, self._proc = self._proc, None
        if proc is not None and proc.returncode is None:
            _signal_group(proc.pid, signal.SIGKILL if kill else signal.SIGTERM)
            try:
                async with asyncio.timeout(_STOP_TIMEOUT):
                    await proc.wait()
            except TimeoutError:
                _signal_group(proc.pid, signal.SIGKILL)
                await proc.wait()
        if self._drain is not None:
            self._drain.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._drain
            self._drain = None
        if self._cleanup is not None:
            await self._cleanup()
        shutil.rmtree(self._folder, ignore_errors=True)


def _signal_group(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


def _installed(name: str, paths: tuple[str, ...], *, target: str, install: str) -> str | None:
    """The broker's binary, or None after one line saying which target is left out."""
    binary = _which(name, paths)
    if binary is None:
        _log.warning(
            "demo %s target skipped: %s is not installed (%s; make test installs it)",
            target,
            "RabbitMQ" if name == "rabbitmq-server" else name,
            install,
        )
    return binary


def rabbitmq_node(
    folder: Path, host: str, *, web_stomp_port: int, web_mqtt_port: int | None = None
) -> dict[str, str]:
    """Write a private RabbitMQ node's files in ``folder``; return its environment.

    The node listens on ``host`` only: AMQP, distribution and epmd on free ports,
    ``rabbitmq_web_stomp`` on ``web_stomp_port`` and, if given, ``rabbitmq_web_mqtt`` on
    ``web_mqtt_port``; it has its own Erlang cookie (``HOME``) and node name, so it never
    meets a RabbitMQ already running on the machine.
    """
    amqp, dist, epmd = free_port(host), free_port(host), free_port(host)
    plugins = ["rabbitmq_web_stomp"]
    # guest/guest is accepted from loopback only (RabbitMQ's default).
    conf = (
        f"listeners.tcp.default = {host}:{amqp}\n"
        f"web_stomp.tcp.port = {web_stomp_port}\nweb_stomp.tcp.ip = {host}\n"
        "stomp.listeners.tcp = none\n"
    )
    if web_mqtt_port is not None:
        plugins.append("rabbitmq_web_mqtt")
        conf += (
            f"web_mqtt.tcp.port = {web_mqtt_port}\nweb_mqtt.tcp.ip = {host}\n"
            "mqtt.listeners.tcp = none\n"
        )
    (folder / "enabled_plugins").write_text(f"[{','.join(plugins)}].\n", encoding="utf-8")
    (folder / "rabbitmq.conf").write_text(conf, encoding="utf-8")
    return {
        "HOME": str(folder),
        "RABBITMQ_NODENAME": f"wsprobe-{epmd}@localhost",
        "RABBITMQ_CONFIG_FILE": str(folder / "rabbitmq.conf"),
        "RABBITMQ_ENABLED_PLUGINS_FILE": str(folder / "enabled_plugins"),
        "RABBITMQ_MNESIA_BASE": str(folder / "mnesia"),
        "RABBITMQ_LOG_BASE": str(folder / "log"),
        "RABBITMQ_LOGS": "-",
        "RABBITMQ_PID_FILE": str(folder / "pid"),
        "RABBITMQ_NODE_IP_ADDRESS": host,
        "RABBITMQ_NODE_PORT": str(amqp),
        "RABBITMQ_DIST_PORT": str(dist),
        "ERL_EPMD_PORT": str(epmd),
        "ERL_EPMD_ADDRESS": host,
    }


def mosquitto(host: str, ws_port: int) -> Broker | None:
    """Mosquitto with an anonymous WebSocket listener on ``host:ws_port``.

    Returns:
        The broker, not yet started; None (after logging how to install it) when the
        ``mosquitto`` binary is not installed.
    """
    binary = _installed("mosquitto", _MOSQUITTO_PATHS, target="MQTT", install=MOSQUITTO_INSTALL)
    if binary is None:
        return None
    folder = Path(tempfile.mkdtemp(prefix="wsprobe-demo-mosquitto-"))
    conf = folder / "mosquitto.conf"
    conf.write_text(
        # As root it would switch to the mosquitto user, who cannot enter our folder.
        ("user root\n" if os.geteuid() == 0 else "")
        + "log_dest stderr\nlog_type error\nlog_type warning\nlog_type notice\n"
        # The ready line ("... running") is an information message.
        + "log_type information\n"
        + "persistence false\nallow_anonymous true\n"
        # Mosquitto exits when all its listeners are WebSocket ones; a Unix socket in
        # the private folder satisfies it without opening another TCP port.
        + f"listener 0 {folder / 'mqtt.sock'}\n"
        + f"listener {ws_port} {host}\nprotocol websockets\n"
        # Without it the WebSocket listener binds every address, not just ``host``.
        + ("socket_domain ipv6\n" if ":" in host else "socket_domain ipv4\n"),
        encoding="utf-8",
    )
    return Broker(
        "mosquitto",
        [binary, "-c", str(conf)],
        folder=folder,
        ready=lambda line: line.endswith(" running"),
        ready_timeout=_MOSQUITTO_READY_TIMEOUT,
    )


def rabbitmq(host: str, web_stomp_port: int) -> Broker | None:
    """RabbitMQ with ``rabbitmq_web_stomp`` on ``host:web_stomp_port`` (user guest/guest),
    in the foreground, as a private node (:func:`rabbitmq_node`).

    Returns:
        The broker, not yet started; None (after logging how to install it) when
        ``rabbitmq-server`` is not installed.
    """
    binary = _installed(
        "rabbitmq-server", _RABBITMQ_PATHS, target="STOMP", install=RABBITMQ_INSTALL
    )
    if binary is None:
        return None
    folder = Path(tempfile.mkdtemp(prefix="wsprobe-demo-rabbitmq-"))
    env = rabbitmq_node(folder, host, web_stomp_port=web_stomp_port)

    async def kill_epmd() -> None:
        # epmd daemonises itself out of the broker's process group.
        epmd_binary = shutil.which("epmd")
        if epmd_binary is None:
            return
        proc = await asyncio.create_subprocess_exec(
            epmd_binary, "-port", env["ERL_EPMD_PORT"], "-kill",
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
            env={**os.environ, **env},
        )  # fmt: skip
        try:
            async with asyncio.timeout(_STOP_TIMEOUT):
                await proc.wait()
        except TimeoutError:
            proc.kill()
            await proc.wait()

    return Broker(
        "rabbitmq",
        [binary],
        folder=folder,
        env=env,
        ready=lambda line: "Server startup complete" in line,
        ready_timeout=_RABBITMQ_READY_TIMEOUT,
        cleanup=kill_epmd,
    )
