"""Start a real server as a child process and wait until it says it is ready."""

from __future__ import annotations

import contextlib
import os
import select
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

import pytest

__all__ = ["free_port", "missing", "python_server", "serve"]


def missing(what: str) -> None:
    """Skip, or fail in CI, when a server's tool is absent."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{what} is not installed: make test-tools installs it")
    pytest.skip(f"{what} is not installed (make test-tools installs it)")


def free_port() -> int:
    """A loopback port free right now (for servers that cannot be told to pick one)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _first_line(line: str) -> bool:
    return bool(line.strip())


@contextmanager
def serve(
    argv: Sequence[str],
    *,
    ready: Callable[[str], bool] = _first_line,
    timeout: float = 20.0,
    cwd: str | None = None,
    env: dict[str, str] | None = None,
) -> Iterator[str]:
    """Run ``argv``; yield the first output line ``ready`` accepts; stop it afterwards.

    Output is read until that line (stdout and stderr merged), then drained by a
    thread so a chatty server never blocks on a full pipe.
    """
    with (
        tempfile.TemporaryFile("w+") as log,
        subprocess.Popen(
            list(argv),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            env={**os.environ, **(env or {})},
            start_new_session=True,  # its children (e.g. Erlang's) are stopped with it
        ) as proc,
    ):
        assert proc.stdout is not None
        out = proc.stdout
        try:
            # Raw reads: select() on a buffered text pipe misses lines already buffered.
            until = time.monotonic() + timeout
            pending, found = b"", ""
            while not found:
                left = until - time.monotonic()
                readable, _, _ = select.select([out], [], [], max(left, 0))
                chunk = os.read(out.fileno(), 65536) if readable else b""
                if not chunk:
                    proc.kill()
                    proc.wait()
                    log.seek(0)
                    raise RuntimeError(
                        f"{argv[0]} was not ready within {timeout:g}s: {log.read()[-2000:]}"
                    )
                *lines, pending = (pending + chunk).split(b"\n")
                for line in lines:
                    text = line.decode(errors="replace")
                    log.write(text + "\n")
                    if not found and ready(text):
                        found = text.strip()
            drain = threading.Thread(target=_drain, args=(out.fileno(),), daemon=True)
            drain.start()
            yield found
        finally:
            _signal_group(proc, signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                _signal_group(proc, signal.SIGKILL)
                proc.wait()


def _drain(fd: int) -> None:
    with contextlib.suppress(OSError):
        while os.read(fd, 65536):
            pass


def _signal_group(proc: subprocess.Popen[bytes], sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, sig)


def python_server(module_file: str) -> list[str]:
    """argv running one of the Python servers of this folder."""
    return [sys.executable, module_file]
