"""The systemd unit under deploy/systemd: accepted by ``systemd-analyze verify`` and
rated OK (exposure at most 2.0) by ``systemd-analyze security``, offline."""

from __future__ import annotations

import configparser
import subprocess
import sys
from pathlib import Path

import pytest

from tests.tools import require_tool

UNIT = Path(__file__).resolve().parents[2] / "deploy" / "systemd" / "wsprobe.service"
#: Where the unit expects the agent; the test points it at this environment's instead,
#: since verify checks that the command exists.
INSTALLED = "/opt/wsprobe/bin/wsprobe"


@pytest.fixture
def unit(tmp_path: Path) -> Path:
    """The unit with ExecStart pointing at the wsprobe of this environment."""
    wsprobe = Path(sys.executable).with_name("wsprobe")
    assert wsprobe.is_file(), "the wsprobe console script of this environment"
    text = UNIT.read_text(encoding="utf-8")
    assert INSTALLED in text
    path = tmp_path / "wsprobe.service"
    path.write_text(text.replace(INSTALLED, str(wsprobe)), encoding="utf-8")
    return path


def _analyze(*args: str) -> subprocess.CompletedProcess[str]:
    tool = require_tool("systemd-analyze", install="Debian package systemd")
    return subprocess.run([tool, *args], capture_output=True, text=True, timeout=60)


def test_systemd_analyze_verify(unit: Path) -> None:
    """verify finds no error and no warning (an unknown or misspelt key is a warning)."""
    proc = _analyze("verify", str(unit))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout + proc.stderr == ""


def test_systemd_analyze_security_rates_it_ok(unit: Path) -> None:
    """The hardening brings the exposure score to 2.0 or less ("OK")."""
    proc = _analyze("security", "--offline=true", "--threshold=20", "--no-pager", str(unit))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Overall exposure level for wsprobe.service" in proc.stdout


def test_unit_has_the_promised_settings() -> None:
    """DynamicUser, StateDirectory, ProtectSystem=strict, NoNewPrivileges and the rest."""
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # keys are case-sensitive in unit files
    parser.read_string(UNIT.read_text(encoding="utf-8"))
    service = parser["Service"]
    assert service["DynamicUser"] == "yes"
    assert service["StateDirectory"] == "wsprobe"
    assert service["ProtectSystem"] == "strict"
    assert service["NoNewPrivileges"] == "yes"
    assert service["CapabilityBoundingSet"] == ""
    assert service["ExecReload"] == "/bin/kill -HUP $MAINPID"
    lines = UNIT.read_text(encoding="utf-8").splitlines()
    assert "Environment=WSPROBE_STATE_DIR=/var/lib/wsprobe" in lines
