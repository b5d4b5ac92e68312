"""checks/feed-watch.yaml held against the demo feed, through a server restart."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from agent.config import CheckConfig
from agent.demo import DemoServer
from agent.runtime.registries import REGISTRIES
from agent.watch import WatchSession

ROOT = Path(__file__).resolve().parents[2]


def feed_check(tmp_path: Path, port: int) -> CheckConfig:
    """The shipped example, loaded by the real loader, aimed at ``port`` and sped up."""
    from agent.config.loader import load_config

    agent = tmp_path / "agent.yaml"
    agent.write_text(
        yaml.safe_dump({"check_files": [str(ROOT / "checks" / "feed-watch.yaml")]}),
        encoding="utf-8",
    )
    check = load_config(agent, registries=REGISTRIES).checks[0]
    assert check.watch is not None
    watch = check.watch.model_copy(update={"initial_delay": 0.05, "max_delay": 0.1})
    url = check.url.replace("127.0.0.1:8765", f"127.0.0.1:{port}")
    return check.model_copy(update={"url": url, "interval": 0.3, "watch": watch})


async def test_example_survives_demo_restart(
    tmp_path: Path, results, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Authenticates, subscribes, sees ticks; after a restart re-authenticates and resubscribes."""
    monkeypatch.delenv("DEMO_TOKEN", raising=False)
    demo = DemoServer()
    await demo.start("127.0.0.1", 0)
    port = demo.port
    session = WatchSession(feed_check(tmp_path, port), on_result=results, random=lambda: 0.5)
    session.start()
    try:
        first = await results.until(lambda r: r.success and "auth" in r.phases)
        assert {"auth", "steps", "handshake"} <= set(first.phases)
        await results.until(lambda r: session.stats().matched_total >= 1)
        await demo.stop()
        await results.until(lambda r: not session.stats().connected)
        assert session.stats().reconnects.get("closed") == 1
        demo = DemoServer()
        await demo.start("127.0.0.1", port)
        again = await results.until(lambda r: r.success and "auth" in r.phases)
        assert again.steps
        assert all(step.ok for step in again.steps)
        before = session.stats().matched_total
        await results.until(lambda r: session.stats().matched_total > before)
        assert session.stats().gaps_total == 0
    finally:
        await session.stop()
        await demo.stop()
