"""``-v`` / ``-vv``: the upgrade's headers, TLS details and every frame, as they happen.

Nothing here costs a probe anything when off: websockets' protocol objects write
their wire log (request and response headers, each frame parsed or sent) only when
their logger is enabled for DEBUG at the moment the connection is made, and the
probe's logger (:data:`~agent.probes.dial.upgrade.WIRE_LOG`) is pinned at INFO. The
CLI lowers it for the duration of a verbose command and installs :class:`Tracer`, a
logging handler that prints each record with the time since the run began, once the
event that logged it has been handled (so the phase stamps never include printing).

Each line is scrubbed before it is printed: credential headers (Authorization,
Proxy-Authorization, Cookie, Set-Cookie and every header given with ``-H``), query
values of the request line, and every secret value of the check wherever it appears
(a first-message token inside a frame included).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Collection, Iterator
from typing import TextIO
from urllib.parse import parse_qsl, urlencode

from websockets.frames import Frame, Opcode

from agent.cli.style import Style
from agent.probes.dial.tcp import ADDRESS_LOG as _ADDRESS_LOG
from agent.probes.dial.upgrade import WIRE_LOG
from agent.redact import REDACTED

__all__ = [
    "ADDRESS_LOG",
    "CREDENTIAL_HEADERS",
    "FRAME_PREVIEW",
    "Tracer",
    "describe_frame",
    "tracing",
]

#: Where dialing reports the addresses it resolved and tried (shown with ``-vv``).
ADDRESS_LOG = _ADDRESS_LOG
#: Headers whose values are always shown as REDACTED.
CREDENTIAL_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "set-cookie"})
#: Bytes of a data frame shown before it is cut.
FRAME_PREVIEW = 64


class Tracer(logging.Handler):
    """Prints wire records as ``+MS.mmm ms > GET /path HTTP/1.1``, scrubbed."""

    def __init__(
        self,
        out: TextIO,
        *,
        style: Style,
        secrets: Collection[str] = (),
        secret_headers: Collection[str] = (),
    ) -> None:
        super().__init__(level=logging.DEBUG)
        self.out = out
        self.style = style
        # Longest first, so a value containing another is replaced whole.
        self.secrets = sorted({s for s in secrets if s}, key=len, reverse=True)
        self.secret_headers = CREDENTIAL_HEADERS | {h.lower() for h in secret_headers}
        self.began = time.perf_counter()

    def restart(self) -> None:
        """Timestamps count from now (called as each run begins)."""
        self.began = time.perf_counter()

    def emit(self, record: logging.LogRecord) -> None:
        """Stamp the record now; print it once the current event has been handled.

        Records come from inside the connection's event handling, before the phase
        stamps of that event are taken (a response's headers are logged while it is
        parsed, then ``response_at`` is stamped). Printing there would add the
        terminal's time to the phase, so printing waits for the loop's next turn.
        """
        at = time.perf_counter()
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # not on the event loop: nothing is being timed here
            self.show(record, at)
            return
        loop.call_soon(self.show, record, at)

    def show(self, record: logging.LogRecord, at: float) -> None:
        """Print one record stamped at ``at`` (never raises: a closed pipe must not
        fail the probe)."""
        try:
            line = self.scrub(self.describe(record))
            elapsed = (at - self.began) * 1000
            stamp = self.style.paint("dim", f"{elapsed:>10.3f} ms")
            kind = {"> ": "sent", "< ": "recv"}.get(line[:2])
            print(f"{stamp}  {self.style.paint(kind, line) if kind else line}", file=self.out)
            self.out.flush()
        except Exception:  # a logging handler must not raise into the probe
            self.handleError(record)

    def describe(self, record: logging.LogRecord) -> str:
        """The record's text with header values and the request query redacted."""
        args = record.args if isinstance(record.args, tuple) else ()
        if record.msg in ("> %s: %s", "< %s: %s") and len(args) == 2:
            name, value = str(args[0]), str(args[1])
            if name.lower() in self.secret_headers:
                value = REDACTED
            return f"{record.msg[0]} {name}: {value}"
        if record.msg in ("> %s", "< %s") and len(args) == 1 and isinstance(args[0], Frame):
            return f"{record.msg[0]} {describe_frame(args[0])}"
        if record.msg == "> GET %s HTTP/1.1" and len(args) == 1:
            return f"> GET {_redact_path(str(args[0]))} HTTP/1.1"
        return record.getMessage()

    def scrub(self, text: str) -> str:
        """``text`` with every secret value replaced."""
        for secret in self.secrets:
            text = text.replace(secret, REDACTED)
        return text


def describe_frame(frame: Frame, *, limit: int = FRAME_PREVIEW) -> str:
    """``TEXT 'hi' [2 bytes]``, ``BINARY 68 69 [2 bytes]``: text shown, binary as hex.

    Data frames longer than ``limit`` bytes are cut (``...``); control frames read
    as websockets writes them (``CLOSE 1000 (OK) [2 bytes]``).
    """
    if frame.opcode not in (Opcode.TEXT, Opcode.BINARY, Opcode.CONT):
        return str(frame)
    data = bytes(frame.data)
    cut = "..." if len(data) > limit else ""
    if frame.opcode is Opcode.BINARY:
        shown = data[:limit].hex(" ") + cut
    else:
        shown = repr(data[:limit].decode("utf-8", errors="replace")) + cut
    fin = "" if frame.fin else ", not final"
    return f"{frame.opcode.name} {shown} [{len(data)} bytes{fin}]"


def _redact_path(path: str) -> str:
    base, sep, query = path.partition("?")
    if not sep:
        return path
    pairs = parse_qsl(query, keep_blank_values=True)
    return f"{base}?{urlencode([(k, REDACTED) for k, _ in pairs], safe=REDACTED)}"


@contextlib.contextmanager
def tracing(tracer: Tracer, *, addresses: bool) -> Iterator[Tracer]:
    """Route the wire log to ``tracer`` for the duration; restore the loggers after.

    Args:
        tracer: the handler to install.
        addresses: also show the resolved addresses tried (``-vv``).
    """
    saved = [(log, log.level, log.propagate) for log in (WIRE_LOG, ADDRESS_LOG)]
    WIRE_LOG.setLevel(logging.DEBUG)
    ADDRESS_LOG.setLevel(logging.DEBUG if addresses else logging.INFO)
    WIRE_LOG.propagate = False  # the daemon's log format is not for this
    WIRE_LOG.addHandler(tracer)
    try:
        yield tracer
    finally:
        WIRE_LOG.removeHandler(tracer)
        for log, level, propagate in saved:
            log.setLevel(level)
            log.propagate = propagate
