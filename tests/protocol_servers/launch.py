"""Start a real server as a child process and wait until it says where it listens."""

from __future__ import annotations

import os
import select
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import pytest

__all__ = ["missing", "serve"]


def missing(what: str) -> None:
    """Skip, or fail in CI, when a server's tool is absent."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{what} is not installed: make test-tools installs it")
    pytest.skip(f"{what} is not installed (make test-tools installs it)")


@contextmanager
def serve(
    argv: Sequence[str],
    *,
    timeout: float = 20.0,
    cwd: str | None = None,
    env: dict[str, str] | None = None,
) -> Iterator[str]:
    """Run ``argv``; yield the first line it prints (its port); stop it afterwards."""
    with (
        tempfile.TemporaryFile("w+") as errors,
        subprocess.Popen(
            list(argv),
            stdout=subprocess.PIPE,
            stderr=errors,
            text=True,
            cwd=cwd,
            env={**os.environ, **(env or {})},
        ) as proc,
    ):
        try:
            assert proc.stdout is not None
            ready, _, _ = select.select([proc.stdout], [], [], timeout)
            line = proc.stdout.readline().strip() if ready else ""
            if not line:
                proc.kill()
                proc.wait()
                errors.seek(0)
                raise RuntimeError(
                    f"{argv[0]} did not start within {timeout:g}s: {errors.read()[-2000:]}"
                )
            yield line
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def python_server(module_file: str) -> list[str]:
    """argv running one of the Python servers of this folder."""
    return [sys.executable, module_file]
