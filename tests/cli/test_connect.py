"""`wsprobe connect`: an interactive session through a real pseudo-terminal, and piped input.

Every test runs a real ``wsprobe`` process against the demo targets on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import json
import re
import ssl

import pexpect
import pytest
import trustme

from agent.demo.handlers import AUTH_CLOSE_CODE, DEMO_TOKEN
from tests.cli.conftest import ROOT, DemoThread, run_wsprobe, wsprobe_argv, wsprobe_env
from tests.cli.test_main import ThreadServer
from tests.servers import RawServer, connect_proxy, free_port

STAMP = r"\d\d:\d\d:\d\d\.\d{3}"
PTY_TIMEOUT = 20


def spawn(*argv: str, **env: str) -> pexpect.spawn:
    """``wsprobe ARGV`` on a real pseudo-terminal."""
    cmd = wsprobe_argv(*argv)
    return pexpect.spawn(
        cmd[0],
        cmd[1:],
        cwd=str(ROOT),
        env=wsprobe_env(**env),
        encoding="utf-8",
        timeout=PTY_TIMEOUT,
        dimensions=(50, 200),
    )


def finish(child: pexpect.spawn) -> int:
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus is not None, child.signalstatus
    return int(child.exitstatus)


# --- piped input ---------------------------------------------------------------------


def test_piped_lines_commands_and_clean_close(demo_thread: DemoThread) -> None:
    """Each piped line is sent; replies printed (JSON pretty, binary hex, pong RTT); exit 0."""
    big = bytes(range(256)) + b"\x01"
    lines = ["hello", '/json {"type": "x", "n": [1, 2]}', "/binary 00ff", "/ping", "//slash"]
    stdin = "\n".join([*lines, f"/binary {big.hex()}", ""])
    argv = ["--wait", "2", "--subprotocol", "echo.v1"]
    proc = run_wsprobe("connect", demo_thread.url("/echo"), *argv, stdin=stdin)
    out = proc.stdout
    assert proc.returncode == 0, proc.stderr
    assert re.search(rf"^{STAMP} connected to {re.escape(demo_thread.url('/echo'))} in ", out)
    assert "; subprotocol echo.v1" in out.splitlines()[0]
    assert re.search(rf"^{STAMP} > hello$", out, re.M)  # piped lines are echoed
    assert re.search(rf"^{STAMP} < hello$", out, re.M)
    pretty = json.dumps({"type": "x", "n": [1, 2]}, indent=2)
    assert f"< {pretty}\n" in out
    assert "< [binary 2 bytes] 00 ff" in out
    assert re.search(rf"^{STAMP} < pong in \d+\.\d{{3}} ms$", out, re.M)
    assert re.search(rf"^{STAMP} < /slash$", out, re.M)  # // escapes a leading /
    assert f"< [binary 257 bytes] {big[:256].hex(' ')}...\n" in out  # long binary cut
    assert out.rstrip().endswith("closed: 1000")
    assert "\x1b[" not in out  # a pipe gets no colour


def test_server_close_code_and_reason_shown_exit_1(demo_thread: DemoThread) -> None:
    """The feed closes on a message that is not its auth: code and reason printed, exit 1."""
    proc = run_wsprobe("connect", demo_thread.url("/feed"), "--wait", "10", stdin="hello\n")
    assert proc.returncode == 1
    assert re.search(
        rf"^{STAMP} server closed: {AUTH_CLOSE_CODE} auth required$", proc.stdout, re.M
    )


def test_first_message_auth_then_server_messages(demo_thread: DemoThread) -> None:
    """A scripted conversation: auth, subscribe, then the feed's ticks arrive and print."""
    auth = json.dumps({"type": "auth", "token": DEMO_TOKEN})
    stdin = f'/json {auth}\n/json {{"type": "subscribe", "channel": "ticker"}}\n'
    proc = run_wsprobe("connect", demo_thread.url("/feed"), "--wait", "2", stdin=stdin)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert '"type": "auth_ok"' in proc.stdout
    assert '"type": "subscribed"' in proc.stdout


def test_bearer_flag_reused_and_never_printed(demo_thread: DemoThread) -> None:
    """probe's --bearer works for connect too; without it the upgrade is refused (exit 1)."""
    url = demo_thread.url("/auth")
    ok = run_wsprobe("connect", url, "--bearer", DEMO_TOKEN, "--wait", "0", stdin="x\n")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert DEMO_TOKEN not in ok.stdout + ok.stderr
    refused = run_wsprobe("connect", url, stdin="")
    assert refused.returncode == 1
    assert "connection failed (handshake_status): expected HTTP 101, server answered HTTP 401" in (
        refused.stdout
    )


def test_v_traces_the_upgrade_of_a_refused_session(demo_thread: DemoThread) -> None:
    """connect -v shows the refused upgrade's response on stderr, credentials redacted."""
    proc = run_wsprobe("connect", demo_thread.url("/auth"), "-v", "--bearer", "wrong", stdin="")
    assert proc.returncode == 1
    assert "> Authorization: REDACTED" in proc.stderr
    assert "< HTTP/1.1 401 Unauthorized" in proc.stderr
    assert "wrong" not in proc.stdout + proc.stderr


def test_connection_refused_exits_1() -> None:
    """Nothing listening: the reason, exit 1, no traceback."""
    proc = run_wsprobe("connect", f"ws://127.0.0.1:{free_port()}/", stdin="")
    assert proc.returncode == 1
    assert "connection failed (connect_refused)" in proc.stdout
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--wait", "soon"], "--wait must be a duration"),
        (["--wait=-1"], "--wait must be a duration of 0 or more"),
        (["--basic", "nocolon"], "--basic must look like USER:PASS"),
        (["--pings", "3"], "unrecognized arguments: --pings"),
    ],
    ids=["bad-wait", "negative-wait", "bad-basic", "probe-only-flag"],
)
def test_connect_usage_errors_exit_2(argv: list[str], message: str) -> None:
    """Bad flags: exit 2 with a message naming the flag."""
    proc = run_wsprobe("connect", "ws://127.0.0.1:1/", *argv, stdin="")
    assert proc.returncode == 2
    assert message in proc.stderr


def test_tls_and_proxy_flags_of_probe_work(demo_thread: DemoThread) -> None:
    """--cacert for a wss server, and --proxy through a real CONNECT proxy, as in probe."""
    ca = trustme.CA()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert("localhost").configure_cert(context)
    with ca.cert_pem.tempfile() as ca_file, ThreadServer(context) as srv:
        url = f"wss://localhost:{srv.port}/echo"
        proc = run_wsprobe("connect", url, "--cacert", ca_file, "--wait", "1", stdin="over tls\n")
        untrusted = run_wsprobe("connect", url, stdin="")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert re.search(rf"^{STAMP} < over tls$", proc.stdout, re.M)
    assert "TLSv1.3" in proc.stdout
    assert untrusted.returncode == 1
    assert "connection failed (tls_cert_untrusted)" in untrusted.stdout

    targets: list[str] = []

    async def start() -> RawServer:
        return await RawServer(connect_proxy(targets)).__aenter__()

    proxy = asyncio.run_coroutine_threadsafe(start(), demo_thread.loop).result(5)
    try:
        proc = run_wsprobe(
            "connect",
            demo_thread.url("/echo"),
            "--proxy",
            f"http://127.0.0.1:{proxy.port}",
            "--wait",
            "1",
            stdin="via proxy\n",
        )
    finally:
        asyncio.run_coroutine_threadsafe(
            proxy.__aexit__(None, None, None), demo_thread.loop
        ).result(5)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert re.search(rf"^{STAMP} < via proxy$", proc.stdout, re.M)
    assert targets == [f"127.0.0.1:{demo_thread.demo.port}"]


# --- a real terminal -------------------------------------------------------------------


def test_interactive_session_on_a_terminal(demo_thread: DemoThread) -> None:
    """Typed lines and commands on a pty; /close sends our code and reason; exit 0."""
    child = spawn("connect", demo_thread.url("/echo"), "--no-color")
    child.expect(r"connected to ")
    child.sendline("hello there")
    child.expect(rf"{STAMP} < hello there")
    child.sendline('/json {"a": 1}')
    child.expect(r'< \{\r\n  "a": 1\r\n\}')
    child.sendline("/ping")
    child.expect(r"< pong in \d+\.\d{3} ms")
    child.sendline("/binary 6869")
    child.expect(r"< \[binary 2 bytes\] 68 69")
    child.sendline("/bogus")
    child.expect(r"unknown command /bogus; commands: ")
    child.sendline("/close 4000 done here")
    child.expect(r"> close 4000 done here")
    child.expect(r"closed: 4000 done here")
    assert finish(child) == 0


def test_terminal_gets_colour_unless_no_color(demo_thread: DemoThread) -> None:
    """Colour on a TTY; NO_COLOR and --no-color turn it off; Ctrl-D closes with 1000."""
    child = spawn("connect", demo_thread.url("/echo"))
    child.expect(r"connected to ")
    assert "\x1b[" in child.before + child.after
    child.sendeof()
    child.expect(r"closed: 1000")
    assert finish(child) == 0
    for env, flags in (({"NO_COLOR": "1"}, []), ({}, ["--no-color"])):
        child = spawn("connect", demo_thread.url("/echo"), *flags, **env)
        child.expect(r"connected to [^\r\n]*\r\n")
        assert "\x1b[" not in child.before + child.after
        child.sendeof()
        assert finish(child) == 0


def test_ctrl_c_closes_politely(demo_thread: DemoThread) -> None:
    """Ctrl-C on the terminal closes with 1000 (no traceback), exit 0."""
    child = spawn("connect", demo_thread.url("/echo"), "--no-color")
    child.expect(r"connected to ")
    child.sendintr()
    child.expect(r"> close 1000")
    child.expect(r"closed: 1000")
    output = child.before
    assert finish(child) == 0
    assert "Traceback" not in output


def test_server_close_on_a_terminal(demo_thread: DemoThread) -> None:
    """The server closing ends the session at once with its code and reason, exit 1."""
    child = spawn("connect", demo_thread.url("/feed"), "--no-color")
    child.expect(r"connected to ")
    child.sendline("hello")
    child.expect(rf"server closed: {AUTH_CLOSE_CODE} auth required")
    assert finish(child) == 1
