"""Mistakes that once passed check-config: each reported at its line, all of them at once."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from agent.cli.main import main
from agent.config.loader import ConfigError, load_config
from agent.config.settings import AgentSettings
from agent.runtime.registries import REGISTRIES


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)


EVERY_MISTAKE = """\
agent:
  listen: 'not a host:port:99'
check_files: []
receivers:
  - name: first
    type: nosuch
  - name: second
    type: webhook
  - name: third
    type: webhook
    url: ftp://hooks.example/x
checks:
  - name: overlapping
    url: ws://h/
    interval: 5s
  - name: typo
    url: ws://h/
    limits:
      handshak: 1s
      ping: 100ms
      totl: 2s
    labels: {"1team": a, ok: b, "__x": c, location: d}
    auth:
      oauth2: {token_url: "ftp://idp.example/token", client_id: a, client_secret: b}
  - name: surrogate
    url: "ws://h/\\udc80"
"""

EXPECTED = [
    "wsprobe.yaml:2: agent.listen: listen must be HOST:PORT (e.g. 127.0.0.1:9470,"
    " [::1]:9470), not 'not a host:port:99'",
    "wsprobe.yaml:6: receivers[0].type: unknown receiver type 'nosuch' (known: alertmanager,"
    " discord, log, pagerduty, slack, webhook)",
    "wsprobe.yaml:7: receivers[1]: url: required for webhook receivers",
    "wsprobe.yaml:9: receivers[2]: url: must be an absolute http:// or https:// URL",
    "wsprobe.yaml:15: checks[0].interval: interval (5s) must be more than the timeout, which"
    " is 10s by default: set a shorter timeout",
    "wsprobe.yaml:19: checks[1].limits.handshak: unknown limit 'handshak'"
    " (did you mean 'handshake'?)",
    "wsprobe.yaml:21: checks[1].limits.totl: unknown limit 'totl' (did you mean 'total'?)",
    "wsprobe.yaml:22: checks[1].labels.1team: label name '1team' is not a valid Prometheus"
    " label name",
    "wsprobe.yaml:22: checks[1].labels.__x: label name '__x' is not a valid Prometheus label name",
    "wsprobe.yaml:22: checks[1].labels.location: label name 'location' is reserved by wsprobe",
    "wsprobe.yaml:24: checks[1].auth.oauth2.token_url: must be an absolute http:// or"
    " https:// URL (not ftp://)",
    "wsprobe.yaml:26: \\udc80 is half of a UTF-16 surrogate pair, not a character: write the"
    " character itself",
    "wsprobe.yaml:26: checks[2].url: URL holds a lone surrogate (\\udXXX), not a character",
]


def test_check_config_reports_every_listed_mistake_at_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """One file holding every mistake: check-config prints each with its line, exits 1."""
    (tmp_path / "wsprobe.yaml").write_text(EVERY_MISTAKE, encoding="utf-8")
    assert main(["check-config", "-c", "wsprobe.yaml"]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out == [*EXPECTED, f"{len(EXPECTED)} errors"]


def load_errors(tmp_path: Path, text: str) -> list[str]:
    (tmp_path / "wsprobe.yaml").write_text(textwrap.dedent(text), encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "wsprobe.yaml", registries=REGISTRIES)
    return [str(i) for i in info.value.issues]


def test_receiver_checks_still_run_when_the_agent_section_is_invalid(tmp_path: Path) -> None:
    """A mistake under agent: does not hide a receiver type's own checks."""
    errors = load_errors(
        tmp_path,
        """\
        agent: {max_concurrency: 0}
        check_files: []
        receivers:
          - {name: a, type: slack}
        """,
    )
    assert errors == [
        "wsprobe.yaml:1: agent.max_concurrency: Input should be greater than or equal to 1",
        "wsprobe.yaml:4: receivers[0]: url: required for slack receivers",
    ]


@pytest.mark.parametrize(
    ("check", "ok"),
    [
        ("interval: 10s", False),
        ("interval: 10.5s", True),
        ("{interval: 5s, timeout: 2s}", True),
        ("{interval: 5s, cron: '* * * * *'}", True),
        ("{}", True),
    ],
    ids=["equal-to-default", "above-default", "own-timeout", "cron", "default-interval"],
)
def test_default_timeout_must_be_below_interval(tmp_path: Path, check: str, ok: bool) -> None:
    """Without its own timeout, a check's interval must exceed the 10 s default timeout."""
    body = check if check.startswith("{") else "{" + check + "}"
    text = "check_files: []\nchecks:\n  - {name: a, url: 'ws://h/', **x}\n"
    text = text.replace("**x", body.strip("{}")).replace(", }", "}")
    path = tmp_path / "wsprobe.yaml"
    path.write_text(text, encoding="utf-8")
    if ok:
        assert len(load_config(path, registries=REGISTRIES).checks) == 1
    else:
        with pytest.raises(ConfigError) as info:
            load_config(path, registries=REGISTRIES)
        assert [str(i) for i in info.value.issues] == [
            "wsprobe.yaml:3: checks[0].interval: interval (10s) must be more than the timeout,"
            " which is 10s by default: set a shorter timeout"
        ]


def test_default_timeout_rule_applies_to_an_interval_from_defaults(tmp_path: Path) -> None:
    """defaults: {interval: 5s} without a timeout is reported for the check inheriting it."""
    errors = load_errors(
        tmp_path,
        """\
        check_files: []
        defaults: {interval: 5s}
        checks:
          - {name: a, url: 'ws://h/'}
          - {name: b, url: 'ws://h/', timeout: 1s}
        """,
    )
    assert errors == [
        "wsprobe.yaml:4: checks[0].interval: interval (5s) must be more than the timeout,"
        " which is 10s by default: set a shorter timeout"
    ]


@pytest.mark.parametrize(
    ("listen", "ok"),
    [
        ("127.0.0.1:9470", True),
        ("0.0.0.0:0", True),
        ("localhost:9470", True),
        ("probe-01.internal.example:80", True),
        (":9470", True),
        ("[::1]:9470", True),
        ("[::]:9470", True),
        ("not a host:port:99", False),
        ("host:99999", False),
        ("host", False),
        ("::1:9470", False),
        ("[::g]:9470", False),
        ("[::1:9470", False),
        ("-bad-.example:80", False),
        ("host:", False),
    ],
)
def test_listen_must_be_host_and_port(listen: str, ok: bool) -> None:
    """agent.listen takes a host name, IPv4, [IPv6] or nothing, then a port."""
    if ok:
        assert AgentSettings(listen=listen).listen == listen
    else:
        with pytest.raises(ValueError, match="listen must be HOST:PORT"):
            AgentSettings(listen=listen)


@pytest.mark.parametrize(
    ("url", "error"),
    [
        ("https://idp.example/token", None),
        ("http://127.0.0.1:8080/t", None),
        ("ftp://idp.example/token", "must be an absolute http:// or https:// URL (not ftp://)"),
        ("/token", "must be an absolute http:// or https:// URL"),
        ("https:///token", "must be an absolute http:// or https:// URL"),
        ("https://h:99999/t", "must be an absolute http:// or https:// URL"),
    ],
)
def test_oauth2_token_url_must_be_http(tmp_path: Path, url: str, error: str | None) -> None:
    """auth.oauth2.token_url is an absolute http(s) URL."""
    text = (
        "check_files: []\nchecks:\n  - name: a\n    url: ws://h/\n    timeout: 1s\n"
        f"    auth:\n      oauth2: {{token_url: '{url}', client_id: c, client_secret: s}}\n"
    )
    path = tmp_path / "wsprobe.yaml"
    path.write_text(text, encoding="utf-8")
    if error is None:
        assert load_config(path, registries=REGISTRIES).checks[0].auth.oauth2 is not None
    else:
        with pytest.raises(ConfigError) as info:
            load_config(path, registries=REGISTRIES)
        assert [str(i) for i in info.value.issues] == [
            f"wsprobe.yaml:7: checks[0].auth.oauth2.token_url: {error}"
        ]


def test_every_bad_header_and_extract_key_is_reported(tmp_path: Path) -> None:
    """Mappings with per-key rules report each bad key at its own line, not the first only."""
    errors = load_errors(
        tmp_path,
        """\
        check_files: []
        checks:
          - name: a
            url: ws://h/
            timeout: 1s
            headers:
              "Bad Name": x
              "Also bad": y
              Good: z
            steps:
              - expect:
                  regex: "."
                  extract:
                    1st: $.a
                    ok: $.b
                    later: "no-dollar"
        """,
    )
    assert errors == [
        "wsprobe.yaml:7: checks[0].headers['Bad Name']: header name 'Bad Name' is not a valid"
        " HTTP token",
        "wsprobe.yaml:8: checks[0].headers['Also bad']: header name 'Also bad' is not a valid"
        " HTTP token",
        "wsprobe.yaml:14: checks[0].steps[0].expect.extract.1st: variable name '1st' must be"
        " an identifier",
        "wsprobe.yaml:16: checks[0].steps[0].expect.extract.later: JSON path 'no-dollar' must"
        " start with '$'",
    ]
