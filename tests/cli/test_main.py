"""The wsprobe command line, against real WebSocket servers on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import ssl
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
import trustme
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.http11 import Request, Response

from agent.cli.main import main

ROOT = Path(__file__).resolve().parents[2]
GOOD_TOKEN = "good-token-value"


async def _echo(ws: ServerConnection) -> None:
    async for message in ws:
        await ws.send(message)


def _gate(ws: ServerConnection, request: Request) -> Response | None:
    """/auth demands the good bearer token; /forbidden always answers 403."""
    if request.path.startswith("/forbidden"):
        return ws.respond(403, "forbidden\n")
    authorized = request.headers.get_all("Authorization") == [f"Bearer {GOOD_TOKEN}"]
    if request.path.startswith("/auth") and not authorized:
        return ws.respond(401, "who are you?\n")
    return None


def _choose(ws: ServerConnection, offered: Sequence[str]) -> str | None:
    """Pick chat.v1 when offered; accept clients that offer nothing."""
    return "chat.v1" if "chat.v1" in offered else None


class ThreadServer:
    """A websockets server on its own loop in a thread, so main() may run asyncio.run()."""

    def __init__(self, ssl_context: ssl.SSLContext | None = None) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.ssl_context = ssl_context
        self.server: Server | None = None
        self.port = 0

    async def _start(self) -> None:
        self.server = await serve(
            _echo,
            "127.0.0.1",
            0,
            process_request=_gate,
            select_subprotocol=_choose,
            ssl=self.ssl_context,
        )
        self.port = self.server.sockets[0].getsockname()[1] if self.server.sockets else 0

    async def _stop(self) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()

    def __enter__(self) -> ThreadServer:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(5)
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self.loop).result(5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


@pytest.fixture(scope="module")
def server() -> Iterator[ThreadServer]:
    with ThreadServer() as srv:
        yield srv


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def tls_server(ca: trustme.CA) -> Iterator[ThreadServer]:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert("localhost", "127.0.0.1").configure_cert(context)
    with ThreadServer(context) as srv:
        yield srv


@pytest.fixture(autouse=True)
def _restore_logging(restore_logging: None) -> None:
    """main() installs a handler on the captured stderr (see tests/conftest.py)."""


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """main(argv) -> (exit code, stdout, stderr)."""
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, Any]]:
    code, out, _ = run(capsys, *argv, "--json")
    return code, json.loads(out)


# --- wsprobe probe URL -------------------------------------------------------------


def test_probe_prints_phase_table_and_exits_0(
    server: ThreadServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """A successful probe prints phases in ms, status, subprotocol, pings and OK."""
    url = f"ws://127.0.0.1:{server.port}/echo"
    code, out, err = run(capsys, "probe", url, "--pings", "2", "--subprotocol", "chat.v1")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == f"probe cli: {url}"
    for phase in ("resolve", "connect", "handshake", "ping", "total"):
        assert any(line.split()[:1] == [phase] for line in lines), phase
    assert "  status        101 Switching Protocols" in lines
    assert "  subprotocol   chat.v1" in lines
    assert any(line.startswith("  pings         2 pings: min ") for line in lines)
    assert lines[-1] == "  result        OK"


def test_probe_json_has_the_documented_shape(
    server: ThreadServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """--json prints one object with success, reason, phases (seconds), pings, status, tls."""
    url = f"ws://127.0.0.1:{server.port}/echo"
    code, data = run_json(capsys, "probe", url, "--pings", "3")
    assert code == 0, (data["reason"], data["message"])
    assert {"success", "reason", "message", "url", "phases", "pings", "status_code"} <= set(data)
    assert {"subprotocol", "close_code", "tls"} <= set(data)
    assert (data["success"], data["reason"], data["status_code"]) == (True, None, 101)
    assert data["url"] == url
    assert len(data["pings"]) == 3
    assert all(0 <= rtt < 1 for rtt in data["pings"])
    assert {"resolve", "connect", "handshake", "total"} <= set(data["phases"])
    assert data["tls"] is None


PROBE_OUTCOMES = [
    ("rejected-401", "/auth", [], 1, "handshake_status", 401),
    ("negative-check-401", "/auth", ["--expect-status", "401"], 0, None, 401),
    ("token-accepted", "/auth", ["--bearer", GOOD_TOKEN], 0, None, 101),
    ("token-via-header", "/auth", ["-H", f"Authorization: Bearer {GOOD_TOKEN}"], 0, None, 101),
    ("forbidden-403", "/forbidden", [], 1, "handshake_status", 403),
    (
        "subprotocol-chosen",
        "/echo",
        ["--subprotocol", "chat.v1", "--expect-subprotocol", "chat.v1"],
        0,
        None,
        101,
    ),
    (
        "subprotocol-mismatch",
        "/echo",
        ["--expect-subprotocol", "chat.v2"],
        1,
        "subprotocol_mismatch",
        101,
    ),
]


@pytest.mark.parametrize(
    ("path", "flags", "exit_code", "reason", "status"),
    [case[1:] for case in PROBE_OUTCOMES],
    ids=[case[0] for case in PROBE_OUTCOMES],
)
def test_probe_exit_code_and_reason(
    server: ThreadServer,
    capsys: pytest.CaptureFixture[str],
    path: str,
    flags: list[str],
    exit_code: int,
    reason: str | None,
    status: int,
) -> None:
    """Exit 0 when expectations hold, 1 with the right reason when they do not."""
    code, data = run_json(capsys, "probe", f"ws://127.0.0.1:{server.port}{path}", *flags)
    assert (code, data["reason"], data["status_code"]) == (exit_code, reason, status)
    assert data["success"] is (exit_code == 0)


def test_probe_failure_table_names_reason_and_message(
    server: ThreadServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """A failed probe's table ends with FAILED, the reason and the specific message."""
    code, out, _ = run(capsys, "probe", f"ws://127.0.0.1:{server.port}/auth")
    assert code == 1
    assert out.splitlines()[-1].startswith("  result        FAILED (handshake_status) ")
    assert "401" in out.splitlines()[-1]


def test_probe_tls_reports_version_and_days_to_expiry(
    tls_server: ThreadServer, ca: trustme.CA, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """wss with --cacert succeeds and shows the TLS version and certificate expiry."""
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    url = f"wss://localhost:{tls_server.port}/echo"
    code, out, err = run(capsys, "probe", url, "--cacert", str(ca_file), "--pings", "1")
    assert code == 0, out + err
    tls_line = next(line for line in out.splitlines() if line.startswith("  tls info "))
    assert "TLSv1.3" in tls_line
    assert "certificate expires in " in tls_line
    code, data = run_json(capsys, "probe", url, "--cacert", str(ca_file))
    assert data["tls"]["version"] == "TLSv1.3"
    assert data["tls"]["cert_not_after"] > data["started_at"]


@pytest.mark.parametrize(
    ("flags", "exit_code", "reason"),
    [([], 1, "tls_cert_untrusted"), (["--insecure"], 0, None)],
    ids=["untrusted-without-cacert", "insecure-skips-verification"],
)
def test_probe_tls_trust(
    tls_server: ThreadServer,
    capsys: pytest.CaptureFixture[str],
    flags: list[str],
    exit_code: int,
    reason: str | None,
) -> None:
    """Without the CA the certificate is untrusted; --insecure is the explicit opt-out."""
    url = f"wss://localhost:{tls_server.port}/echo"
    code, data = run_json(capsys, "probe", url, *flags)
    assert (code, data["reason"]) == (exit_code, reason)


# --- usage errors --------------------------------------------------------------------

USAGE = [
    ("no-url", [], "give a URL or --check NAME"),
    ("http-url", ["http://127.0.0.1/"], "URL: URL scheme must be ws or wss, not 'http'"),
    ("bad-timeout", ["ws://h/", "--timeout", "soon"], "--timeout: invalid duration 'soon'"),
    ("zero-timeout", ["ws://h/", "--timeout", "0"], "--timeout: Input should be greater than 0"),
    ("negative-pings", ["ws://h/", "--pings=-1"], "--pings: Input should be greater than"),
    ("basic-no-colon", ["ws://h/", "--basic", "userpass"], "--basic must look like USER:PASS"),
    ("bad-header", ["ws://h/", "-H", "NoColon"], "-H/--header must look like 'Name: value'"),
    ("missing-cacert", ["wss://h/", "--cacert", "nope.pem"], "--cacert: file "),
    (
        "userinfo-and-bearer",
        ["ws://u:p@h/", "--bearer", "t"],
        "--bearer/--basic: the URL's user:password@ and auth.bearer/basic both set",
    ),
    ("status-range", ["ws://h/", "--expect-status", "99"], "--expect-status: Input should be"),
    ("check-and-url", ["ws://h/", "--check", "x"], "--check runs the check as configured"),
    ("unknown-flag", ["ws://h/", "--frobnicate"], "unrecognized arguments: --frobnicate"),
]


@pytest.mark.parametrize(("argv", "message"), [c[1:] for c in USAGE], ids=[c[0] for c in USAGE])
def test_probe_usage_errors_exit_2_naming_the_flag(
    capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    """Bad flag values exit 2 before any connection, with a message naming the flag."""
    code, out, err = run(capsys, "probe", *argv)
    assert code == 2
    assert out == ""
    assert message in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["run", "--shard", "3/2"], "--shard: shard must satisfy 1 <= K <= N"),
        (["run", "--shard", "half"], "--shard: shard must look like K/N"),
        (["demo-server", "--port", "70000"], "--port must be between 0 and 65535"),
    ],
    ids=["shard-out-of-range", "shard-malformed", "demo-port"],
)
def test_other_commands_reject_bad_flags_with_exit_2(
    capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    """run and demo-server check their flags before starting anything."""
    code, _, err = run(capsys, *argv)
    assert code == 2
    assert message in err


# --- secrets ---------------------------------------------------------------------------

SECRET_ARGS = {
    "bearer": ["--bearer", "sekrit-bearer-1"],
    "basic": ["--basic", "user:sekrit-pass-2"],
    "header": ["-H", "X-Api-Key: sekrit-header-3"],
}
SECRET_URLS = {
    "userinfo": "ws://user:sekrit-userinfo-4@127.0.0.1:{port}/auth?token=sekrit-query-5",
    "query": "ws://127.0.0.1:{port}/auth?token=sekrit-query-5&x=1",
}
LEAK_CASES = [
    ("userinfo-header-rejected", "userinfo", ["header"], "server", 1),
    ("bearer-query-header-rejected", "query", ["bearer", "header"], "server", 1),
    ("basic-query-rejected", "query", ["basic"], "server", 1),
    ("bearer-connection-refused", "query", ["bearer", "header"], "refused", 1),
    ("userinfo-and-bearer-usage-error", "userinfo", ["bearer"], "server", 2),
]


@pytest.mark.parametrize("as_json", [False, True], ids=["table", "json"])
@pytest.mark.parametrize(
    ("url_kind", "flags", "target", "exit_code"),
    [case[1:] for case in LEAK_CASES],
    ids=[case[0] for case in LEAK_CASES],
)
def test_secrets_from_the_command_line_never_printed(
    server: ThreadServer,
    capsys: pytest.CaptureFixture[str],
    url_kind: str,
    flags: list[str],
    target: str,
    exit_code: int,
    as_json: bool,
) -> None:
    """Secrets in --bearer, --basic, -H, URL userinfo and query never reach stdout/stderr,
    even at --log-level debug."""
    url = SECRET_URLS[url_kind].format(port=server.port if target == "server" else 1)
    argv = ["probe", url, *(a for f in flags for a in SECRET_ARGS[f]), "--log-level", "debug"]
    code, out, err = run(capsys, *argv, *(["--json"] if as_json else []))
    assert code == exit_code
    assert "sekrit" not in out + err
    if exit_code == 1:
        assert "token=REDACTED" in out


# --- wsprobe check-config --------------------------------------------------------------


def _config(tmp_path: Path, check_yaml: str) -> Path:
    (tmp_path / "checks").mkdir()
    (tmp_path / "wsprobe.yaml").write_text(
        "check_files: [checks/*.yaml]\nreceivers:\n  - {name: ops, type: log}\n"
    )
    (tmp_path / "checks" / "a.yaml").write_text(textwrap.dedent(check_yaml))
    return tmp_path / "wsprobe.yaml"


def test_check_config_valid_prints_one_summary_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A valid config exits 0 with 'N checks in M files, R receivers'."""
    monkeypatch.chdir(tmp_path)
    _config(tmp_path, "checks:\n  - {name: a, url: 'ws://h/'}\n  - {name: b, url: 'ws://h/'}\n")
    code, out, _ = run(capsys, "check-config", "-c", "wsprobe.yaml")
    assert (code, out) == (0, "wsprobe.yaml: OK: 2 checks in 2 files, 1 receiver\n")


def test_check_config_invalid_prints_every_error_then_count(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """An invalid config exits 1, one FILE:LINE: path: message per error, then 'N errors'."""
    monkeypatch.chdir(tmp_path)
    _config(
        tmp_path,
        """\
        checks:
          - name: a
            url: ws://h/
            timeout: 1m
          - name: a
            url: wss://h/
            kind: nope
        """,
    )
    code, out, _ = run(capsys, "check-config", "-c", "wsprobe.yaml")
    assert code == 1
    lines = out.splitlines()
    assert (
        lines[0] == "checks/a.yaml:4: checks[0].timeout: timeout (60s) must be less than"
        " interval (30s)"
    )
    assert (
        lines[1] == "checks/a.yaml:5: checks[1].name: duplicate check name 'a' (also"
        " defined at checks/a.yaml:2)"
    )
    assert lines[2].startswith("checks/a.yaml:7: checks[1].kind: unknown kind 'nope'")
    assert lines[3:] == ["3 errors"]


def test_check_config_prints_warnings_and_still_passes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Warnings are printed with their place; the exit code stays 0."""
    monkeypatch.chdir(tmp_path)
    _config(
        tmp_path, "checks:\n  - name: a\n    url: wss://h/\n    tls: {insecure_skip_verify: true}\n"
    )
    code, out, _ = run(capsys, "check-config", "-c", "wsprobe.yaml")
    assert code == 0
    first, summary = out.splitlines()
    assert first.startswith("checks/a.yaml:4: checks[0].tls.insecure_skip_verify: warning: ")
    assert summary == "wsprobe.yaml: OK: 1 check in 2 files, 1 receiver, 1 warning"


def test_check_config_missing_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A config file that does not exist is one error, exit 1."""
    monkeypatch.chdir(tmp_path)
    code, out, _ = run(capsys, "check-config", "-c", "nope.yaml")
    assert (code, out) == (1, "nope.yaml: file not found\n1 error\n")


def test_check_config_defaults_to_wsprobe_yaml(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without -c, wsprobe.yaml in the working directory is used."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("WSPROBE_CONFIG", raising=False)
    _config(tmp_path, "checks: []\n")
    (tmp_path / "config.example.yaml").write_text("agentt: {}\n")
    code, out, _ = run(capsys, "check-config")
    assert (code, out) == (0, "wsprobe.yaml: OK: 0 checks in 2 files, 1 receiver\n")


# --- wsprobe probe --check ---------------------------------------------------------------


def test_probe_configured_check(
    server: ThreadServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """probe --check NAME -c FILE runs that check as configured (auth from the file)."""
    path = _config(
        tmp_path,
        f"""\
        checks:
          - name: with-auth
            url: ws://127.0.0.1:{server.port}/auth
            auth: {{bearer: {GOOD_TOKEN}}}
            pings: 1
        """,
    )
    code, data = run_json(capsys, "probe", "--check", "with-auth", "-c", str(path))
    assert (code, data["check"], data["success"], len(data["pings"])) == (0, "with-auth", True, 1)


@pytest.mark.parametrize(
    ("check_yaml", "message"),
    [
        ("checks:\n  - {name: a, url: 'ws://h/'}\n", "no check named 'zzz'"),
        ("checks:\n  - {name: a, url: 'ftp://h/'}\n", "checks[0].url: URL scheme must be"),
    ],
    ids=["unknown-name", "invalid-config"],
)
def test_probe_configured_check_errors_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], check_yaml: str, message: str
) -> None:
    """An unknown check name or an invalid config file exits 2 with the reason."""
    path = _config(tmp_path, check_yaml)
    code, _, err = run(capsys, "probe", "--check", "zzz", "-c", str(path))
    assert code == 2
    assert message in err


# --- the console script itself -------------------------------------------------------------


def _wsprobe(*argv: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "agent", *argv],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


@pytest.mark.parametrize(
    "argv",
    [
        ["--help"],
        ["probe", "--help"],
        ["check-config", "--help"],
        ["run", "--help"],
        ["demo-server", "--help"],
        ["connect", "--help"],
    ],
    ids=["top", "probe", "check-config", "run", "demo-server", "connect"],
)
def test_help_everywhere(capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    """Every command has --help, exiting 0 with a usage line."""
    code, out, _ = run(capsys, *argv)
    assert code == 0
    assert out.startswith("usage: wsprobe")


def test_console_script_probe_json_and_log_format(server: ThreadServer) -> None:
    """python -m agent probe --json works end to end; --log-format is accepted either side."""
    url = f"ws://127.0.0.1:{server.port}/echo"
    proc = _wsprobe("--log-format", "json", "probe", url, "--json", "--log-level", "info")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["success"] is True


def test_console_script_check_config_on_the_repository_example() -> None:
    """The repository's example config validates through the real entry point."""
    proc = _wsprobe("check-config", "-c", "config.example.yaml")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.startswith("config.example.yaml: OK: ")
