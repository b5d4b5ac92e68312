"""The ``maintenance:`` and ``alerting.flap`` config: check-config errors with file and line."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from agent.config.loader import ConfigError, load_config
from agent.config.matchers import parse_matcher
from agent.runtime.registries import REGISTRIES

AGENT = """\
agent: {listen: "127.0.0.1:0"}
check_files: []
checks:
  - {name: chat, url: "ws://127.0.0.1:1/", labels: {team: rt}}
"""


def load(tmp_path: Path, extra: str) -> list[str]:
    """Issues of an agent config with ``extra`` appended (empty when it loads)."""
    path = tmp_path / "agent.yaml"
    path.write_text(AGENT + textwrap.dedent(extra), encoding="utf-8")
    try:
        load_config(path, registries=REGISTRIES)
    except ConfigError as exc:
        return [str(issue) for issue in exc.issues]
    return []


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (
            """\
            maintenance:
              - name: nightly
                cron: "0 25 * * *"
                duration: 30m
                checks: [chat]
            """,
            ["agent.yaml:7: maintenance[0].cron: invalid cron expression '0 25 * * *'"],
        ),
        (
            """\
            maintenance:
              - name: m
                timezone: Mars/Olympus
                cron: "0 2 * * *"
                duration: 30m
                checks: [chat]
            """,
            ["agent.yaml:7: maintenance[0].timezone: unknown time zone 'Mars/Olympus'"],
        ),
        (
            """\
            maintenance:
              - name: m
                start: 2026-12-05T22:00:00
                end: 2026-12-05T21:00:00
                checks: [chat]
            """,
            ["agent.yaml:8: maintenance[0].end: end (2026-12-05 21:00:00) must be after start"],
        ),
        (
            """\
            maintenance:
              - name: m
                cron: "0 2 * * *"
                checks: [chat]
            """,
            ["agent.yaml:6: maintenance[0]: a cron window needs a duration"],
        ),
        (
            """\
            maintenance:
              - name: m
                start: 2026-12-05T22:00:00
                end: 2026-12-05T23:00:00
            """,
            ["agent.yaml:6: maintenance[0]: a window needs checks (names) or matchers"],
        ),
        (
            """\
            maintenance:
              - name: m
                cron: "0 2 * * *"
                duration: 1h
                checks: [chat, chta]
                matchers: ['team=~"(rt"']
            """,
            [
                "agent.yaml:9: maintenance[0].checks[1]: no check named 'chta'",
                "agent.yaml:10: maintenance[0].matchers: invalid regex '(rt'",
            ],
        ),
        (
            """\
            alerting:
              flap: {max_changes: -1, window: 0s}
            """,
            [
                "agent.yaml:6: alerting.flap.max_changes: Input should be greater than or equal",
                "agent.yaml:6: alerting.flap.window: Input should be greater than 0",
            ],
        ),
    ],
    ids=["bad-cron", "bad-zone", "end-before-start", "cron-without-duration", "covers-nothing",
         "unknown-check-and-bad-regex", "flap-out-of-range"],
)  # fmt: skip
def test_bad_windows_are_reported_with_file_and_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, extra: str, expected: list[str]
) -> None:
    """Each mistake is reported at its key's line."""
    monkeypatch.chdir(tmp_path)
    issues = load(tmp_path, extra)
    assert len(issues) == len(expected), issues
    for issue, start in zip(issues, expected, strict=True):
        assert issue.startswith(start), issues


def test_valid_windows_load(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Both schedule kinds and both ways of naming checks load; naive times stay in the zone."""
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "agent.yaml"
    path.write_text(
        AGENT
        + textwrap.dedent("""\
            alerting:
              flap: {max_changes: 6, window: 1h}
            maintenance:
              - {name: nightly, cron: "30 2 * * 1-5", duration: 45m, timezone: Europe/Paris,
                 checks: [chat]}
              - {name: migration, start: "2026-12-05 22:00:00", end: "2026-12-06T01:00:00+01:00",
                 matchers: ['team="rt"']}
        """),
        encoding="utf-8",
    )
    config = load_config(path, registries=REGISTRIES)
    assert [w.name for w in config.maintenance] == ["nightly", "migration"]
    assert config.alerting.flap is not None
    assert (config.alerting.flap.max_changes, config.alerting.flap.window) == (6, 3600.0)
    assert config.maintenance[1].start == dt.datetime(2026, 12, 5, 22, 0)


def test_check_config_command_exits_1_naming_the_line(tmp_path: Path) -> None:
    """``wsprobe check-config`` prints the window's error as FILE:LINE and exits 1."""
    path = tmp_path / "agent.yaml"
    path.write_text(
        AGENT + 'maintenance:\n  - {name: m, cron: "0 2 * * *", duration: 1h, checks: [nope]}\n',
        encoding="utf-8",
    )
    done = subprocess.run(
        [sys.executable, "-m", "agent", "check-config", "-c", str(path)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=False,
    )
    assert done.returncode == 1
    assert (
        "agent.yaml:6: maintenance[0].checks[0]: no check named 'nope'" in done.stdout + done.stderr
    )


@pytest.mark.parametrize(
    ("text", "labels", "expected"),
    [
        ('team="rt"', {"team": "rt"}, True),
        ("team=rt", {"team": "ops"}, False),
        ('team!="rt"', {}, True),
        ('check=~"chat-.*"', {"check": "chat-eu"}, True),
        ('check=~"chat"', {"check": "chat-eu"}, False),
        ('env!~"prod|stage"', {"env": "dev"}, True),
        ('msg="say \\"hi\\""', {"msg": 'say "hi"'}, True),
    ],
    ids=["equal", "unquoted-differs", "missing-is-empty", "regex", "regex-anchored", "not-regex",
         "escaped-quote"],
)  # fmt: skip
def test_matchers(text: str, labels: dict[str, str], expected: bool) -> None:
    """Prometheus matcher syntax: four operators, anchored regexes, quoted values."""
    assert parse_matcher(text).matches(labels) is expected


@pytest.mark.parametrize("text", ["team", "9x=1", 'a="open', "a=~("], ids=str)
def test_bad_matchers_raise_value_error(text: str) -> None:
    """Text that is not a matcher raises ValueError with a message."""
    with pytest.raises(ValueError, match=r".+"):
        parse_matcher(text)
