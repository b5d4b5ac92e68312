"""`wsprobe schema`: the JSON Schema of the configuration on stdout."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agent.cli.main import main

SCHEMA_FILE = Path(__file__).resolve().parents[2] / "schema" / "wsprobe.schema.json"


@pytest.fixture(autouse=True)
def _restore_logging(restore_logging: None) -> None:
    """main() installs a handler on the captured stderr (see tests/conftest.py)."""


def test_schema_command_prints_the_committed_schema(capsys: pytest.CaptureFixture[str]) -> None:
    """`wsprobe schema` prints exactly the committed file (valid JSON) and exits 0."""
    assert main(["schema"]) == 0
    out = capsys.readouterr().out
    assert out == SCHEMA_FILE.read_text(encoding="utf-8")
    schema = json.loads(out)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert set(schema["properties"]) == {
        "agent",
        "check_files",
        "defaults",
        "alerting",
        "receivers",
        "checks",
        "maintenance",
    }


def test_schema_command_has_help(capsys: pytest.CaptureFixture[str]) -> None:
    """`wsprobe schema --help` says what it prints and how editors use it."""
    assert main(["schema", "--help"]) == 0
    assert "yaml-language-server" in capsys.readouterr().out
