"""Process-wide logging setup: human text or one JSON object per line, on stderr.

Records may carry structured fields through ``extra=`` (``check``, ``reason`` ...); the
JSON format emits them as top-level keys, the text format appends them as ``key=value``.
Callers never pass secrets to a log call, so nothing is filtered here.
"""

from __future__ import annotations

import datetime
import json
import logging
import sys
from typing import Any, TextIO

__all__ = ["LOG_FORMATS", "LOG_LEVELS", "JsonFormatter", "TextFormatter", "setup_logging"]

LOG_FORMATS: tuple[str, ...] = ("text", "json")
LOG_LEVELS: tuple[str, ...] = ("debug", "info", "warning", "error", "critical")

# Attributes every LogRecord has; anything else came from `extra=` and is a field.
_STANDARD = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", None, None)).keys() | {"message", "asctime"}
)
_HANDLER_NAME = "wsprobe"
# Libraries that log every job or request at DEBUG/INFO: keep them at WARNING unless
# the agent itself runs at DEBUG.
_CHATTY = ("apscheduler", "aiohttp.access", "asyncio")
# Libraries whose verbose levels print secrets, capped whatever --log-level says:
# websockets logs every handshake header (Authorization) and frame at DEBUG; httpx logs
# each request URL at INFO (Slack/Discord webhook URLs carry their token).
_CAPPED = {"websockets": logging.INFO, "httpx": logging.WARNING, "httpcore": logging.INFO}


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in vars(record).items() if k not in _STANDARD and not k.startswith("_")}


def _timestamp(record: logging.LogRecord) -> str:
    ts = datetime.datetime.fromtimestamp(record.created, tz=datetime.UTC)
    return ts.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class TextFormatter(logging.Formatter):
    """``2026-11-23T22:00:00.000Z INFO agent.runtime.runner: message key=value``."""

    def format(self, record: logging.LogRecord) -> str:
        """Render one record on one line (exception text on the following lines)."""
        line = f"{_timestamp(record)} {record.levelname} {record.name}: {record.getMessage()}"
        extras = " ".join(f"{k}={v}" for k, v in _fields(record).items())
        if extras:
            line += " " + extras
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ``ts``, ``level``, ``logger``, ``message``, extra fields."""

    def format(self, record: logging.LogRecord) -> str:
        """Render one record as a single-line JSON object."""
        out: dict[str, Any] = {
            "ts": _timestamp(record),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in _fields(record).items():
            out.setdefault(key, value)
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str, ensure_ascii=False)


def setup_logging(*, level: str = "info", fmt: str = "text", stream: TextIO | None = None) -> None:
    """Configure the root logger; calling it again replaces the previous setup.

    Args:
        level: one of :data:`LOG_LEVELS` (case-insensitive).
        fmt: ``text`` or ``json``.
        stream: where to write (stderr by default).

    Raises:
        ValueError: an unknown level or format.
    """
    name = level.lower()
    if name not in LOG_LEVELS:
        raise ValueError(f"log level must be one of {', '.join(LOG_LEVELS)}, not {level!r}")
    if fmt not in LOG_FORMATS:
        raise ValueError(f"log format must be one of {', '.join(LOG_FORMATS)}, not {fmt!r}")
    numeric = logging.getLevelNamesMapping()[name.upper()]
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    handler.set_name(_HANDLER_NAME)
    root = logging.getLogger()
    # Replace only our own handler: one installed by a host (pytest, an embedding app)
    # stays.
    for old in [h for h in root.handlers if h.get_name() == _HANDLER_NAME]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(numeric)
    for lib in _CHATTY:
        logging.getLogger(lib).setLevel(numeric if numeric <= logging.DEBUG else logging.WARNING)
    for lib, floor in _CAPPED.items():
        logging.getLogger(lib).setLevel(max(numeric, floor))
