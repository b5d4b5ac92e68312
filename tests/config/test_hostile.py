"""Hostile config files: bytes YAML refuses, devices, huge files and whole-disk patterns.

Each ends in ``FILE:LINE: message`` from the loader (never a traceback, never a hang).
"""

from __future__ import annotations

import glob
import logging
import os
import textwrap
from pathlib import Path

import pytest

from agent.cli.main import main
from agent.config._files import PatternTooBroad, expand_pattern
from agent.config._yaml import parse_yaml
from agent.config.loader import ConfigError, load_config
from agent.config.types import MAX_SECRET_FILE_BYTES
from agent.runtime.registries import REGISTRIES


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)


def errors_of(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_config(path, registries=REGISTRIES)
    return [str(issue) for issue in info.value.issues]


def write(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


AGENT = "agent:\n  location: test\ncheck_files: [checks/*.yaml]\n"


@pytest.mark.parametrize(
    ("raw", "line", "column", "code"),
    [
        (b"checks:\n  - name: a\n    url: 'ws://h/\x00'\n", 3, 18, 0),
        (b"checks:\n  - name: a\x07\n    url: ws://h/\n", 2, 12, 7),
        (b"checks:\n  - name: a\n    labels: {team: \x1b}\n", 3, 20, 0x1B),
    ],
    ids=["nul", "bell", "escape"],
)
def test_control_character_in_check_file_is_an_error_with_line(
    tmp_path: Path, raw: bytes, line: int, column: int, code: int
) -> None:
    """A NUL or other control byte names the file, line and column (PyYAML ReaderError)."""
    write(tmp_path / "wsprobe.yaml", AGENT)
    write(tmp_path / "checks/a.yaml", raw)
    assert errors_of(tmp_path / "wsprobe.yaml") == [
        f"checks/a.yaml:{line}: YAML: character U+{code:04X} at column {column}"
        " is not allowed in YAML text"
    ]


def test_nul_in_agent_config_check_config_and_run_print_line_no_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    """check-config prints FILE:LINE and exits 1; run logs it and exits 1: no traceback."""
    path = write(tmp_path / "wsprobe.yaml", b'agent:\n  location: "a\x00b"\n')
    expected = "wsprobe.yaml:2: YAML: character U+0000 at column 15 is not allowed in YAML text"
    assert main(["check-config", "-c", str(path)]) == 1
    out, err = capsys.readouterr()
    assert out.splitlines() == [expected, "1 error"]
    assert "Traceback" not in out + err
    caplog.set_level(logging.ERROR)
    assert main(["run", "-c", str(path), "--log-level", "error"]) == 1
    messages = [r.getMessage() for r in caplog.records]
    assert f"config error: {expected}" in messages
    assert all(r.exc_info is None for r in caplog.records)


def test_lone_surrogate_escapes_are_errors_at_their_lines(tmp_path: Path) -> None:
    """A \\uDC80 escape (half a surrogate pair) in a value or a key cannot be used."""
    write(tmp_path / "wsprobe.yaml", AGENT)
    write(
        tmp_path / "checks/a.yaml",
        r"""
        checks:
          - name: a
            url: "ws://h/\udc80"
            labels: {team: "x\ud800"}
        """.lstrip("\n"),
    )
    problem = "is half of a UTF-16 surrogate pair, not a character: write the character itself"
    assert errors_of(tmp_path / "wsprobe.yaml") == [
        f"checks/a.yaml:3: \\udc80 {problem}",
        "checks/a.yaml:3: checks[0].url: URL holds a lone surrogate (\\udXXX), not a character",
        f"checks/a.yaml:4: \\ud800 {problem}",
    ]


def test_env_value_that_is_not_utf8_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Undecodable bytes in an environment variable (a surrogate in os.environ) are refused."""
    monkeypatch.setenv("WSPROBE_TEST_BYTES", os.fsdecode(b"ws://h/\xff"))
    write(tmp_path / "wsprobe.yaml", AGENT)
    write(tmp_path / "checks/a.yaml", "checks:\n  - name: a\n    url: ${WSPROBE_TEST_BYTES}\n")
    errors = errors_of(tmp_path / "wsprobe.yaml")
    assert (
        "checks/a.yaml:3: checks[0].url: environment variable WSPROBE_TEST_BYTES is not UTF-8"
        in (errors)
    )


def _secret_check(tmp_path: Path, secret_path: str) -> Path:
    write(tmp_path / "wsprobe.yaml", AGENT)
    write(
        tmp_path / "checks/a.yaml",
        "checks:\n  - name: a\n    url: ws://h/\n    auth:\n"
        f"      bearer: {{file: {secret_path}}}\n",
    )
    return tmp_path / "wsprobe.yaml"


def test_secret_file_on_a_device_is_refused_without_reading(tmp_path: Path) -> None:
    """/dev/zero as a secret file is not a regular file: an error, at once."""
    errors = errors_of(_secret_check(tmp_path, "/dev/zero"))
    assert errors == [
        "checks/a.yaml:5: checks[0].auth.bearer: secret file '/dev/zero' is not a regular file"
    ]


def test_secret_file_on_a_fifo_does_not_hang(tmp_path: Path) -> None:
    """A FIFO with no writer would block open(); it is refused instead."""
    os.mkfifo(tmp_path / "pipe")
    errors = errors_of(_secret_check(tmp_path, "pipe"))
    assert errors == [
        f"checks/a.yaml:5: checks[0].auth.bearer: secret file '{tmp_path}/pipe'"
        " is not a regular file"
    ]


def test_secret_file_size_is_capped(tmp_path: Path) -> None:
    """A secret file over the cap is an error naming the cap; one at the cap is read."""
    (tmp_path / "big").write_bytes(b"x" * (MAX_SECRET_FILE_BYTES + 1))
    errors = errors_of(_secret_check(tmp_path, "big"))
    assert errors == [
        f"checks/a.yaml:5: checks[0].auth.bearer: secret file '{tmp_path}/big'"
        " is larger than 64 KiB: not a secret"
    ]
    (tmp_path / "big").write_bytes(b"x" * MAX_SECRET_FILE_BYTES)
    config = load_config(tmp_path / "wsprobe.yaml", registries=REGISTRIES)
    bearer = config.checks[0].auth.bearer
    assert bearer is not None
    assert len(bearer.get_secret_value()) == MAX_SECRET_FILE_BYTES


def test_config_file_on_a_device_is_bounded() -> None:
    """-c /dev/zero stops at the size cap instead of reading forever."""
    assert errors_of(Path("/dev/zero")) == ["/dev/zero: larger than 32 MiB: not a config file"]


def test_whole_filesystem_pattern_stops_with_an_error(tmp_path: Path) -> None:
    """check_files: ['/**/*.yaml'] ends at the walk's bound with an error at its line."""
    write(tmp_path / "wsprobe.yaml", "agent: {location: x}\ncheck_files:\n  - '/**/*.yaml'\n")
    errors = errors_of(tmp_path / "wsprobe.yaml")
    assert len(errors) == 1
    assert errors[0].startswith("wsprobe.yaml:3: check_files[0]: '/**/*.yaml': matching stopped")


def _tree(root: Path) -> None:
    for name in [
        "a.yaml",
        "b.yml",
        ".hidden.yaml",
        "conf.d/c.yaml",
        "conf.d/sub/d.yaml",
        "conf.d/.git/e.yaml",
        "other/f.yaml",
        "other/sub/deeper/g.yaml",
    ]:
        write(root / name, "checks: []\n")
    (root / "dir.yaml").mkdir()
    os.symlink(root, root / "conf.d/loop")


@pytest.mark.parametrize(
    "pattern",
    [
        "*.yaml",
        "*.y*ml",
        ".*.yaml",
        "conf.d/*.yaml",
        "*/*.yaml",
        "**/*.yaml",
        "conf.d/**/*.yaml",
        "**/sub/*.yaml",
        "other/**",
        "conf.d/sub/d.yaml",
        "[co]*/*.yaml",
        "nothing/*.yaml",
    ],
)
def test_bounded_walk_matches_what_glob_matches(tmp_path: Path, pattern: str) -> None:
    """The bounded expansion gives glob.glob(recursive=True)'s files (symlink loops aside)."""
    _tree(tmp_path)
    os.unlink(tmp_path / "conf.d/loop")  # glob would follow it until paths are too long
    expected = sorted(
        Path(p) for p in glob.glob(str(tmp_path / pattern), recursive=True) if os.path.isfile(p)
    )
    assert expand_pattern(tmp_path, pattern) == expected


def test_bounded_walk_survives_a_symlink_loop(tmp_path: Path) -> None:
    """A symlink back up the tree is followed once, never round and round."""
    _tree(tmp_path)
    found = [p.relative_to(tmp_path) for p in expand_pattern(tmp_path, "conf.d/**/*.yaml")]
    assert [str(p) for p in found] == [
        "conf.d/c.yaml",
        "conf.d/loop/a.yaml",
        "conf.d/loop/other/f.yaml",
        "conf.d/loop/other/sub/deeper/g.yaml",
        "conf.d/sub/d.yaml",
    ]


def test_bounded_walk_stops_at_directory_and_entry_bounds(tmp_path: Path) -> None:
    """Past max_directories or max_entries the walk raises PatternTooBroad naming it."""
    for i in range(12):
        (tmp_path / f"d{i}").mkdir()
    with pytest.raises(PatternTooBroad, match="after 10 directories"):
        expand_pattern(tmp_path, "**/*.yaml", max_directories=10)
    assert expand_pattern(tmp_path, "**/*.yaml", max_directories=13) == []
    with pytest.raises(PatternTooBroad, match="after 5 directory entries"):
        expand_pattern(tmp_path, "*/x.yaml", max_entries=5)


def test_bounded_walk_stops_at_its_deadline(tmp_path: Path) -> None:
    """A walk still going when the clock passes max_seconds stops (clock injected)."""
    for i in range(3):
        (tmp_path / f"d{i}").mkdir()
    ticks = iter(range(100))
    with pytest.raises(PatternTooBroad, match="after 2 s"):
        expand_pattern(tmp_path, "**/*.yaml", max_seconds=2, clock=lambda: float(next(ticks)))


@pytest.mark.parametrize(
    "text",
    [
        'a: "x\\udc80"\nb: plain\n',
        'a: &v "x\\udc80"\nb: *v\n',
        'a: !!str "x\\udc80"\n<<: {c: 1}\n',
    ],
    ids=["plain", "alias", "merge-key"],
)
def test_lone_surrogate_found_on_both_parse_paths(text: str) -> None:
    """Plain documents and ones with aliases or merge keys report it once, at its line."""
    problems = parse_yaml(text).problems
    assert [line for line, _ in problems] == [1]
    assert problems[0][1].startswith("\\udc80 is half of a UTF-16 surrogate pair")
