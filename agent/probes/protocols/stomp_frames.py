"""STOMP 1.0-1.2 frames: ``COMMAND\\nheader:value\\n...\\n\\nbody\\0``.

Written here: the format is a few dozen lines, and the PyPI STOMP libraries
(stomp.py, aiostomp, stompman) are clients that own their connection. Header values
are escaped as STOMP 1.1/1.2 require (never in CONNECT/CONNECTED, as the spec says);
``content-length`` is honoured and sent; heart-beat end-of-lines between frames are
skipped. A frame breaking the grammar raises :class:`StompFormatError`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["SERVER_COMMANDS", "Frame", "FrameReader", "StompFormatError", "encode"]

#: Commands a server sends.
SERVER_COMMANDS = frozenset({"CONNECTED", "MESSAGE", "RECEIPT", "ERROR"})

_ESCAPES = {"\\": "\\\\", "\n": "\\n", ":": "\\c", "\r": "\\r"}
_UNESCAPES = {"\\": "\\", "n": "\n", "c": ":", "r": "\r"}
_UNESCAPED_COMMANDS = frozenset({"CONNECT", "STOMP", "CONNECTED"})


class StompFormatError(ValueError):
    """Bytes that are not a well-formed STOMP frame."""


@dataclass(frozen=True, slots=True)
class Frame:
    """One STOMP frame."""

    command: str
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


def _escape(value: str) -> str:
    return "".join(_ESCAPES.get(c, c) for c in value)


def _unescape(value: str) -> str:
    if "\\" not in value:
        return value
    out, chars = [], iter(value)
    for c in chars:
        if c != "\\":
            out.append(c)
            continue
        nxt = next(chars, "")
        if nxt not in _UNESCAPES:
            raise StompFormatError(f"undefined escape \\{nxt} in a header")
        out.append(_UNESCAPES[nxt])
    return "".join(out)


def encode(command: str, headers: dict[str, str], body: bytes = b"") -> bytes:
    """One frame, with ``content-length`` when it has a body."""
    escape = command not in _UNESCAPED_COMMANDS
    lines = [command]
    for key, value in headers.items():
        lines.append(f"{_escape(key)}:{_escape(value)}" if escape else f"{key}:{value}")
    if body:
        lines.append(f"content-length:{len(body)}")
    return ("\n".join(lines) + "\n\n").encode() + body + b"\0"


class FrameReader:
    """Split the server's byte stream into frames (a message may hold part of one)."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[Frame]:
        """Add ``data``; return every frame now complete."""
        self._buffer += data
        frames: list[Frame] = []
        while True:
            # Heart-beats: end-of-lines between frames.
            while bytes(self._buffer[:1]) in (b"\n", b"\r"):
                del self._buffer[:1]
            end_of_headers = self._buffer.find(b"\n\n")
            crlf = self._buffer.find(b"\r\n\r\n")
            if crlf != -1 and (end_of_headers == -1 or crlf < end_of_headers):
                head_end, body_start = crlf, crlf + 4
            elif end_of_headers != -1:
                head_end, body_start = end_of_headers, end_of_headers + 2
            else:
                return frames
            command, headers = _head(bytes(self._buffer[:head_end]))
            length = headers.get("content-length")
            if length is not None:
                if not length.isdigit():
                    raise StompFormatError(f"content-length {length!r} is not a number")
                body_end = body_start + int(length)
                if len(self._buffer) < body_end + 1:
                    return frames
                if self._buffer[body_end] != 0:
                    raise StompFormatError("no NUL after content-length bytes of body")
            else:
                body_end = self._buffer.find(b"\0", body_start)
                if body_end == -1:
                    return frames
            frames.append(Frame(command, headers, bytes(self._buffer[body_start:body_end])))
            del self._buffer[: body_end + 1]


def _head(raw: bytes) -> tuple[str, dict[str, str]]:
    try:
        text = raw.decode()
    except UnicodeDecodeError:
        raise StompFormatError("frame headers are not UTF-8") from None
    lines = text.replace("\r\n", "\n").split("\n")
    command = lines[0]
    if command not in SERVER_COMMANDS:
        raise StompFormatError(f"unknown server command {command[:30]!r}")
    unescape = command not in _UNESCAPED_COMMANDS
    headers: dict[str, str] = {}
    for line in lines[1:]:
        key, sep, value = line.partition(":")
        if not sep:
            raise StompFormatError(f"header line without a colon: {line[:40]!r}")
        if unescape:
            key, value = _unescape(key), _unescape(value)
        headers.setdefault(key, value)  # the first of repeated headers wins (STOMP 1.2)
    return command, headers
