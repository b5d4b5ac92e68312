"""The shipped examples: config.example.yaml and checks/*.yaml load, and each example
check succeeds against the demo targets (except the flaky one, which fails by turns)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
import yaml

from agent.config import CheckConfig
from agent.demo import DemoServer
from agent.runtime.registries import REGISTRIES

ROOT = Path(__file__).resolve().parents[2]
CHECK_FILES = sorted((ROOT / "checks").glob("*.yaml"))
DEMO_ADDRESS = "127.0.0.1:8765"
FLAKY = "demo-flaky"


def _example_names(*, protocols: bool = True) -> list[str]:
    """Check names straight from the YAML, so collection does not depend on the loader.

    Args:
        protocols: Include the checks speaking a protocol (they probe the protocol
            targets, tested in test_protocol_targets.py).
    """
    names: list[str] = []
    for path in CHECK_FILES:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        checks = [c for c in data.get("checks", []) if isinstance(c, dict)]
        names += [c["name"] for c in checks if protocols or "protocol" not in c]
    return names


@pytest.fixture
def loader(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """The config loader module, with the environment the examples read left at defaults."""
    for var in ("DEMO_TOKEN", "WSPROBE_LISTEN", "WSPROBE_LOCATION", "WSPROBE_STATE_DIR"):
        monkeypatch.delenv(var, raising=False)
    return pytest.importorskip("agent.config.loader")


def _on_demo(check: CheckConfig, demo: DemoServer) -> CheckConfig:
    """The same check aimed at the demo server's actual (free) port."""
    url = check.url.replace(DEMO_ADDRESS, f"127.0.0.1:{demo.port}")
    return check.model_copy(update={"url": url})


def test_example_config_loads(loader: ModuleType) -> None:
    """config.example.yaml loads with every check file, the log receiver as default."""
    config = loader.load_config(ROOT / "config.example.yaml", registries=REGISTRIES)
    assert config.agent.listen == "127.0.0.1:9470"
    assert config.alerting.receivers == ("log",)
    assert config.alerting.failure_threshold == 2
    assert config.alerting.success_threshold == 2
    assert {c.name for c in config.checks} == set(_example_names())


@pytest.mark.parametrize("path", CHECK_FILES, ids=[p.name for p in CHECK_FILES])
def test_check_file_loads_alone(loader: ModuleType, tmp_path: Path, path: Path) -> None:
    """Each checks/*.yaml file is valid on its own, with no defaults from the agent config."""
    agent = tmp_path / "agent.yaml"
    agent.write_text(yaml.safe_dump({"check_files": [str(path)]}), encoding="utf-8")
    config = loader.load_config(agent, registries=REGISTRIES)
    assert config.checks


@pytest.mark.parametrize("name", [n for n in _example_names(protocols=False) if n != FLAKY])
async def test_example_check_succeeds_on_demo(
    loader: ModuleType, demo: DemoServer, name: str
) -> None:
    """Every example check (but the flaky one and the protocol ones) succeeds on the demo."""
    from agent.probes import PROBES

    config = loader.load_config(ROOT / "config.example.yaml", registries=REGISTRIES)
    check = next(c for c in config.checks if c.name == name)
    if check.kind not in PROBES:
        pytest.skip(f"kind {check.kind!r} is not registered yet")
    result = await PROBES[check.kind](_on_demo(check, demo))
    assert result.success, f"{result.reason}: {result.message}"


async def test_flaky_check_fails_by_turns(loader: ModuleType, demo: DemoServer) -> None:
    """checks/flaky.yaml sees success twice, then handshake_status, ping_timeout, closed."""
    from agent.probes import PROBES

    config = loader.load_config(ROOT / "config.example.yaml", registries=REGISTRIES)
    check = _on_demo(next(c for c in config.checks if c.name == FLAKY), demo)
    reasons = [(await PROBES[check.kind](check)).reason for _ in range(5)]
    assert reasons == [None, None, "handshake_status", "ping_timeout", "closed"]


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """The command line installs its own log handler; put the root logger back after."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.mark.usefixtures("restore_logging")
@pytest.mark.parametrize(
    "path", [*CHECK_FILES, None], ids=[*(p.name for p in CHECK_FILES), "config.example.yaml"]
)
def test_check_config_accepts_the_examples(
    loader: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str], path: Path | None
) -> None:
    """`wsprobe check-config` accepts config.example.yaml and each checks/*.yaml alone."""
    from agent.cli.main import main

    if path is None:
        config, names = ROOT / "config.example.yaml", _example_names()
    else:
        config = tmp_path / "agent.yaml"
        config.write_text(yaml.safe_dump({"check_files": [str(path)]}), encoding="utf-8")
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        names = [c["name"] for c in data["checks"]]
    code = main(["check-config", "-c", str(config)])
    out, err = capsys.readouterr()
    assert code == 0, out + err
    plural = "check" if len(names) == 1 else "checks"
    assert f": OK: {len(names)} {plural} in " in out


def _doc_examples() -> dict[str, object]:
    """checks/FILE -> the YAML block of docs/protocols.md headed ``# checks/FILE``."""
    text = (ROOT / "docs" / "protocols.md").read_text(encoding="utf-8")
    section = text.split("## A complete check per protocol", 1)[1].split("\n## ", 1)[0]
    blocks = section.split("```yaml\n")[1:]
    out: dict[str, object] = {}
    for block in blocks:
        body = block.split("```", 1)[0]
        first = body.splitlines()[0]
        assert first.startswith("# checks/"), first
        out[first.removeprefix("# checks/")] = yaml.safe_load(body)
    return out


def test_protocols_doc_shows_each_protocol_example_as_it_is() -> None:
    """docs/protocols.md shows every protocol example of checks/ exactly as the file has it."""
    from agent.probes.protocols import PROTOCOLS

    shown = _doc_examples()
    protocol_files = [
        p.name
        for p in CHECK_FILES
        if any("protocol" in c for c in yaml.safe_load(p.read_text(encoding="utf-8"))["checks"])
    ]
    assert sorted(shown) == sorted(protocol_files)
    for name, data in shown.items():
        assert data == yaml.safe_load((ROOT / "checks" / name).read_text(encoding="utf-8"))
    protocols = {
        (c["protocol"]["name"] if isinstance(c["protocol"], dict) else c["protocol"])
        for data in shown.values()
        for c in data["checks"]  # type: ignore[index]
    }
    # One complete example for every protocol wsprobe speaks.
    assert protocols == set(PROTOCOLS)
