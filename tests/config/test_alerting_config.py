"""Alerting settings in the agent config: external_url, routes, templates, with their lines."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.config.loader import load_config
from tests.config.test_loader import errors_of, write

BROKEN: list[tuple[str, str, list[str]]] = [
    (
        "external-url-not-http",
        "agent:\n  external_url: ftp://wsprobe.example.com\n",
        ["wsprobe.yaml:2: agent.external_url: must be an absolute"],
    ),
    (
        "external-url-relative",
        "agent:\n  location: lab\n  external_url: /wsprobe\n",
        ["wsprobe.yaml:3: agent.external_url: must be an absolute"],
    ),
    (
        "external-url-with-credentials",
        "agent:\n  external_url: https://u:p@wsprobe.example.com\n",
        ["wsprobe.yaml:2: agent.external_url: must not carry user info"],
    ),
    (
        "external-url-with-query",
        "agent:\n  external_url: https://wsprobe.example.com/?a=1\n",
        ["wsprobe.yaml:2: agent.external_url: must not have a query"],
    ),
    (
        "external-url-bad-port",
        "agent:\n  external_url: https://wsprobe.example.com:99999\n",
        ["wsprobe.yaml:2: agent.external_url: not a valid URL"],
    ),
]


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # File names in messages are relative to the working directory.
    monkeypatch.chdir(tmp_path)


@pytest.mark.parametrize(("text", "expected"), [c[1:] for c in BROKEN], ids=[c[0] for c in BROKEN])
def test_broken_alerting_settings_are_reported_with_their_line(
    tmp_path: Path, text: str, expected: list[str]
) -> None:
    """Each mistake is one issue naming file, line and key."""
    got = errors_of(tmp_path, {"wsprobe.yaml": "check_files: []\n" + text})
    shifted = [_shift(e) for e in expected]
    assert len(got) == len(shifted), got
    for line, want in zip(got, shifted, strict=True):
        assert line.startswith(want), (line, want)


def _shift(expected: str) -> str:
    """Account for the ``check_files`` line prepended to every case."""
    file, line, rest = expected.split(":", 2)
    return f"{file}:{int(line) + 1}:{rest}"


def test_external_url_loads_without_its_trailing_slash(tmp_path: Path) -> None:
    """A valid external_url is kept, trailing slash removed (paths are appended to it)."""
    write(
        tmp_path, {"wsprobe.yaml": "check_files: []\nagent:\n  external_url: https://x.test/w/\n"}
    )
    assert load_config(tmp_path / "wsprobe.yaml").agent.external_url == "https://x.test/w"
