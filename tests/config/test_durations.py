"""Durations: seconds, one unit, or Go-style components; never a boolean."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from agent.config.loader import ConfigError, load_config
from agent.config.types import DURATION_PATTERN, parse_duration
from agent.runtime.registries import REGISTRIES


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30", 30.0),
        ("2.5", 2.5),
        ("500ms", 0.5),
        ("30s", 30.0),
        ("5m", 300.0),
        ("1h", 3600.0),
        ("1d", 86400.0),
        ("30 s", 30.0),
        (" 5m ", 300.0),
        ("1m30s", 90.0),
        ("1h2m3.5s", 3723.5),
        ("1d12h", 129600.0),
        ("1.5h30m", 7200.0),
        ("2s500ms", 2.5),
        ("1d1h1m1s1ms", 90061.001),
    ],
)
def test_duration_text_in_seconds(text: str, seconds: float) -> None:
    """Every unit's multiplier, alone and combined largest first."""
    assert parse_duration(text) == pytest.approx(seconds, abs=1e-9)
    assert re.match(DURATION_PATTERN, text), "the JSON Schema's pattern must accept it too"


@pytest.mark.parametrize(("value", "seconds"), [(30, 30.0), (0.25, 0.25), (0, 0.0)])
def test_numbers_are_seconds(value: float, seconds: float) -> None:
    """A YAML number is seconds, as a float."""
    result = parse_duration(value)
    assert result == seconds
    assert type(result) is float


@pytest.mark.parametrize(
    "text",
    [
        "",
        "s",
        "ms",
        "1x",
        "1 m 30s",
        "30s1m",
        "1m1m",
        "1s1d",
        "-1s",
        ".5s",
        "1e3",
        "1h 30m",
        "1m30",
        "5 minutes",
    ],
)
def test_bad_duration_text_is_refused(text: str) -> None:
    """Malformed text, units out of order or repeated: an error naming the value."""
    with pytest.raises(ValueError, match=f"invalid duration {re.escape(repr(text))}: use"):
        parse_duration(text)
    assert not re.match(DURATION_PATTERN, text), "the JSON Schema's pattern must refuse it"


@pytest.mark.parametrize("value", [True, False])
def test_a_boolean_is_not_a_duration(value: bool) -> None:
    """YAML true/false is refused rather than read as 1 or 0 seconds."""
    with pytest.raises(ValueError, match=f"not the boolean {str(value).lower()}"):
        parse_duration(value)


def test_compound_durations_load_everywhere(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """1m30s works in a check, defaults, alerting and a receiver alike; a bad one has a line."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "wsprobe.yaml").write_text(
        "check_files: []\n"
        "defaults: {interval: 2m30s}\n"
        "alerting: {repeat_interval: 1h30m}\n"
        "receivers:\n  - {name: r, type: log, retry_timeout: 1d12h}\n"
        "checks:\n  - {name: a, url: 'ws://h/', timeout: 1m5s}\n",
        encoding="utf-8",
    )
    config = load_config(tmp_path / "wsprobe.yaml", registries=REGISTRIES)
    check = config.checks[0]
    assert (check.interval, check.timeout) == (150.0, 65.0)
    assert config.alerting.repeat_interval == 5400.0
    assert config.receivers[0].retry_timeout == 129600.0
    (tmp_path / "wsprobe.yaml").write_text(
        "check_files: []\nchecks:\n  - name: a\n    url: ws://h/\n    interval: 30s1m\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "wsprobe.yaml", registries=REGISTRIES)
    assert [str(i) for i in info.value.issues] == [
        "wsprobe.yaml:5: checks[0].interval: invalid duration '30s1m': use seconds (30, 2.5),"
        " a unit (500ms, 30s, 5m, 1h, 1d) or units largest first (1m30s)"
    ]
