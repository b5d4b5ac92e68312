"""agent.config.loader: every mistake reported at once as FILE:LINE: key.path: message."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from agent.config.loader import (
    ConfigError,
    Registries,
    load_config,
    load_config_with_warnings,
    validate_check,
)
from agent.config.models import ReceiverConfig
from agent.runtime.registries import REGISTRIES

AGENT = """\
agent:
  location: test
check_files: [checks/*.yaml]
"""


def write(root: Path, files: dict[str, str]) -> None:
    """Write each file (dedented) under ``root``."""
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")


def errors_of(root: Path, files: dict[str, str], config: str = "wsprobe.yaml") -> list[str]:
    """Load ``config`` and return the rendered issues (fails if it loads)."""
    write(root, files)
    with pytest.raises(ConfigError) as info:
        load_config(root / config, registries=REGISTRIES)
    return [str(issue) for issue in info.value.issues]


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # File names in messages are relative to the working directory.
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("WSPROBE_TEST_UNSET", raising=False)


BROKEN: list[tuple[str, dict[str, str], list[str]]] = [
    (
        "label-names-outside-prometheus-grammar",
        {
            "wsprobe.yaml": AGENT,
            "checks/a.yaml": """\
            checks:
              - name: a
                url: ws://127.0.0.1:1/
                labels: {équipe: core}
              - name: b
                url: ws://127.0.0.1:1/
                labels: {location: lab}
            """,
        },
        [
            "checks/a.yaml:4: checks[0].labels.équipe: label name 'équipe' is not a valid"
            " Prometheus label name",
            "checks/a.yaml:7: checks[1].labels.location: label name 'location' is reserved"
            " by wsprobe",
        ],
    ),
    (
        "unknown-key-suggests",
        {
            "wsprobe.yaml": "agent:\n  locaton: x\ncheck_files: [checks/*.yaml]\n",
            "checks/a.yaml": """\
            checks:
              - name: a
                url: ws://127.0.0.1:1/
                intervall: 10s
            """,
        },
        [
            "wsprobe.yaml:2: agent.locaton: unknown key 'locaton' (did you mean 'location'?)",
            "checks/a.yaml:4: checks[0].intervall: unknown key 'intervall'"
            " (did you mean 'interval'?)",
        ],
    ),
    (
        "wrong-types-and-missing-keys",
        {
            "wsprobe.yaml": AGENT,
            "checks/a.yaml": """\
            checks:
              - name: a
                url: ws://127.0.0.1:1/
                pings: many
                auth:
                  basic:
                    username: u
              - url: ws://127.0.0.1:1/
            """,
        },
        [
            "checks/a.yaml:4: checks[0].pings: Input should be a valid integer,"
            " unable to parse string as an integer",
            "checks/a.yaml:6: checks[0].auth.basic.password: required key is missing",
            "checks/a.yaml:8: checks[1].name: required key is missing",
        ],
    ),
    (
        "yaml-syntax-error-has-line",
        {
            "wsprobe.yaml": AGENT,
            "checks/a.yaml": "checks:\n  - name: a\n    url: [unclosed\n",
        },
        [
            "checks/a.yaml:4: YAML syntax: while parsing a flow sequence: expected ',' or ']',"
            " but got '<stream end>'"
        ],
    ),
    (
        "duplicate-names-across-files-name-both",
        {
            "wsprobe.yaml": AGENT,
            "checks/a.yaml": "checks:\n  - name: same\n    url: ws://127.0.0.1:1/\n",
            "checks/b.yaml": "checks:\n  - {name: other, url: 'ws://h/'}\n"
            "  - name: same\n    url: ws://127.0.0.1:1/\n",
        },
        [
            "checks/b.yaml:3: checks[1].name: duplicate check name 'same'"
            " (also defined at checks/a.yaml:2)"
        ],
    ),
    (
        "timeout-not-below-interval-points-at-timeout",
        {
            "wsprobe.yaml": AGENT,
            "checks/a.yaml": """\
            checks:
              - name: a
                url: ws://127.0.0.1:1/
                interval: 5s
                timeout: 5000ms
            """,
        },
        ["checks/a.yaml:5: checks[0].timeout: timeout (5s) must be less than interval (5s)"],
    ),
    (
        "bad-urls",
        {
            "wsprobe.yaml": AGENT,
            "checks/a.yaml": """\
            checks:
              - {name: a, url: "http://example.com/"}
              - {name: b, url: "ws:///nohost"}
              - {name: c, url: "ws://h:99999/"}
            """,
        },
        [
            "checks/a.yaml:2: checks[0].url: URL scheme must be ws or wss, not 'http'",
            "checks/a.yaml:3: checks[1].url: URL has no host",
            "checks/a.yaml:4: checks[2].url: URL port is invalid: Port out of range 0-65535",
        ],
    ),
    (
        "missing-files-and-empty-glob",
        {"wsprobe.yaml": "check_files: [nope.yaml, 'conf.d/*.yaml']\n"},
        [
            "wsprobe.yaml:1: check_files[0]: file 'nope.yaml' not found",
            "wsprobe.yaml:1: check_files[1]: no file matches 'conf.d/*.yaml'",
        ],
    ),
    (
        "unknown-kind-lists-known",
        {
            "wsprobe.yaml": AGENT,
            "checks/a.yaml": "checks:\n  - name: a\n    url: ws://h/\n    kind: pingpong\n",
        },
        ["checks/a.yaml:4: checks[0].kind: unknown kind 'pingpong' (known: "],
    ),
    (
        "receivers-unknown-type-duplicate-and-undefined-reference",
        {
            "wsprobe.yaml": AGENT
            + textwrap.dedent("""\
            alerting:
              receivers: [ops, ghost]
            receivers:
              - {name: ops, type: log}
              - {name: ops, type: carrier-pigeon}
            """),
            "checks/a.yaml": """\
            checks:
              - name: a
                url: ws://h/
                alerting: {receivers: [nobody]}
            """,
        },
        [
            "wsprobe.yaml:5: alerting.receivers[1]: receiver 'ghost' is not defined under"
            " receivers:",
            "wsprobe.yaml:8: receivers[1].type: unknown receiver type 'carrier-pigeon' (known: ",
            "wsprobe.yaml:8: receivers[1].name: duplicate receiver name 'ops' (also at line 7)",
            "checks/a.yaml:4: checks[0].alerting.receivers[0]: receiver 'nobody' is not defined"
            " under receivers:",
        ],
    ),
    (
        "cron-expression",
        {
            "wsprobe.yaml": AGENT,
            "checks/a.yaml": "checks:\n  - name: a\n    url: ws://h/\n    cron: '*/5 * * *'\n",
        },
        ["checks/a.yaml:4: checks[0].cron: invalid cron expression '*/5 * * *': "],
    ),
    (
        "unset-env-var-names-variable-and-place",
        {
            "wsprobe.yaml": AGENT,
            "checks/a.yaml": """\
            checks:
              - name: a
                url: ws://h/
                auth:
                  bearer: ${WSPROBE_TEST_UNSET}
            """,
        },
        [
            "checks/a.yaml:5: checks[0].auth.bearer: environment variable WSPROBE_TEST_UNSET is"
            " not set (or give a default: ${WSPROBE_TEST_UNSET:-default})"
        ],
    ),
    (
        "secret-file-missing",
        {
            "wsprobe.yaml": AGENT,
            "checks/a.yaml": """\
            checks:
              - name: a
                url: ws://h/
                auth:
                  bearer: {file: secrets/none.txt}
            """,
        },
        ["checks/a.yaml:5: checks[0].auth.bearer: cannot read secret file"],
    ),
    (
        "duplicate-yaml-key",
        {
            "wsprobe.yaml": AGENT,
            "checks/a.yaml": "checks:\n  - name: a\n    url: ws://h/\n    url: ws://g/\n",
        },
        ["checks/a.yaml:4: duplicate key 'url' (first at line 3)"],
    ),
    (
        "defaults-error-reported-once-at-defaults",
        {
            "wsprobe.yaml": AGENT + "defaults:\n  pings: -1\n  color: red\n",
            "checks/a.yaml": "checks:\n  - {name: a, url: 'ws://h/'}\n  - {name: b, url: 'ws://h/'}\n",
        },
        [
            "wsprobe.yaml:5: defaults.pings: Input should be greater than or equal to 0",
            "wsprobe.yaml:6: defaults.color: unknown key 'color'",
        ],
    ),
    (
        "inherited-value-conflict-names-defaults",
        {
            "wsprobe.yaml": AGENT + "defaults:\n  timeout: 20s\n",
            "checks/a.yaml": "checks:\n  - name: a\n    url: ws://h/\n    interval: 10s\n",
        },
        [
            "checks/a.yaml:2: checks[0].timeout: timeout (20s) must be less than interval (10s)"
            " (inherited from defaults.timeout at wsprobe.yaml:5)"
        ],
    ),
    (
        "shapes-of-files",
        {
            "wsprobe.yaml": AGENT,
            "checks/a.yaml": "- just a list\n",
            "checks/b.yaml": "checks:\n  - 42\nextra: true\n",
            "checks/c.yaml": "checks: {name: x}\n",
        },
        [
            "checks/a.yaml:1: a check file must be a mapping with 'checks:'",
            "checks/b.yaml:2: checks[0]: a check must be a mapping with at least name and url",
            "checks/b.yaml:3: extra: unknown key 'extra' (a check file holds 'checks:')",
            "checks/c.yaml:1: checks: checks must be a list of checks",
        ],
    ),
    (
        "nested-step-errors-and-union-merged",
        {
            "wsprobe.yaml": AGENT,
            "checks/a.yaml": """\
            checks:
              - name: a
                url: ws://h/
                steps:
                  - send: x
                    sleep: 1
                  - expect:
                      path: $.a
                      gt: [1]
            """,
        },
        [
            "checks/a.yaml:5: checks[0].steps[0]: a step needs exactly one of send, send_binary,"
            " expect, sleep, app_ping (got send, sleep)",
            "checks/a.yaml:9: checks[0].steps[1].expect.gt: Input should be a valid number"
            " or a valid string",
        ],
    ),
    (
        "several-documents-and-tabs",
        {
            "wsprobe.yaml": AGENT,
            "checks/a.yaml": "checks: []\n---\nchecks: []\n",
            "checks/b.yaml": "checks:\n\t- name: x\n",
        },
        [
            "checks/a.yaml:2: YAML syntax: expected a single document in the stream",
            "checks/b.yaml:2: YAML syntax: while scanning for the next token: found character"
            " '\\t' that cannot start any token",
        ],
    ),
    (
        "header-names-and-values",
        {
            "wsprobe.yaml": AGENT,
            "checks/a.yaml": """\
            checks:
              - name: a
                url: ws://h/
                headers: {"Bad Name": x}
                auth:
                  headers: {X-Key: "sekrit\\r\\nInjected: 1"}
            """,
        },
        [
            "checks/a.yaml:4: checks[0].headers['Bad Name']: header name 'Bad Name' is not a"
            " valid HTTP token",
            "checks/a.yaml:6: checks[0].auth.headers.X-Key: header value contains a line break",
        ],
    ),
    (
        "web-password-must-be-bcrypt-and-is-not-echoed",
        {"wsprobe.yaml": "agent:\n  web:\n    basic_auth_users: {prom: plain-sekrit}\n"},
        [
            "wsprobe.yaml:3: agent.web.basic_auth_users.prom: the password must be a bcrypt"
            " hash ($2b$...), e.g. from htpasswd -nbBC 12 USER PASS"
        ],
    ),
    (
        "missing-config-file",
        {},
        ["wsprobe.yaml: file not found"],
    ),
]


@pytest.mark.parametrize(("files", "expected"), [c[1:] for c in BROKEN], ids=[c[0] for c in BROKEN])
def test_broken_configs_report_every_issue_with_file_and_line(
    tmp_path: Path, files: dict[str, str], expected: list[str]
) -> None:
    """Each broken config yields exactly these issues (prefix match), in file/line order."""
    got = errors_of(tmp_path, files)
    assert len(got) == len(expected), got
    for line, want in zip(got, expected, strict=True):
        assert line.startswith(want), (line, want)


def test_many_errors_in_many_files_come_together(tmp_path: Path) -> None:
    """Errors from the agent config and two check files are all reported in one run."""
    got = errors_of(
        tmp_path,
        {
            "wsprobe.yaml": AGENT + "agentt: {}\n",
            "checks/a.yaml": "checks:\n  - {name: a, url: 'ftp://h/'}\n",
            "checks/b.yaml": "checks:\n  - {name: 'bad name', url: 'ws://h/', pings: 1000}\n",
        },
    )
    assert [g.split(": ")[0] for g in got] == [
        "wsprobe.yaml:4",
        "checks/a.yaml:2",
        "checks/b.yaml:2",
        "checks/b.yaml:2",
    ]


def test_valid_config_merges_defaults_expands_env_and_records_sources(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Defaults deep-merge under each check (check wins); ${VAR}, defaults and $${ work."""
    monkeypatch.setenv("WSPROBE_TEST_TOKEN", "tok-123")
    write(
        tmp_path,
        {
            "wsprobe.yaml": AGENT
            + textwrap.dedent("""\
            defaults:
              interval: 1m
              timeout: 5s
              labels: {team: core, tier: "1"}
              auth: {headers: {X-Env: "${WSPROBE_TEST_UNSET:-fallback}"}}
            checks:
              - name: inline
                url: ws://127.0.0.1:1/
            """),
            "checks/a.yaml": """\
            checks:
              - name: a
                url: wss://h/path
                timeout: 2s
                labels: {tier: "2"}
                headers: {X-Literal: "$${NOT_EXPANDED}"}
                auth:
                  bearer: ${WSPROBE_TEST_TOKEN}
            """,
        },
    )
    config = load_config(tmp_path / "wsprobe.yaml", registries=REGISTRIES)
    inline, a = config.checks
    assert (inline.interval, inline.timeout) == (60.0, 5.0)
    assert (a.interval, a.timeout) == (60.0, 2.0)
    assert a.labels == {"team": "core", "tier": "2"}
    assert a.headers == {"X-Literal": "${NOT_EXPANDED}"}
    assert a.auth.bearer is not None
    assert a.auth.bearer.get_secret_value() == "tok-123"
    assert a.auth.headers["X-Env"].get_secret_value() == "fallback"
    assert config.sources == {"inline": "wsprobe.yaml:10", "a": "checks/a.yaml:2"}
    # Kept as written: expanded values (secrets) live only in the checks' SecretStr fields.
    assert config.defaults["auth"] == {"headers": {"X-Env": "${WSPROBE_TEST_UNSET:-fallback}"}}


def test_secret_and_tls_files_resolve_relative_to_the_config_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """{file: PATH} secrets and TLS file paths are relative to the agent config's directory."""
    write(
        tmp_path,
        {
            "etc/wsprobe.yaml": AGENT,
            "etc/secrets/token": "s3cret\n",
            "etc/ca.pem": "not checked here\n",
            "etc/checks/a.yaml": """\
            checks:
              - name: a
                url: wss://h/
                auth: {bearer: {file: secrets/token}}
                tls: {ca_file: ca.pem}
            """,
        },
    )
    monkeypatch.chdir(tmp_path / "etc" / "checks")  # a working directory elsewhere
    (check,) = load_config(tmp_path / "etc" / "wsprobe.yaml", registries=REGISTRIES).checks
    assert check.auth.bearer is not None
    assert check.auth.bearer.get_secret_value() == "s3cret"
    assert check.tls.ca_file == str(tmp_path / "etc" / "ca.pem")


def test_secret_values_never_appear_in_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A wrong-typed secret and an env value are not echoed in any message."""
    monkeypatch.setenv("WSPROBE_TEST_TOKEN", "leak-me-env")
    got = errors_of(
        tmp_path,
        {
            "wsprobe.yaml": AGENT,
            "checks/a.yaml": """\
            checks:
              - name: a
                url: ws://h/
                timeout: ${WSPROBE_TEST_TOKEN}
                auth:
                  basic: {username: u, password: [leak-me-list]}
            """,
        },
    )
    assert got == [
        "checks/a.yaml:4: checks[0].timeout: invalid duration '${WSPROBE_TEST_TOKEN}':"
        " use seconds (30, 2.5), a unit (500ms, 30s, 5m, 1h, 1d) or units largest first (1m30s)",
        "checks/a.yaml:6: checks[0].auth.basic.password: Input should be a valid string",
    ]


def test_yaml_anchors_and_merge_keys_load(tmp_path: Path) -> None:
    """Anchors and << merge keys work; explicit keys win over merged ones."""
    write(
        tmp_path,
        {
            "wsprobe.yaml": AGENT,
            "checks/a.yaml": """\
            base: &base
              url: ws://h/
              pings: 1
            checks:
              - <<: *base
                name: a
                pings: 2
            """.replace("base: &base", "checks_base: &base"),
        },
    )
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "wsprobe.yaml", registries=REGISTRIES)
    # A check file holds only `checks:`; the anchor must live inside it.
    assert [str(i) for i in info.value.issues] == [
        "checks/a.yaml:1: checks_base: unknown key 'checks_base' (a check file holds 'checks:')"
    ]
    write(
        tmp_path,
        {
            "checks/a.yaml": """\
            checks:
              - &base
                name: a
                url: ws://h/
                pings: 1
              - <<: *base
                name: b
                pings: 2
            """
        },
    )
    a, b = load_config(tmp_path / "wsprobe.yaml", registries=REGISTRIES).checks
    assert (a.name, a.pings, b.name, b.pings, b.url) == ("a", 1, "b", 2, "ws://h/")


def test_unsafe_tags_are_rejected(tmp_path: Path) -> None:
    """A python/object tag is a YAML error, not code execution."""
    got = errors_of(
        tmp_path,
        {"wsprobe.yaml": "agent: !!python/object/apply:os.system ['echo pwned']\n"},
    )
    assert len(got) == 1
    assert got[0].startswith("wsprobe.yaml:1: YAML syntax: ")


def test_insecure_tls_is_a_warning_not_an_error(tmp_path: Path) -> None:
    """insecure_skip_verify loads, with a warning at its line."""
    write(
        tmp_path,
        {
            "wsprobe.yaml": AGENT,
            "checks/a.yaml": """\
            checks:
              - name: a
                url: wss://h/
                tls: {insecure_skip_verify: true}
            """,
        },
    )
    loaded = load_config_with_warnings(tmp_path / "wsprobe.yaml", registries=REGISTRIES)
    assert [str(w) for w in loaded.warnings] == [
        "checks/a.yaml:4: checks[0].tls.insecure_skip_verify: warning: certificate verification"
        " is disabled: expiry, trust and host name problems will not be detected"
    ]
    assert loaded.files == ["wsprobe.yaml", "checks/a.yaml"]


def test_default_glob_matching_nothing_is_fine(tmp_path: Path) -> None:
    """Without an explicit check_files, an absent checks/ directory is not an error."""
    write(tmp_path, {"wsprobe.yaml": "checks:\n  - {name: a, url: 'ws://h/'}\n"})
    assert [
        c.name for c in load_config(tmp_path / "wsprobe.yaml", registries=REGISTRIES).checks
    ] == ["a"]


def test_repository_example_config_is_valid() -> None:
    """config.example.yaml and checks/*.yaml of the repository load."""
    root = Path(__file__).resolve().parents[2]
    config = load_config(root / "config.example.yaml", registries=REGISTRIES)
    assert config.checks


def test_unquoted_versions_are_accepted(tmp_path: Path) -> None:
    """tls.min_version: 1.2 and ip_version: 6 work unquoted (YAML reads them as numbers)."""
    write(
        tmp_path,
        {
            "wsprobe.yaml": "checks:\n  - name: a\n    url: wss://h/\n    ip_version: 6\n"
            "    tls: {min_version: 1.2}\n"
        },
    )
    (check,) = load_config(tmp_path / "wsprobe.yaml", registries=REGISTRIES).checks
    assert (check.ip_version, check.tls.min_version) == ("6", "1.2")


def test_globs_recurse_and_a_file_matched_twice_loads_once(tmp_path: Path) -> None:
    """`**` matches subdirectories; a file matched by two patterns is loaded once."""
    write(
        tmp_path,
        {
            "wsprobe.yaml": "check_files: ['conf.d/**/*.yaml', conf.d/team/a.yaml]\n",
            "conf.d/team/a.yaml": "checks:\n  - {name: a, url: 'ws://h/'}\n",
            "conf.d/b.yaml": "checks:\n  - {name: b, url: 'ws://h/'}\n",
        },
    )
    loaded = load_config_with_warnings(tmp_path / "wsprobe.yaml", registries=REGISTRIES)
    assert [c.name for c in loaded.config.checks] == ["b", "a"]
    assert loaded.files == ["wsprobe.yaml", "conf.d/b.yaml", "conf.d/team/a.yaml"]


class _NeedsChannel:
    """A receiver type whose own rule wants a URL on a ``chat.example`` host."""

    def validate(self, receiver: ReceiverConfig) -> list[str]:
        return [] if "chat.example" in str(receiver.url) else ["url: not a chat.example URL"]


def test_kinds_and_receiver_types_are_exactly_the_registries_given(tmp_path: Path) -> None:
    """Validation knows only the kinds and receiver types passed in, and runs each type's rule."""
    write(
        tmp_path,
        {
            "wsprobe.yaml": """            receivers:
              - {name: chat, type: pigeon, url: 'https://other.example/'}
              - {name: ops, type: log}
            checks:
              - {name: a, url: 'ws://h/', kind: relay}
              - {name: b, url: 'ws://h/', kind: ping}
            """,
        },
    )
    only = Registries(kinds={"ping"}, receivers={"pigeon": _NeedsChannel()})
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "wsprobe.yaml", registries=only)
    assert [str(i) for i in info.value.issues] == [
        "wsprobe.yaml:2: receivers[0]: url: not a chat.example URL",
        "wsprobe.yaml:3: receivers[1].type: unknown receiver type 'log' (known: pigeon)",
        "wsprobe.yaml:5: checks[0].kind: unknown kind 'relay' (known: ping)",
    ]
    with pytest.raises(ConfigError, match="unknown kind 'relay' \\(known: ping\\)"):
        validate_check({"name": "a", "url": "ws://h/", "kind": "relay"}, registries=only)
