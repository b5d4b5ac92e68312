"""The Dockerfile, read as text (no Docker engine here): multi-stage, non-root,
a HEALTHCHECK that really probes /healthz, and a build context holding what it copies."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"


def _instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text(encoding="utf-8"))
    out: list[tuple[str, str]] = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def _stages() -> list[list[tuple[str, str]]]:
    stages: list[list[tuple[str, str]]] = []
    for instr in _instructions():
        if instr[0] == "FROM":
            stages.append([])
        if stages:
            stages[-1].append(instr)
    return stages


def _args(stage: list[tuple[str, str]], word: str) -> list[str]:
    return [rest for w, rest in stage if w == word]


def _healthcheck_cmd() -> list[str]:
    (check,) = _args(_stages()[-1], "HEALTHCHECK")
    cmd: list[str] = json.loads(check.split(" CMD ", 1)[1])
    return cmd


def test_multi_stage_slim() -> None:
    """A named builder stage, then a final python:3.11-slim stage copying only the venv."""
    froms = [stage[0][1] for stage in _stages()]
    assert len(froms) >= 2
    assert re.search(r"\bAS builder$", froms[0], re.IGNORECASE)
    arg = dict(a.split("=", 1) for w, a in _instructions() if w == "ARG" and "=" in a)
    final_image = froms[-1].replace("${PYTHON_VERSION}", arg["PYTHON_VERSION"])
    assert final_image == "python:3.11-slim"
    copies = _args(_stages()[-1], "COPY")
    assert [c for c in copies if c.startswith("--from=")] == [
        "--from=builder /opt/wsprobe /opt/wsprobe"
    ]


def test_final_stage_runs_as_non_root_without_build_tools() -> None:
    """The final stage ends as a non-root USER and installs nothing with pip or apt."""
    final = _stages()[-1]
    users = _args(final, "USER")
    assert users
    assert users[-1].split(":")[0] not in ("root", "0")
    runs = " ".join(_args(final, "RUN"))
    assert not re.search(r"\b(pip|apt-get|apt|gcc)\b", runs)


def test_entrypoint_volumes_and_port() -> None:
    """Exec-form entrypoint runs the daemon on /etc/wsprobe/config.yaml; state is a volume."""
    final = _stages()[-1]
    assert json.loads(_args(final, "ENTRYPOINT")[-1]) == [
        "wsprobe",
        "run",
        "-c",
        "/etc/wsprobe/config.yaml",
    ]
    assert "/var/lib/wsprobe" in json.loads(_args(final, "VOLUME")[-1])
    assert _args(final, "EXPOSE") == ["9470"]
    env = " ".join(_args(final, "ENV"))
    assert "WSPROBE_STATE_DIR=/var/lib/wsprobe" in env
    assert "WSPROBE_LISTEN=0.0.0.0:9470" in env


def test_healthcheck_uses_python_on_healthz() -> None:
    """HEALTHCHECK is exec-form Python (slim has no curl) aimed at /healthz."""
    cmd = _healthcheck_cmd()
    assert cmd[0] == "python"
    assert "curl" not in " ".join(cmd)
    env = " ".join(_args(_stages()[-1], "ENV"))
    assert "WSPROBE_HEALTHCHECK_URL=http://127.0.0.1:9470/healthz" in env


@pytest.fixture
async def healthz_server() -> AsyncIterator[tuple[str, dict[str, int]]]:
    """A real HTTP server whose /healthz answers with a status the test chooses."""
    state = {"status": 200}

    async def healthz(_: web.Request) -> web.Response:
        return web.Response(status=state["status"], text="ok\n")

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}/healthz", state
    finally:
        await runner.cleanup()


@pytest.mark.parametrize(("status", "exit_code"), [(200, 0), (503, 1)], ids=["healthy", "503"])
async def test_healthcheck_command_exit_code(
    healthz_server: tuple[str, dict[str, int]], status: int, exit_code: int
) -> None:
    """The HEALTHCHECK command exits 0 on HTTP 200 and non-zero otherwise."""
    url, state = healthz_server
    state["status"] = status
    cmd = [sys.executable, *_healthcheck_cmd()[1:]]
    env = {**os.environ, "WSPROBE_HEALTHCHECK_URL": url}
    proc = await _run(cmd, env)
    assert proc == exit_code


async def _run(cmd: list[str], env: dict[str, str]) -> int:
    proc = await asyncio.create_subprocess_exec(
        *cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    async with asyncio.timeout(10):
        return await proc.wait()


def test_build_context_has_what_the_image_copies() -> None:
    """Every COPY source exists and is let through .dockerignore's allow-list."""
    allowed = [
        line.rstrip("/")
        for line in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
        if line.startswith("!")
    ]
    for stage in _stages():
        for copy in _args(stage, "COPY"):
            if copy.startswith("--from="):
                continue
            for src in copy.split()[:-1]:
                src = src.rstrip("/")
                assert f"!{src}" in allowed, src
                # README.md is assembled by the lead; pyproject.toml names it as the readme.
                assert (ROOT / src).exists() or src == "README.md", src
    # The allow-list only works if everything else is excluded first.
    assert "*" in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
