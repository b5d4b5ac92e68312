"""Real external tools the tests run (promtool, Prometheus, Alertmanager, kubectl...).

``make test`` installs them (the Makefile's ``test-tools``). Outside CI a test whose tool
is missing is skipped with the reason; in CI (``CI=true``) it fails saying which tool is
missing and how to get it, so a machine without them can never pass quietly.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.servers import free_port

__all__ = ["Daemon", "Daemons", "in_ci", "require_tool"]


def in_ci() -> bool:
    """Whether the suite runs in CI, where a missing tool is a failure."""
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def require_tool(*names: str, install: str) -> str:
    """The path of the first of ``names`` found on PATH.

    Args:
        names: executable names, in order of preference.
        install: how to get it (named in the skip or failure message).

    Returns:
        The executable's path. Skips the test when none is found, or fails it in CI.
    """
    for name in names:
        path = shutil.which(name)
        if path is not None:
            return path
    why = f"{' / '.join(names)} not installed ({install}; `make test-tools` installs it)"
    if in_ci():
        pytest.fail(f"CI=true and {why}", pytrace=False)
    pytest.skip(why)


@dataclass
class Daemon:
    """A running Prometheus-family daemon: its base URL and its log file."""

    url: str
    log: Path


class Daemons:
    """Real Prometheus or Alertmanager processes started by one test, on free loopback ports.

    Each gets its config file and data in ``tmp_path``; :meth:`stop` ends them all.
    """

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.procs: list[subprocess.Popen[bytes]] = []

    async def start(
        self, binary: str, name: str, config: str, *args: str, timeout: float
    ) -> Daemon:
        """Run ``binary`` with ``config`` (YAML text) and ``args``; wait until /-/ready.

        Args:
            binary: the executable (from :func:`require_tool`).
            name: names the config and log files, and the daemon in a failure message.
            config: the ``--config.file`` content.
            args: flags beyond config, listen address and log level (storage paths...).
            timeout: seconds to wait for /-/ready; past it, or if the process exits, the
                test fails with the daemon's log.
        """
        config_file = self.tmp_path / f"{name}.yml"
        config_file.write_text(config, encoding="utf-8")
        port = free_port()
        log = self.tmp_path / f"{name}.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [
                    binary,
                    f"--config.file={config_file}",
                    f"--web.listen-address=127.0.0.1:{port}",
                    "--log.level=warn",
                    *args,
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        self.procs.append(proc)
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient(timeout=1.0) as client:
            while True:
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get(f"{url}/-/ready")).status_code == 200:
                        return Daemon(url=url, log=log)
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"{name} did not start:\n" + log.read_text())
                # An external process's HTTP API: there is no event to wait on.
                await asyncio.sleep(0.1)

    def stop(self) -> None:
        """Terminate every daemon started; kill one that does not exit within 10 s."""
        for proc in self.procs:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
