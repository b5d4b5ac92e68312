"""--help shows an example for each mode; colour only on a terminal, never with NO_COLOR."""

from __future__ import annotations

import io
import os

import pexpect
import pytest

from agent.cli.main import main
from agent.cli.style import Style, use_color
from tests.cli.conftest import DemoThread
from tests.cli.test_connect import finish, spawn

pytestmark = pytest.mark.usefixtures("restore_logging")


@pytest.mark.parametrize(
    ("command", "examples"),
    [
        (
            "probe",
            [
                "--pings 5",
                "--expect-status 401",
                "--check demo-echo",
                "--count 10 --interval 0.5",
                "--count 0",
                " -v ",
                "-vv",
                " -q ",
                "--send-binary",
            ],
        ),
        (
            "connect",
            ["/json {", "/binary", "/ping", "/close 1000", "--bearer", "| wsprobe connect"],
        ),
    ],
    ids=["probe", "connect"],
)
def test_help_has_an_example_per_mode(
    command: str, examples: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    """The epilog of --help shows every mode of the command."""
    assert main([command, "--help"]) == 0
    text = capsys.readouterr().out
    epilog = text[text.index("examples:") :]
    for example in examples:
        assert example in epilog, example


def test_connect_listed_in_top_level_help(capsys: pytest.CaptureFixture[str]) -> None:
    """wsprobe --help names the connect command."""
    assert main(["--help"]) == 0
    assert "connect" in capsys.readouterr().out


def test_use_color_only_for_a_real_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    """A pty gets colour; a pipe does not; NO_COLOR (non-empty) and --no-color turn it off."""
    monkeypatch.delenv("NO_COLOR", raising=False)
    leader, follower = os.openpty()
    with open(follower, "w") as tty, open(leader, "rb", buffering=0):
        assert use_color(tty) is True
        assert use_color(tty, no_color=True) is False
        monkeypatch.setenv("NO_COLOR", "1")
        assert use_color(tty) is False
        monkeypatch.setenv("NO_COLOR", "")  # empty means unset (no-color.org)
        assert use_color(tty) is True
    assert use_color(io.StringIO()) is False


def test_style_paints_only_when_on() -> None:
    """Colour codes wrap the text when on; the text is untouched when off."""
    assert Style(color=True).paint("fail", "down") == "\x1b[31;1mdown\x1b[0m"
    assert Style(color=False).paint("fail", "down") == "down"


def test_probe_on_a_terminal_is_coloured(demo_thread: DemoThread) -> None:
    """probe --count on a pty colours each verdict; --no-color leaves the text plain."""
    child = spawn("probe", demo_thread.url("/echo"), "--count", "1", "--pings", "1")
    child.expect(pexpect.EOF)
    assert "\x1b[32mOK" in child.before
    assert finish(child) == 0
    child = spawn("probe", demo_thread.url("/echo"), "--no-color", "--pings", "1")
    child.expect(pexpect.EOF)
    assert "result        OK" in child.before
    assert "\x1b[" not in child.before
    assert finish(child) == 0
