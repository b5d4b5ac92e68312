"""Sharding: rendezvous hashing moves little on a resize; ``--shard auto`` in a StatefulSet."""

from __future__ import annotations

import asyncio
import os
import re
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from agent.cli.main import main
from agent.runtime.shard import COUNT_ENV, INDEX_ENV, auto_shard, in_shard, shard_of
from tests.runtime.conftest import _LISTENING, Agent

NAMES = [f"check-{i}" for i in range(10_000)]


def test_resize_moves_about_one_in_n_plus_one() -> None:
    """Going from 4 to 5 agents moves about a fifth of 10,000 checks, all to the new one."""
    before = {name: shard_of(name, 4) for name in NAMES}
    after = {name: shard_of(name, 5) for name in NAMES}
    moved = [name for name in NAMES if before[name] != after[name]]
    assert all(after[name] == 5 for name in moved)
    # Expected 2,000 (1/5); the binomial standard deviation is 40.
    assert 1800 <= len(moved) <= 2200


def test_shrink_moves_only_the_removed_shards_checks() -> None:
    """Going from 5 to 4 agents moves only the checks of shard 5."""
    for name in NAMES[:2000]:
        if shard_of(name, 5) != 5:
            assert shard_of(name, 4) == shard_of(name, 5)


def test_shards_are_balanced_and_stable() -> None:
    """Each of 5 shards gets about a fifth, and the answer never changes between calls."""
    sizes = [sum(1 for name in NAMES if in_shard(name, (k, 5))) for k in range(1, 6)]
    assert sum(sizes) == len(NAMES)
    assert min(sizes) > 1800
    assert max(sizes) < 2200
    assert [shard_of("payments-ws", 7) for _ in range(3)] == [shard_of("payments-ws", 7)] * 3
    assert shard_of("anything", 1) == 1


@pytest.mark.parametrize(
    ("environ", "hostname", "count", "expected"),
    [
        ({INDEX_ENV: "2", COUNT_ENV: "3"}, "node", None, (3, 3)),
        ({COUNT_ENV: "4"}, "wsprobe-0", None, (1, 4)),
        ({INDEX_ENV: "1"}, "wsprobe-0", 2, (2, 2)),
        ({INDEX_ENV: " 0 ", COUNT_ENV: "1"}, "x", None, (1, 1)),
    ],
    ids=["pod-index-env", "hostname-suffix", "env-wins-over-hostname", "whitespace"],
)
def test_auto_shard_reads_the_ordinal(
    environ: dict[str, str], hostname: str, count: int | None, expected: tuple[int, int]
) -> None:
    """The ordinal comes from the pod-index env, else the hostname's -K suffix."""
    assert auto_shard(environ=environ, hostname=hostname, count=count) == expected


@pytest.mark.parametrize(
    ("environ", "hostname", "count", "message"),
    [
        ({COUNT_ENV: "3"}, "laptop", None, "cannot tell this pod's ordinal"),
        ({INDEX_ENV: "one", COUNT_ENV: "3"}, "x", None, f"${INDEX_ENV} must be a pod ordinal"),
        ({INDEX_ENV: "0"}, "x", None, "pass --shard-count N or set $WSPROBE_SHARD_COUNT"),
        ({INDEX_ENV: "0", COUNT_ENV: "-2"}, "x", None, f"${COUNT_ENV} must be a positive"),
        ({INDEX_ENV: "3", COUNT_ENV: "3"}, "x", None, "pod ordinal 3 (from $WSPROBE_POD_INDEX)"),
        ({}, "wsprobe-5", 2, "pod ordinal 5 (from hostname 'wsprobe-5')"),
        ({INDEX_ENV: "0"}, "x", 0, "must be at least 1"),
    ],
    ids=[
        "no-ordinal",
        "bad-index",
        "no-count",
        "bad-count",
        "index-too-big",
        "host-too-big",
        "zero-count",
    ],
)
def test_auto_shard_errors_say_what_to_set(
    environ: dict[str, str], hostname: str, count: int | None, message: str
) -> None:
    """An ordinal or count that cannot be determined is a clear error naming what to set."""
    with pytest.raises(ValueError, match=re.escape(message)):
        auto_shard(environ=environ, hostname=hostname, count=count)


@pytest.mark.usefixtures("restore_logging")
def test_run_shard_auto_error_exits_2(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``run --shard auto`` without a count exits 2 before starting, naming the fix."""
    monkeypatch.setenv(INDEX_ENV, "0")
    monkeypatch.delenv(COUNT_ENV, raising=False)
    assert main(["run", "--shard", "auto"]) == 2
    err = capsys.readouterr().err
    assert "wsprobe run: error: --shard: the number of shards is unknown" in err
    assert main(["run", "--shard", "1/2", "--shard-count", "2"]) == 2
    assert "--shard-count goes with --shard auto" in capsys.readouterr().err


async def test_run_shard_auto_keeps_its_pods_checks(tmp_path: Path) -> None:
    """A pod with index 1 of 3 runs exactly the checks of shard 2/3, and probes any on demand."""
    names = [f"c{i}" for i in range(12)]
    checks: list[dict[str, Any]] = [
        {"name": n, "url": "ws://127.0.0.1:9/", "interval": "1h", "timeout": "1s"} for n in names
    ]
    config = tmp_path / "agent.yaml"
    agent_section = {"listen": "127.0.0.1:0", "state_dir": "state"}
    config.write_text(yaml.safe_dump({"agent": agent_section, "checks": checks}), "utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("WSPROBE_")}
    env |= {INDEX_ENV: "1", COUNT_ENV: "3"}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "agent", "run", "-c", str(config), "--shard", "auto",
        cwd=tmp_path, env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    agent = Agent(proc=proc, workdir=tmp_path)
    pump = asyncio.create_task(agent._pump())
    try:
        agent.url = (await agent.wait_line(_LISTENING.pattern)).group(1)
        await agent.wait_line(r"shard 2/3")
        async with httpx.AsyncClient(timeout=5.0) as client:
            shown = (await client.get(agent.url + "/api/v1/checks")).json()["checks"]
        assert {c["name"] for c in shown} == {n for n in names if in_shard(n, (2, 3))}
        # /probe answers for any configured check, whichever shard schedules it.
        other = next(n for n in names if not in_shard(n, (2, 3)))
        async with httpx.AsyncClient(timeout=5.0) as client:
            probed = await client.get(agent.url + "/probe", params={"target": other})
            unknown = await client.get(agent.url + "/probe", params={"target": "nope"})
        assert probed.status_code == 200
        assert "probe_success 0" in probed.text  # port 9 refuses: a result, not an error
        assert unknown.status_code == 404
        assert await agent.stop() == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        await asyncio.wait_for(pump, 5.0)
