"""``wsprobe connect URL``: an interactive WebSocket session, or lines piped in.

The connection is opened by the probes' own dialing (every auth, TLS, header,
subprotocol and proxy flag of ``probe`` means the same here), then:

- each line read is sent as a text message; ``/binary HEX``, ``/json {...}``,
  ``/ping``, ``/close [CODE [REASON]]`` and ``/help`` are commands, and ``//`` at
  the start of a line sends a literal ``/``;
- each message received is printed with its time (JSON pretty-printed when it
  parses, binary as hex), a pong with its round trip, the server's close with its
  code and reason.

When input ends (Ctrl-D, or the end of piped input) the session waits ``--wait``
seconds for replies (1 s for piped input, none on a terminal), then closes with 1000.
Ctrl-C closes the same way. Exit status: 0 on a clean close (ours answered by the
server, or the server's with 1000 or 1001), 1 when the connection failed or ended
otherwise, 2 on a usage error.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import json
import logging
import sys
import threading
import time
from typing import TextIO

from websockets import exceptions as wsx
from websockets.asyncio.client import ClientConnection

from agent.cli.check_flags import UsageError, add_target_arguments, check_from_flags
from agent.cli.signals import stop_on_signals
from agent.cli.style import Style, use_color
from agent.cli.verbose import Tracer, tracing
from agent.config.models import CheckConfig
from agent.config.types import parse_duration
from agent.probes.dial.upgrade import check_secrets
from agent.probes.errors import ProbeError
from agent.redact import REDACTED, redact_url
from agent.result import ProbeResult

__all__ = ["add_connect_arguments", "run_connect_command"]

log = logging.getLogger(__name__)

#: Seconds to wait for replies after piped input ends, unless ``--wait`` says otherwise.
DEFAULT_PIPE_WAIT = 1.0
#: Bytes of a binary message shown as hex before it is cut (text is shown whole).
BINARY_PREVIEW = 256
#: Close codes that count as a clean end of the session.
CLEAN_CLOSE_CODES = frozenset({1000, 1001})
_HELP = (
    "commands: /binary HEX, /json {...}, /ping, /close [CODE [REASON]], /help;"
    " // sends a line starting with /"
)


def add_connect_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``connect``'s flags: probe's target flags, plus timing and colour."""
    parser.add_argument("url", metavar="URL", help="ws:// or wss:// URL to connect to")
    session = parser.add_argument_group("session")
    session.add_argument(
        "--wait",
        metavar="SECONDS",
        help=f"after input ends, wait this long for replies (piped: {DEFAULT_PIPE_WAIT:g}s)",
    )
    session.add_argument(
        "--timeout", metavar="SECONDS", help="deadline to connect, TLS and upgrade (10s)"
    )
    session.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=0,
        help="trace headers, TLS and frames on stderr; -vv adds the addresses tried",
    )
    session.add_argument("--no-color", action="store_true", help="no colour (also: NO_COLOR)")
    add_target_arguments(parser)


def run_connect_command(args: argparse.Namespace) -> int:
    """Open the session and run it until input ends, ``/close``, Ctrl-C or the server closes.

    Returns:
        0 on a clean close, 1 when the connection failed or ended otherwise, 2 on a
        usage error.
    """
    interactive = sys.stdin.isatty()
    try:
        check = check_from_flags(args)
        wait = DEFAULT_PIPE_WAIT if not interactive else 0.0
        if args.wait is not None:
            wait = float(parse_duration(args.wait))
    except (UsageError, TypeError, ValueError) as exc:
        message = (
            str(exc)
            if isinstance(exc, UsageError)
            else "--wait must be a duration of 0 or more: 2, 0.5, 500ms"
        )
        for line in message.splitlines():
            print(f"wsprobe connect: error: {line}", file=sys.stderr)
        return 2
    if check.tls.insecure_skip_verify:
        log.warning("certificate verification is disabled for this session")
    out = sys.stdout
    session = Session(
        check,
        out=out,
        style=Style(color=use_color(out, no_color=args.no_color)),
        echo=not interactive,
    )
    if not args.verbose:
        return asyncio.run(session.run(wait=wait))
    tracer = Tracer(
        sys.stderr,
        style=Style(color=use_color(sys.stderr, no_color=args.no_color)),
        secrets=check_secrets(check),
        secret_headers=list(check.auth.headers),
    )
    with tracing(tracer, addresses=args.verbose >= 2):
        return asyncio.run(session.run(wait=wait))


class Session:
    """One connection, a line reader and a message printer."""

    def __init__(self, check: CheckConfig, *, out: TextIO, style: Style, echo: bool) -> None:
        self.check = check
        self.out = out
        self.style = style
        self.echo = echo
        self.secrets = sorted(check_secrets(check), key=len, reverse=True)
        self.closing = False
        self.pings: set[asyncio.Task[None]] = set()

    def say(self, kind: str, text: str) -> None:
        """Print one line stamped with the wall-clock time."""
        now = datetime.datetime.now().strftime("%H:%M:%S.%f")[:-3]
        for secret in self.secrets:
            text = text.replace(secret, REDACTED)
        print(f"{self.style.paint('dim', now)} {self.style.paint(kind, text)}", file=self.out)
        self.out.flush()

    async def run(self, *, wait: float) -> int:
        """Connect, converse, close; the exit status (130 when Ctrl-C came first)."""
        stop = asyncio.Event()
        with stop_on_signals(stop):
            conn = await self._open(stop)
            if conn is None:
                return 1 if not stop.is_set() else 130
            lines: asyncio.Queue[str | None] = asyncio.Queue()
            _read_lines_in_thread(lines)
            reader = asyncio.create_task(self._print_messages(conn))
            await self._send_lines(conn, lines, reader, stop, wait=wait)
            if conn.close_code is None and not reader.done():
                await self._close(conn, 1000, "")
            with contextlib.suppress(asyncio.CancelledError):
                await reader
        return 0 if self._clean(conn) else 1

    async def _open(self, stop: asyncio.Event) -> ClientConnection | None:
        """The open connection, or None when it failed (reported) or Ctrl-C came first."""
        from agent.probes.dial.opener import open_connection

        check = self.check
        result = ProbeResult(
            check=check.name, kind="connect", url=redact_url(check.url), started_at=time.time()
        )
        began = time.perf_counter()
        opening = asyncio.ensure_future(
            open_connection(check, result, deadline=began + check.timeout)
        )
        stopped = asyncio.ensure_future(stop.wait())
        await asyncio.wait({opening, stopped}, return_when=asyncio.FIRST_COMPLETED)
        stopped.cancel()
        if not opening.done():
            opening.cancel()
            with contextlib.suppress(asyncio.CancelledError, ProbeError):
                await opening
            return None
        try:
            conn = opening.result()
        except ProbeError as exc:
            self.say("fail", f"connection failed ({exc.reason.value}): {exc}")
            return None
        self.say("ok", _connected(result, time.perf_counter() - began))
        return conn

    def _clean(self, conn: ClientConnection) -> bool:
        """Our close answered by the server, or the server's own 1000/1001."""
        if self.closing:
            return conn.protocol.close_rcvd is not None
        return conn.close_code in CLEAN_CLOSE_CODES

    async def _send_lines(
        self,
        conn: ClientConnection,
        lines: asyncio.Queue[str | None],
        reader: asyncio.Task[None],
        stop: asyncio.Event,
        *,
        wait: float,
    ) -> None:
        """Send what is typed or piped until input ends, the server closes or Ctrl-C."""
        stopped = asyncio.ensure_future(stop.wait())
        try:
            while True:
                line_task = asyncio.ensure_future(lines.get())
                done, _ = await asyncio.wait(
                    {line_task, reader, stopped}, return_when=asyncio.FIRST_COMPLETED
                )
                if line_task not in done:
                    line_task.cancel()
                    return
                line = line_task.result()
                if line is None:
                    break
                if not await self._command(conn, line):
                    return
            # Input ended: leave the replies ``wait`` seconds to arrive.
            await asyncio.wait({reader, stopped}, timeout=wait)
        finally:
            stopped.cancel()

    async def _command(self, conn: ClientConnection, line: str) -> bool:
        """Act on one input line; False once the session is closing."""
        if line.startswith("//"):
            return await self._send(conn, line[1:])
        if not line.startswith("/"):
            return await self._send(conn, line)
        name, _, rest = line[1:].partition(" ")
        rest = rest.strip()
        if name == "binary":
            try:
                data = bytes.fromhex(rest)
            except ValueError:
                self.say("warn", "/binary needs hex digits, e.g. /binary 68 69 or /binary 6869")
                return True
            return await self._send(conn, data)
        if name == "json":
            try:
                text = json.dumps(json.loads(rest), separators=(",", ":"))
            except ValueError as exc:
                self.say("warn", f"/json: not JSON ({exc})")
                return True
            return await self._send(conn, text)
        if name == "ping":
            task = asyncio.create_task(self._ping(conn))
            self.pings.add(task)  # held until done, so it is not collected mid-flight
            task.add_done_callback(self.pings.discard)
            return True
        if name == "close":
            code, reason = _close_args(rest)
            if code is None:
                self.say("warn", "/close takes a code from 1000 to 4999, then a reason")
                return True
            await self._close(conn, code, reason)
            return False
        self.say("warn", _HELP if name == "help" else f"unknown command /{name}; {_HELP}")
        return True

    async def _send(self, conn: ClientConnection, message: str | bytes) -> bool:
        try:
            await conn.send(message)
        except wsx.ConnectionClosed:
            return False
        if self.echo:
            self.say("sent", f"> {_show(message, pretty=False)}")
        return True

    async def _ping(self, conn: ClientConnection) -> None:
        t0 = time.perf_counter()
        try:
            waiter = await conn.ping()
            await waiter
        except wsx.ConnectionClosed:
            return
        self.say("recv", f"< pong in {(time.perf_counter() - t0) * 1000:.3f} ms")

    async def _close(self, conn: ClientConnection, code: int, reason: str) -> None:
        self.closing = True
        self.say("sent", f"> close {code} {reason}".rstrip())
        with contextlib.suppress(TimeoutError, OSError, wsx.WebSocketException):
            async with asyncio.timeout(self.check.close_timeout):
                await conn.close(code, reason)
        if conn.close_code is None:
            conn.transport.abort()

    async def _print_messages(self, conn: ClientConnection) -> None:
        """Print every message until the connection closes, then how it closed."""
        try:
            async for message in conn:
                self.say("recv", f"< {_show(message, pretty=True)}")
        except wsx.ConnectionClosed:
            pass
        code, reason = conn.close_code, conn.close_reason or ""
        who = "closed" if self.closing else "server closed"
        kind = "ok" if self._clean(conn) else "fail"
        self.say(kind, f"{who}: {code} {reason}".rstrip())


def _connected(result: ProbeResult, elapsed: float) -> str:
    parts = [f"connected to {result.url} in {elapsed * 1000:.1f} ms"]
    if result.peer_ip:
        parts.append(f"peer {result.peer_ip}")
    if result.subprotocol:
        parts.append(f"subprotocol {result.subprotocol}")
    if result.extensions:
        parts.append("extensions " + ", ".join(result.extensions))
    if result.tls is not None and result.tls.version:
        parts.append(result.tls.version)
    return "; ".join(parts)


def _show(message: str | bytes, *, pretty: bool) -> str:
    """Text as is (JSON indented when ``pretty`` and it parses); binary as hex, cut."""
    if isinstance(message, bytes):
        cut = "..." if len(message) > BINARY_PREVIEW else ""
        return f"[binary {len(message)} bytes] {message[:BINARY_PREVIEW].hex(' ')}{cut}"
    if pretty and message[:1] in ("{", "["):
        try:
            return json.dumps(json.loads(message), indent=2, ensure_ascii=False)
        except ValueError:
            pass
    return message


def _close_args(rest: str) -> tuple[int | None, str]:
    if not rest:
        return 1000, ""
    code_text, _, reason = rest.partition(" ")
    try:
        code = int(code_text)
    except ValueError:
        return None, ""
    return (code, reason.strip()) if 1000 <= code <= 4999 else (None, "")


def _read_lines_in_thread(lines: asyncio.Queue[str | None]) -> None:
    """Feed stdin's lines to ``lines`` (None at the end) from a daemon thread.

    A thread works for a terminal, a pipe and a file alike, and a daemon one never
    holds the process open at exit while it waits for a line.
    """
    loop = asyncio.get_running_loop()

    def pump() -> None:
        try:
            for raw in sys.stdin:
                loop.call_soon_threadsafe(lines.put_nowait, raw.rstrip("\r\n"))
            loop.call_soon_threadsafe(lines.put_nowait, None)
        except RuntimeError:
            return  # the session ended (its loop is closed) while a line was awaited

    threading.Thread(target=pump, name="wsprobe-connect-stdin", daemon=True).start()
