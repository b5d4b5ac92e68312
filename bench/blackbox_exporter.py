"""blackbox_exporter for the side by side: its module, its process, reading its answers.

The module is the usual way to check a WebSocket endpoint with blackbox_exporter 0.23
(no WebSocket prober): the ``http`` prober sends the upgrade headers and accepts only
``101``. :func:`hang_check` shows what it does against a server that keeps the
WebSocket open; :func:`serve` is the target the comparison uses instead (upgrade, then
close at once). The comparison itself is ``bench/blackbox.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from bench import procs

__all__ = [
    "BINARIES",
    "MODULE",
    "MODULE_NAME",
    "MODULE_TIMEOUT",
    "BlackboxProbe",
    "Exporter",
    "binary",
    "closing_server",
    "exporter",
    "hang_check",
    "module_yaml",
    "parse_probe",
    "port_of",
    "serve",
]

#: Names the exporter binary goes by (Debian's package, upstream's tarball).
BINARIES = ("prometheus-blackbox-exporter", "blackbox_exporter")
MODULE_NAME = "ws_upgrade"
MODULE_TIMEOUT = 5.0
#: The module: an HTTP GET carrying the WebSocket upgrade, only 101 is a success. The
#: key is fixed (the exporter cannot generate one per request), so the correct
#: ``Sec-WebSocket-Accept`` is fixed too and is checked (RFC 6455's own example pair).
MODULE: dict[str, Any] = {
    "prober": "http",
    "timeout": f"{MODULE_TIMEOUT:g}s",
    "http": {
        "method": "GET",
        "valid_status_codes": [101],
        "preferred_ip_protocol": "ip4",
        "ip_protocol_fallback": False,
        "headers": {
            "Upgrade": "websocket",
            "Connection": "Upgrade",
            "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
            "Sec-WebSocket-Version": "13",
        },
        "fail_if_header_not_matches": [
            {"header": "Sec-WebSocket-Accept", "regexp": "^s3pPLMBiTxaQ9kYGzzhZRbK\\+xOo=$"}
        ],
    },
}


def module_yaml() -> str:
    """The exporter's config file: :data:`MODULE` under :data:`MODULE_NAME`."""
    import yaml

    return str(yaml.safe_dump({"modules": {MODULE_NAME: MODULE}}, sort_keys=False))


@dataclass
class BlackboxProbe:
    """What one ``/probe`` answer said (seconds)."""

    success: bool
    duration: float | None = None
    status_code: int | None = None
    phases: dict[str, float] = field(default_factory=dict)


def parse_probe(text: str) -> BlackboxProbe:
    """Read ``probe_success``, ``probe_duration_seconds``, status and phases from ``/probe``."""
    out = BlackboxProbe(success=False)
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "probe_success":
                out.success = sample.value == 1.0
            elif sample.name == "probe_duration_seconds":
                out.duration = sample.value
            elif sample.name == "probe_http_status_code":
                out.status_code = int(sample.value)
            elif sample.name == "probe_http_duration_seconds":
                out.phases[sample.labels["phase"]] = sample.value
    return out


def binary() -> str | None:
    """The exporter's path, if installed under one of :data:`BINARIES`."""
    for name in BINARIES:
        found = shutil.which(name)
        if found:
            return found
    return None


@dataclass
class Exporter:
    """A running blackbox_exporter."""

    popen: subprocess.Popen[bytes]
    port: int

    @property
    def pid(self) -> int:
        """The OS process id."""
        return self.popen.pid

    def probe_url(self, target: str) -> str:
        """The ``/probe`` URL checking ``target`` with :data:`MODULE`."""
        return f"http://127.0.0.1:{self.port}/probe?module={MODULE_NAME}&target={target}"

    def open_fds(self) -> int:
        """File descriptors the exporter holds (sockets, mostly)."""
        return len(os.listdir(f"/proc/{self.pid}/fd"))


@contextlib.contextmanager
def exporter(binary: str, *, core: int = procs.BENCH_CORE) -> Iterator[Exporter]:
    """Start the exporter with :data:`MODULE` on a free port, pinned to ``core``."""
    with tempfile.TemporaryDirectory(prefix="bench-blackbox-") as tmp:
        config = Path(tmp) / "blackbox.yml"
        config.write_text(module_yaml())
        port = procs.free_port()
        argv = [
            binary,
            f"--config.file={config}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--log.level=warn",
        ]
        if shutil.which("taskset") and procs.SERVER_CORE != procs.BENCH_CORE:
            argv = ["taskset", "-c", str(core), *argv]
        popen = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 10.0
            while True:
                with contextlib.suppress(httpx.HTTPError):
                    if httpx.get(f"http://127.0.0.1:{port}/-/healthy", timeout=1).is_success:
                        break
                if time.monotonic() > deadline or popen.poll() is not None:
                    raise RuntimeError(f"blackbox_exporter did not start ({binary})")
                time.sleep(0.05)
            yield Exporter(popen, port)
        finally:
            procs.terminate(popen)


@contextlib.contextmanager
def closing_server() -> Iterator[procs.Proc]:
    """The target every figure is taken against: upgrade, then close at once."""
    proc = procs.spawn(
        [sys.executable, "-m", "bench.blackbox", "--serve"],
        core=procs.SERVER_CORE,
        what="closing-websockets",
    )
    try:
        yield proc
    finally:
        procs.stop(proc)


def serve() -> None:
    """A WebSocket server that completes each upgrade and closes (code 1000) at once."""
    import uvloop
    from websockets.asyncio.server import ServerConnection
    from websockets.asyncio.server import serve as ws_serve

    async def handler(ws: ServerConnection) -> None:
        return  # returning closes: a Close frame, then TCP close without waiting

    async def main() -> None:
        async with ws_serve(
            handler, "127.0.0.1", 0, close_timeout=0, compression=None, backlog=4096
        ) as server:
            print(f"PORT {server.sockets[0].getsockname()[1]}", flush=True)
            await asyncio.Future()

    uvloop.run(main())


async def _exporter_metric(client: httpx.AsyncClient, ex: Exporter, name: str) -> float | None:
    text = (await client.get(f"http://127.0.0.1:{ex.port}/metrics")).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name:
                return sample.value
    return None


def port_of(url: str) -> int:
    """The port of ``scheme://127.0.0.1:PORT/...``."""
    return int(url.rsplit(":", 1)[1].split("/", 1)[0])


def _established_to(port: int) -> int:
    """Client-side ESTABLISHED TCP connections to 127.0.0.1:``port`` (IPv4, any process)."""
    count = 0
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[3] == "01" and int(fields[2].rsplit(":", 1)[1], 16) == port:
            count += 1
    return count


async def hang_check(client: httpx.AsyncClient, ex: Exporter, targets: list[str]) -> dict[str, Any]:
    """Probe servers that keep the WebSocket open: does ``/probe`` ever answer?

    Two probes per target, all at once, each given ``MODULE_TIMEOUT + 3`` s by the
    client; then what the exporter still holds once the client has hung up.
    """
    ports = [port_of(t) for t in targets]

    async def held() -> dict[str, Any]:
        return {
            "exporter_fds": ex.open_fds(),
            "exporter_goroutines": await _exporter_metric(client, ex, "go_goroutines"),
            "connections_to_targets": [_established_to(port) for port in ports],
        }

    before = await held()
    wait = MODULE_TIMEOUT + 3.0

    async def one(target: str) -> str:
        t0 = time.perf_counter()
        try:
            r = await client.get(ex.probe_url(target), timeout=wait)
        except httpx.TimeoutException:
            return f"no answer after {time.perf_counter() - t0:.1f} s"
        return f"answered {r.status_code} after {time.perf_counter() - t0:.2f} s"

    urls = [f"{t}hang-{i}" for t in targets for i in range(2)]
    outcomes = await asyncio.gather(*(one(url) for url in urls))
    await asyncio.sleep(0.5)
    return {
        "targets": targets,
        "module_timeout_s": MODULE_TIMEOUT,
        "client_waited_s": wait,
        "outcomes": dict(zip(urls, outcomes, strict=True)),
        "before": before,
        "after_client_gave_up": await held(),
    }
