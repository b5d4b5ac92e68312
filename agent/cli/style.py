"""Colour for people, plain text for pipes: ANSI colour only on a terminal.

Colour is used when the stream is a TTY, ``--no-color`` was not given and the
``NO_COLOR`` environment variable is unset or empty (https://no-color.org).
"""

from __future__ import annotations

import os
from typing import TextIO

__all__ = ["Style", "use_color"]

_CODES = {"ok": "32", "fail": "31;1", "warn": "33", "dim": "2", "sent": "36", "recv": "35"}


def use_color(stream: TextIO, *, no_color: bool = False) -> bool:
    """Whether to colour output written to ``stream``.

    Args:
        stream: where the output goes.
        no_color: ``--no-color`` was given.

    Returns:
        True only for a TTY, without ``--no-color`` and without ``NO_COLOR``.
    """
    if no_color or os.environ.get("NO_COLOR", ""):
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


class Style:
    """Wraps text in ANSI colour codes, or leaves it alone when colour is off."""

    def __init__(self, *, color: bool) -> None:
        self.color = color

    def paint(self, kind: str, text: str) -> str:
        """``text`` in the colour of ``kind`` (ok, fail, warn, dim, sent, recv)."""
        if not self.color or not text:
            return text
        return f"\x1b[{_CODES[kind]}m{text}\x1b[0m"
