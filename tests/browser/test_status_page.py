"""The status page in a real browser: Debian's chromium, headless, driven by npm
playwright-core (status_page.js), against a real ``wsprobe run --demo``.

Where the kernel allows it the agent and the browser run in a network namespace of
their own (loopback only), so the demo's fixed port cannot collide with another agent
and nothing could leave the machine even by mistake; the script also records every
request the pages make. In CI a missing browser or module is a failure: ``make test``
installs both (``test-tools``).

Set ``WSPROBE_SCREENSHOTS=DIR`` to keep the screenshots (docs/images is made this way).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

HERE = Path(__file__).parent
ROOT = HERE.parents[1]
CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))
#: Every example check of checks/ (the demo's paths and its protocol targets).
DEMO_CHECKS = sum(
    len(yaml.safe_load(path.read_text(encoding="utf-8"))["checks"])
    for path in (ROOT / "checks").glob("*.yaml")
)
#: Colours of status.css's light and dark themes (body background and text).
LIGHT_BG, DARK_BG, DARK_FG = "rgb(255, 255, 255)", "rgb(13, 17, 23)", "rgb(230, 237, 243)"


def _missing() -> str | None:
    if not CHROMIUM.exists():
        return f"{CHROMIUM} not found (apt-get install chromium; make test-tools does it)"
    if shutil.which("node") is None:
        return "node not found"
    if not (HERE / "node_modules" / "playwright-core").is_dir():
        return "playwright-core not installed (npm ci in tests/browser; make test-tools does it)"
    return None


def _netns_prefix() -> list[str]:
    """``unshare --net`` with loopback up, when this kernel and user allow it."""
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        return []
    probe = subprocess.run(["unshare", "--net", "true"], capture_output=True, check=False)
    return (
        ["unshare", "--net", "--", "sh", "-c", 'ip link set lo up && exec "$@"', "sh"]
        if (probe.returncode == 0)
        else []
    )


@pytest.fixture
def config(tmp_path: Path) -> Path:
    """config.example.yaml with a free port, a temp state dir and quick intervals."""
    cfg = yaml.safe_load((ROOT / "config.example.yaml").read_text(encoding="utf-8"))
    cfg["agent"].update(
        {"listen": "127.0.0.1:0", "location": "demo-lab", "state_dir": str(tmp_path / "state")}
    )
    cfg["check_files"] = [str(ROOT / "checks" / "*.yaml")]
    cfg["defaults"] = {"interval": "2s", "timeout": "1500ms"}
    path = tmp_path / "agent.yaml"
    path.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    return path


@pytest.mark.timeout(180)
def test_status_page_in_chromium(config: Path, tmp_path: Path) -> None:
    """Overview states match the API, the failing check shows its reason, the chart has
    points, dark and narrow render, no console error, and every request stays local."""
    missing = _missing()
    if missing:
        if os.environ.get("CI"):
            pytest.fail(f"browser test cannot run: {missing}")
        pytest.skip(missing)
    shots = Path(os.environ.get("WSPROBE_SCREENSHOTS", tmp_path))
    wsprobe = Path(sys.executable).with_name("wsprobe")
    run = subprocess.run(
        [
            *_netns_prefix(),
            "node",
            str(HERE / "status_page.js"),
            str(wsprobe),
            str(config),
            str(shots),
        ],
        capture_output=True,
        text=True,
        timeout=170,
        check=False,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    report = json.loads(run.stdout.strip().splitlines()[-1])

    shown = dict(report["states"]["shown"])
    assert len(shown) == DEMO_CHECKS
    assert shown == report["states"]["expected"]
    assert shown["demo-echo"] == "up"
    assert shown["demo-auth-required"] == "up"  # a negative check that holds
    assert report["flakyReason"] in {"handshake_status", "closed", "ping_timeout", "timeout"}
    assert report["firstTab"] == "Skip to content"
    assert report["refreshed"] == 1  # the live refresh of ?q=demo-flaky keeps its filter
    assert report["chartPoints"]["points"] >= 1
    assert report["chartPoints"]["bars"] >= 1
    assert "Watch session" in report["sections"]["demo-feed-watch"]
    assert "Relay delivery" in report["sections"]["demo-chat-relay"]
    assert report["lightBackground"] == LIGHT_BG
    assert report["darkBackground"] == DARK_BG
    assert report["darkText"] == DARK_FG
    assert report["narrow"]["checks"] == DEMO_CHECKS
    assert report["narrow"]["scrollWidth"] <= report["narrow"]["width"]
    assert report["noJsDown"]  # the filter form works without JavaScript
    assert report["consoleErrors"] == []
    base = report["base"]
    outside = [
        u for u in report["requests"] if not (u.startswith(base + "/") or u.startswith("data:"))
    ]
    assert outside == []
    assert (shots / "status-overview.png").stat().st_size > 0
