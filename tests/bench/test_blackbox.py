"""bench/blackbox_exporter.py: the exporter's module config and the reading of its /probe answer."""

from __future__ import annotations

import subprocess
from pathlib import Path

import httpx
import pytest

from bench import blackbox_exporter
from tests.tools import require_tool

# An excerpt of what blackbox_exporter 0.23 answered for the module against a server
# that upgrades and closes (captured from a real run).
PROBE_OK = """\
# HELP probe_duration_seconds Returns how long the probe took to complete in seconds
# TYPE probe_duration_seconds gauge
probe_duration_seconds 0.002387227
# HELP probe_http_duration_seconds Duration of http request by phase, summed over all redirects
# TYPE probe_http_duration_seconds gauge
probe_http_duration_seconds{phase="connect"} 0.000648186
probe_http_duration_seconds{phase="processing"} 0.001017719
probe_http_duration_seconds{phase="resolve"} 2.4266e-05
probe_http_duration_seconds{phase="tls"} 0
probe_http_duration_seconds{phase="transfer"} 0.000205395
# HELP probe_http_status_code Response HTTP status code
# TYPE probe_http_status_code gauge
probe_http_status_code 101
# HELP probe_success Displays whether or not the probe was a success
# TYPE probe_success gauge
probe_success 1
"""

PROBE_FAILED = """\
# HELP probe_duration_seconds Returns how long the probe took to complete in seconds
# TYPE probe_duration_seconds gauge
probe_duration_seconds 0.000512
# HELP probe_http_status_code Response HTTP status code
# TYPE probe_http_status_code gauge
probe_http_status_code 0
# HELP probe_success Displays whether or not the probe was a success
# TYPE probe_success gauge
probe_success 0
"""


@pytest.fixture
def exporter_binary() -> str:
    """The exporter's path; skipped without it, and a failure in CI."""
    return require_tool(
        *blackbox_exporter.BINARIES, install="Debian package prometheus-blackbox-exporter"
    )


def test_parse_probe_reads_success_status_and_phases() -> None:
    """A successful upgrade check yields success, 101, the duration and every phase."""
    probe = blackbox_exporter.parse_probe(PROBE_OK)
    assert probe.success is True
    assert probe.status_code == 101
    assert probe.duration == pytest.approx(0.002387227)
    assert probe.phases == pytest.approx(
        {
            "connect": 0.000648186,
            "processing": 0.001017719,
            "resolve": 2.4266e-05,
            "tls": 0.0,
            "transfer": 0.000205395,
        }
    )


def test_parse_probe_failed_probe_has_no_phases() -> None:
    """A refused target reads as a failure with status 0 and no phases."""
    probe = blackbox_exporter.parse_probe(PROBE_FAILED)
    assert (probe.success, probe.status_code, probe.phases) == (False, 0, {})


def test_module_config_is_accepted_by_the_exporter(tmp_path: Path, exporter_binary: str) -> None:
    """The exporter's own --config.check accepts the generated module file."""
    config = tmp_path / "blackbox.yml"
    config.write_text(blackbox_exporter.module_yaml())
    binary = exporter_binary
    done = subprocess.run(
        [binary, "--config.check", f"--config.file={config}"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stderr


def test_upgrade_check_passes_against_a_server_that_closes(exporter_binary: str) -> None:
    """The module's upgrade check succeeds with 101 on a server that upgrades and closes."""
    binary = exporter_binary
    with blackbox_exporter.closing_server() as target, blackbox_exporter.exporter(binary) as ex:
        answer = httpx.get(ex.probe_url(f"http://127.0.0.1:{target.port}/t"), timeout=10)
    probe = blackbox_exporter.parse_probe(answer.text)
    assert (probe.success, probe.status_code) == (True, 101)
    assert probe.phases["processing"] > 0
