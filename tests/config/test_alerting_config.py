"""Alerting settings in the agent config: external_url, routes, templates, with their lines."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.config.loader import load_config
from agent.runtime.registries import REGISTRIES
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
    (
        "route-to-unknown-receiver",
        """\
receivers:
  - {name: log, type: log}
alerting:
  routes:
    - match: {team: payments}
      receivers: [log, pagerduty-payments]
""",
        ["wsprobe.yaml:6: alerting.routes[0].receivers[1]: receiver 'pagerduty-payments' is not"],
    ),
    (
        "route-bad-regex-and-unknown-key",
        """\
alerting:
  routes:
    - match_re: {env: "prod(", team: "a|b"}
    - matchh: {team: x}
""",
        [
            "wsprobe.yaml:3: alerting.routes[0].match_re: env: invalid regular expression 'prod('",
            "wsprobe.yaml:4: alerting.routes[1].matchh: unknown key 'matchh' (did you mean 'match'",
        ],
    ),
    (
        "route-bad-repeat-interval-and-continue",
        """\
alerting:
  routes:
    - match: {team: a}
      continue: maybe
      repeat_interval: soon
""",
        [
            "wsprobe.yaml:4: alerting.routes[0].continue:",
            "wsprobe.yaml:5: alerting.routes[0].repeat_interval: invalid duration 'soon'",
        ],
    ),
    (
        "template-syntax-error-unknown-variable-and-sandbox",
        """\
receivers:
  - name: slack
    type: slack
    url: https://hooks.slack.com/services/T/B/X
    templates:
      title: "{{ check | upper }"
      text: "{{ routing_key }}"
alerting:
  templates:
    title: "{{ ''.__class__.__mro__ }}"
""",
        [
            "wsprobe.yaml:6: receivers[0].templates.title: template syntax error on template line",
            "wsprobe.yaml:7: receivers[0].templates.text: unknown variable(s) routing_key (known:",
            "wsprobe.yaml:10: alerting.templates.title: template not allowed in the sandbox:",
        ],
    ),
    (
        "template-that-would-stall-the-agent",
        """\
alerting:
  templates:
    title: "{% for i in range(100000) %}{{ i }}{% endfor %}"
    text: "{{ message * 100000 }}"
""",
        [
            "wsprobe.yaml:3: alerting.templates.title: template not allowed in the sandbox: range",
            "wsprobe.yaml:4: alerting.templates.text: template not allowed in the sandbox: rep",
        ],
    ),
    (
        "send-resolved-not-bool",
        "receivers:\n  - {name: log, type: log, send_resolved: sometimes}\n",
        ["wsprobe.yaml:2: receivers[0].send_resolved:"],
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
    assert (
        load_config(tmp_path / "wsprobe.yaml", registries=REGISTRIES).agent.external_url
        == "https://x.test/w"
    )


def test_routes_are_agent_level_only(tmp_path: Path) -> None:
    """A check's alerting block has no routes: the key is reported where it is written."""
    got = errors_of(
        tmp_path,
        {
            "wsprobe.yaml": "check_files: [checks/*.yaml]\n",
            "checks/a.yaml": "checks:\n  - name: a\n    url: ws://127.0.0.1:1/\n"
            "    alerting:\n      routes: []\n",
        },
    )
    assert len(got) == 1
    assert got[0].startswith("checks/a.yaml:5: checks[0].alerting.routes: unknown key 'routes'"), (
        got
    )


def test_valid_routes_load_in_order(tmp_path: Path) -> None:
    """Routes keep their order, matchers and options; send_resolved defaults to true."""
    text = """\
check_files: []
receivers:
  - {name: pd, type: log, send_resolved: false}
  - {name: chat, type: log}
alerting:
  routes:
    - {match: {team: payments}, receivers: [pd], continue: true, repeat_interval: 30m}
    - {match_re: {check: "edge-.*"}, receivers: [chat], default_receivers: false}
"""
    write(tmp_path, {"wsprobe.yaml": text})
    config = load_config(tmp_path / "wsprobe.yaml", registries=REGISTRIES)
    first, second = config.alerting.routes
    assert (first.match, first.receivers, first.continue_, first.repeat_interval) == (
        {"team": "payments"},
        ("pd",),
        True,
        1800.0,
    )
    assert (second.match_re, second.default_receivers, second.continue_) == (
        {"check": "edge-.*"},
        False,
        False,
    )
    assert [r.send_resolved for r in config.receivers] == [False, True]
