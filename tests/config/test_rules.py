"""Rules across files and registries: names, kinds, cron, receivers, risky TLS settings."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest

from agent.config.loader import ConfigError, load_config_with_warnings, validate_check
from agent.notifiers import NOTIFIERS
from agent.probes import PROBES
from agent.runtime.registries import REGISTRIES

AGENT = """\
agent:
  location: test
check_files: [checks/*.yaml]
"""


BARE = "agent:\n  location: test\n"


def write(root: Path, files: dict[str, str]) -> None:
    """Write each file (dedented) under ``root``."""
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")


def issues(root: Path, files: dict[str, str]) -> list[str]:
    """The rendered errors of loading ``wsprobe.yaml`` (fails if it loads)."""
    write(root, files)
    with pytest.raises(ConfigError) as info:
        load_config_with_warnings(root / "wsprobe.yaml", registries=REGISTRIES)
    return [str(issue) for issue in info.value.issues]


def warnings(root: Path, files: dict[str, str]) -> list[str]:
    """The rendered warnings of loading ``wsprobe.yaml`` (fails if it does not load)."""
    write(root, files)
    return [
        str(w)
        for w in load_config_with_warnings(root / "wsprobe.yaml", registries=REGISTRIES).warnings
    ]


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # File names in messages are relative to the working directory.
    monkeypatch.chdir(tmp_path)


def test_check_mistakes_are_each_reported_at_their_key(tmp_path: Path) -> None:
    """Duplicate names, unknown kinds, bad cron and undefined receivers, each at its line."""
    got = issues(
        tmp_path,
        {
            "wsprobe.yaml": AGENT + "receivers:\n  - {name: ops, type: log}\n",
            "checks/a.yaml": """\
            checks:
              - url: ws://h/
                name: same
              - name: timed
                url: ws://h/
                cron: '*/5 * * *'
            """,
            "checks/b.yaml": """\
            checks:
              - name: other
                url: ws://h/
                kind: pingpong
                alerting: {receivers: [ops, nope, ops]}
              - name: same
                url: ws://h/
            """,
        },
    )
    known = ", ".join(sorted(PROBES))
    assert got[0].startswith(
        "checks/a.yaml:6: checks[1].cron: invalid cron expression '*/5 * * *': "
    )
    assert got[1:] == [
        f"checks/b.yaml:4: checks[0].kind: unknown kind 'pingpong' (known: {known})",
        "checks/b.yaml:5: checks[0].alerting.receivers[1]: receiver 'nope' is not defined"
        " under receivers:",
        "checks/b.yaml:6: checks[1].name: duplicate check name 'same'"
        " (also defined at checks/a.yaml:3)",
    ]


def test_correct_checks_have_no_issue(tmp_path: Path) -> None:
    """Known kinds (probe by default), a valid cron and defined receivers load cleanly."""
    kind = sorted(PROBES)[-1]
    got = warnings(
        tmp_path,
        {
            "wsprobe.yaml": AGENT + "receivers:\n  - {name: ops, type: log}\n",
            "checks/a.yaml": f"""\
            checks:
              - name: a
                url: ws://h/
                cron: '*/5 * * * *'
                alerting: {{receivers: [ops]}}
              - name: b
                url: ws://h/
                kind: {kind}
            """,
        },
    )
    assert got == []


def test_receiver_mistakes_are_reported(tmp_path: Path) -> None:
    """Unknown receiver types, duplicate names and what each notifier refuses."""
    got = issues(
        tmp_path,
        {
            "wsprobe.yaml": AGENT
            + textwrap.dedent("""\
            receivers:
              - {name: ops, type: log}
              - not-a-mapping
              - {name: hook, type: webhook}
              - {name: ops, type: carrier-pigeon}
            """),
        },
    )
    known = ", ".join(sorted(NOTIFIERS))
    assert (
        f"wsprobe.yaml:8: receivers[3].type: unknown receiver type 'carrier-pigeon'"
        f" (known: {known})" in got
    )
    assert (
        "wsprobe.yaml:8: receivers[3].name: duplicate receiver name 'ops' (also at line 5)" in got
    )


def test_notifier_refusal_is_reported_at_the_receiver(tmp_path: Path) -> None:
    """A receiver its notifier cannot use is an error at that receiver."""
    got = issues(
        tmp_path,
        {
            "wsprobe.yaml": BARE
            + "receivers:\n  - {name: ops, type: log}\n  - {name: h, type: webhook}\n"
        },
    )
    assert got == ["wsprobe.yaml:5: receivers[1]: url: required for webhook receivers"]


class _Broken:
    """A notifier whose validate() has a bug."""

    def validate(self, receiver: Any) -> list[str]:
        raise RuntimeError("bug")


def test_notifier_bug_is_an_issue_not_a_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A notifier that crashes while validating gives one clear issue naming the error type."""
    monkeypatch.setitem(NOTIFIERS, "log", _Broken())
    got = issues(tmp_path, {"wsprobe.yaml": BARE + "receivers:\n  - {name: ops, type: log}\n"})
    assert got == ["wsprobe.yaml:4: receivers[0]: could not be validated (RuntimeError)"]


TLS_CASES = [
    (
        "insecure-on-wss",
        "wss://h/",
        "{insecure_skip_verify: true}",
        [
            "checks/a.yaml:4: checks[0].tls.insecure_skip_verify: warning: certificate"
            " verification is disabled: expiry, trust and host name problems will not be detected"
        ],
    ),
    (
        "insecure-on-ws",
        "ws://h/",
        "{insecure_skip_verify: true}",
        [
            "checks/a.yaml:4: checks[0].tls.insecure_skip_verify: warning: certificate"
            " verification is disabled: expiry, trust and host name problems will not be detected",
            "checks/a.yaml:4: checks[0].tls: warning: tls settings are ignored for a ws:// URL",
        ],
    ),
    ("verify-on-ws", "ws://h/", "{insecure_skip_verify: false}", []),
    ("verify-on-wss", "wss://h/", "{insecure_skip_verify: false}", []),
    ("sni-on-ws", "ws://h/", "{server_name: h.example}", [
        "checks/a.yaml:4: checks[0].tls: warning: tls settings are ignored for a ws:// URL",
    ]),
]  # fmt: skip


@pytest.mark.parametrize(
    ("url", "tls", "expected"), [c[1:] for c in TLS_CASES], ids=[c[0] for c in TLS_CASES]
)
def test_risky_tls_settings_warn(tmp_path: Path, url: str, tls: str, expected: list[str]) -> None:
    """Disabled verification and TLS settings on a plain URL load, with a warning each."""
    check = f"checks:\n  - name: a\n    url: {url}\n    tls: {tls}\n"
    assert warnings(tmp_path, {"wsprobe.yaml": AGENT, "checks/a.yaml": check}) == expected


def test_one_check_outside_a_file_is_checked_too() -> None:
    """A check built from command-line flags gets the same kind rule, without receivers."""
    with pytest.raises(ConfigError) as info:
        validate_check({"name": "x", "url": "ws://h/", "kind": "pingpong"}, registries=REGISTRIES)
    assert [i.path for i in info.value.issues] == ["kind"]
    check = validate_check(
        {"name": "x", "url": "ws://h/", "alerting": {"receivers": ["any"]}}, registries=REGISTRIES
    )
    assert check.name == "x"


TOO_SHORT = (
    "interval ({}s) must be more than the timeout, which is 10s by default: set a shorter timeout"
)


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ("interval: 2.5", [TOO_SHORT.format("2.5")]),
        ("interval: 10s", [TOO_SHORT.format("10")]),
        ("interval: 11", []),
        ("interval: 5s\n    timeout: 3s", []),
        ("interval: 5s\n    cron: '* * * * *'", []),
        ("interval: 0", ["Input should be greater than 0"]),
        ("interval: [1]", ["Input should be a valid number"]),
        ("interval: true", ["expected a duration, not the boolean true"]),
    ],
    ids=["shorter", "equal", "longer", "own-timeout", "cron", "zero", "list", "boolean"],
)
def test_interval_against_the_default_timeout(
    tmp_path: Path, extra: str, expected: list[str]
) -> None:
    """Without its own timeout, a check must run less often than the default timeout."""
    check = f"checks:\n  - name: a\n    url: ws://h/\n    {extra}\n"
    write(tmp_path, {"wsprobe.yaml": AGENT, "checks/a.yaml": check})
    try:
        load_config_with_warnings(tmp_path / "wsprobe.yaml", registries=REGISTRIES)
        got: list[str] = []
    except ConfigError as exc:
        got = [issue.message for issue in exc.issues]
    assert got == expected
