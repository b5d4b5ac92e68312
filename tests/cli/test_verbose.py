"""`wsprobe probe -v/-vv`: headers, TLS and frames on stderr, credentials redacted."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import re
import ssl
from collections.abc import Iterator

import pytest
import trustme
from websockets import ClientProtocol
from websockets.frames import Frame, Opcode
from websockets.uri import parse_uri

from agent.cli.main import main
from agent.cli.style import Style
from agent.cli.verbose import Tracer, describe_frame
from agent.demo.handlers import DEMO_TOKEN
from agent.probes.dial.tcp import ADDRESS_LOG
from agent.probes.dial.upgrade import WIRE_LOG
from tests.cli.conftest import DemoThread
from tests.cli.test_main import ThreadServer

pytestmark = pytest.mark.usefixtures("restore_logging")

STAMPED = re.compile(r"^\s+\d+\.\d{3} ms  (.*)$")


def trace(err: str) -> list[str]:
    """The wire trace lines of stderr, without their timestamps."""
    return [m[1] for m in map(STAMPED.match, err.splitlines()) if m]


def test_v_shows_request_response_and_frames_in_order(
    demo_thread: DemoThread, capsys: pytest.CaptureFixture[str]
) -> None:
    """-v: the upgrade request and response headers, then each frame with its direction."""
    argv = ["-v", "--send", "hello", "--expect", "hello", "--pings", "1"]
    code = main(["probe", demo_thread.url("/echo"), *argv])
    out, err = capsys.readouterr()
    lines = trace(err)
    assert code == 0
    assert "result        OK" in out  # the table stays on stdout
    assert lines.index("> GET /echo HTTP/1.1") < lines.index("< HTTP/1.1 101 Switching Protocols")
    assert "> Upgrade: websocket" in lines
    assert any(line.startswith("< Sec-WebSocket-Accept: ") for line in lines)
    frames = [line for line in lines if re.match(r"[<>] (TEXT|PING|PONG|CLOSE) ", line)]
    assert frames[:2] == ["> TEXT 'hello' [5 bytes]", "< TEXT 'hello' [5 bytes]"]
    assert [f.split()[:2] for f in frames[2:]] == [
        [">", "PING"],
        ["<", "PONG"],
        [">", "CLOSE"],
        ["<", "CLOSE"],
    ]
    assert not any(line.startswith("* trying") for line in lines)  # that is -vv


def test_vv_adds_addresses_tried(capsys: pytest.CaptureFixture[str]) -> None:
    """-vv: the resolved addresses and each attempt, even when every one refuses."""
    code = main(["probe", "ws://127.0.0.1:1/", "-vv"])
    lines = trace(capsys.readouterr().err)
    assert code == 1
    assert lines[:3] == [
        "* resolved: 127.0.0.1:1",
        "* trying 127.0.0.1:1",
        "* 127.0.0.1:1 failed: connection refused: 127.0.0.1:1",
    ]


def test_credentials_redacted_everywhere(
    demo_thread: DemoThread, capsys: pytest.CaptureFixture[str]
) -> None:
    """Bearer, -H values, query values and a secret sent in a frame never reach the trace."""
    url = demo_thread.url("/auth") + "?access_token=query-secret-1"
    code = main(
        [
            "probe",
            url,
            "-v",
            "--bearer",
            DEMO_TOKEN,
            "-H",
            "X-Api-Key: header-secret-2",
            "--send",
            f"token={DEMO_TOKEN}",
        ]
    )
    out, err = capsys.readouterr()
    lines = trace(err)
    assert code == 0, out
    for secret in (DEMO_TOKEN, "query-secret-1", "header-secret-2"):
        assert secret not in out + err
    assert "> GET /auth?access_token=REDACTED HTTP/1.1" in lines
    assert "> Authorization: REDACTED" in lines
    assert "> X-Api-Key: REDACTED" in lines
    assert "> TEXT 'token=REDACTED' [" in "\n".join(lines)


def test_tls_details_in_the_trace(capsys: pytest.CaptureFixture[str]) -> None:
    """-v over wss: TLS version and cipher, the certificate's subject, issuer and validity."""
    ca = trustme.CA()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert("localhost").configure_cert(context)
    with ca.cert_pem.tempfile() as ca_file, ThreadServer(context) as srv:
        code = main(["probe", f"wss://localhost:{srv.port}/echo", "-v", "--cacert", ca_file])
    lines = trace(capsys.readouterr().err)
    assert code == 0
    assert any(re.match(r"\* TLS TLSv1\.[23], cipher \S+", line) for line in lines)
    subject = next(line for line in lines if line.startswith("* certificate subject: "))
    issuer = next(line for line in lines if line.startswith("* certificate issuer: "))
    assert "organizationName=trustme" in issuer
    assert subject != issuer
    assert any(re.match(r"\* certificate valid .+ to .+GMT$", line) for line in lines)
    assert "* certificate names: localhost" in lines
    assert any(re.match(r"\* chain certificate 1 of \d expires \d{4}-\d\d-\d\d ", x) for x in lines)


def test_tls_unverified_still_shows_expiry(capsys: pytest.CaptureFixture[str]) -> None:
    """-k -v: the certificate is not verified, so not decoded, but its expiry is shown."""
    ca = trustme.CA()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert("localhost").configure_cert(context)
    with ThreadServer(context) as srv:
        code = main(["probe", f"wss://localhost:{srv.port}/echo", "-v", "-k", "--pings", "0"])
    lines = trace(capsys.readouterr().err)
    assert code == 0
    assert "* certificate not verified, so its names are not decoded" in lines
    assert any(line.startswith("* chain certificate 1 of 1 expires ") for line in lines)


@pytest.fixture
def wire_log_state() -> Iterator[None]:
    assert WIRE_LOG.level == logging.INFO
    yield
    assert WIRE_LOG.level == logging.INFO
    assert WIRE_LOG.handlers == []
    assert WIRE_LOG.propagate is True
    assert ADDRESS_LOG.level == logging.NOTSET


@pytest.mark.usefixtures("wire_log_state")
def test_tracing_off_after_a_verbose_run(
    demo_thread: DemoThread, capsys: pytest.CaptureFixture[str]
) -> None:
    """After -v, connections are made without websockets' debug log again (zero cost off)."""
    assert main(["probe", demo_thread.url("/echo"), "-vv", "--pings", "0"]) == 0
    assert main(["probe", demo_thread.url("/echo"), "--pings", "0"]) == 0
    err = capsys.readouterr().err
    assert err.count("> GET /echo HTTP/1.1") == 1  # the second run traced nothing
    protocol = ClientProtocol(parse_uri(demo_thread.url("/echo")), logger=WIRE_LOG)
    assert protocol.debug is False


@pytest.mark.parametrize(
    ("frame", "shown"),
    [
        (Frame(Opcode.TEXT, b"hi"), "TEXT 'hi' [2 bytes]"),
        (Frame(Opcode.BINARY, b"hi"), "BINARY 68 69 [2 bytes]"),
        (Frame(Opcode.TEXT, b"x" * 70), "TEXT '" + "x" * 64 + "'... [70 bytes]"),
        (Frame(Opcode.BINARY, bytes(65)), "BINARY " + " ".join(["00"] * 64) + "... [65 bytes]"),
        (Frame(Opcode.TEXT, b"par", fin=False), "TEXT 'par' [3 bytes, not final]"),
        (Frame(Opcode.PING, b"\x01"), "PING 01 [binary, 1 byte]"),
    ],
    ids=["text", "binary-as-hex", "long-text-cut", "long-binary-cut", "fragment", "control"],
)
def test_describe_frame(frame: Frame, shown: str) -> None:
    """Text shown, binary as hex, long data cut at 64 bytes, control frames as websockets."""
    assert describe_frame(frame) == shown


def test_json_stdout_stays_json_with_v(
    demo_thread: DemoThread, capsys: pytest.CaptureFixture[str]
) -> None:
    """-v goes to stderr: --json output still parses as one object."""
    assert main(["probe", demo_thread.url("/echo"), "--json", "-v", "--pings", "0"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["success"] is True
    assert "> GET /echo HTTP/1.1" in trace(err)


def test_negotiated_subprotocol_and_extensions_traced(
    demo_thread: DemoThread, capsys: pytest.CaptureFixture[str]
) -> None:
    """-v names what the upgrade negotiated, after the response headers."""
    argv = ["-v", "--pings", "0", "--subprotocol", "echo.v1", "--compression"]
    assert main(["probe", demo_thread.url("/echo"), *argv]) == 0
    lines = trace(capsys.readouterr().err)
    assert "< Sec-WebSocket-Protocol: echo.v1" in lines
    negotiated = "* negotiated: subprotocol echo.v1, extensions permessage-deflate"
    assert lines.index(negotiated) > lines.index("< HTTP/1.1 101 Switching Protocols")


def test_tracer_prints_after_the_event_not_inside_it() -> None:
    """On the loop, a record is printed on the next turn, so no phase stamp includes it."""
    out = io.StringIO()
    tracer = Tracer(out, style=Style(color=False), secrets=["s3cret"])
    record = logging.LogRecord("agent.probes.wire", logging.DEBUG, "", 0, "> %s", ("s3cret",), None)

    async def handle_event() -> tuple[str, str]:
        tracer.emit(record)
        during = out.getvalue()
        await asyncio.sleep(0)  # one loop turn: the event's handling is over
        return during, out.getvalue()

    during, after = asyncio.run(handle_event())
    assert during == ""
    assert after.rstrip().endswith("  > REDACTED")
