"""Process-wide logging setup: logfmt or one JSON object per line, on stderr.

Records may carry structured fields through ``extra=`` (``check``, ``reason`` ...); the
JSON format emits them as top-level keys, the text format is logfmt (the ``key=value``
lines of Heroku, Prometheus and Grafana Loki's ``| logfmt``): ``ts``, ``level``,
``logger``, ``msg``, then the fields, each value quoted when it holds a space, a quote,
``=`` or is empty, so any logfmt parser reads every line back. Callers never pass
secrets to a log call, so nothing is filtered here.
"""

from __future__ import annotations

import datetime
import json
import logging
import re
import sys
from typing import Any, TextIO

__all__ = [
    "LOG_FORMATS",
    "LOG_LEVELS",
    "JsonFormatter",
    "TextFormatter",
    "add_fields",
    "logfmt_value",
    "setup_logging",
]

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


_UNQUOTED = re.compile(r"[^\s\"=\\\x00-\x1f\x7f]+")


def logfmt_value(value: object) -> str:
    """One logfmt value: bare when it can be, else double-quoted with ``\\``, ``"`` and
    control characters escaped (so a value never spans two lines)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        # Durations in seconds: fixed point (0.000007, not 7e-06), microsecond precision.
        return f"{value:.6f}".rstrip("0").rstrip(".") or "0"
    text = str(value)
    if _UNQUOTED.fullmatch(text):
        return text
    return json.dumps(text, ensure_ascii=False)


def _record_fields(
    formatter: logging.Formatter, record: logging.LogRecord, *, message: str, exception: str
) -> dict[str, Any]:
    """The fields of one record in output order: ``ts``, ``level``, ``logger``, the
    message under ``message``'s name, extra fields, the traceback under ``exception``'s."""
    out: dict[str, Any] = {
        "ts": _timestamp(record),
        "level": record.levelname.lower(),
        "logger": record.name,
        message: record.getMessage(),
    }
    for key, value in _fields(record).items():
        out.setdefault(key, value)
    if record.exc_info:
        out[exception] = formatter.formatException(record.exc_info)
    return out


class TextFormatter(logging.Formatter):
    """logfmt: ``ts=2026-11-23T22:00:00.000Z level=info logger=agent.x msg="..." k=v``."""

    def format(self, record: logging.LogRecord) -> str:
        """Render one record on one line (an exception's traceback as the ``exc`` field)."""
        pairs = _record_fields(self, record, message="msg", exception="exc")
        return " ".join(f"{key}={logfmt_value(value)}" for key, value in pairs.items())


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ``ts``, ``level``, ``logger``, ``message``, extra fields."""

    def format(self, record: logging.LogRecord) -> str:
        """Render one record as a single-line JSON object."""
        out = _record_fields(self, record, message="message", exception="exception")
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


class _StaticFields(logging.Filter):
    """Adds the same fields to every record (a record's own fields win)."""

    def __init__(self, fields: dict[str, str]) -> None:
        super().__init__()
        self.fields = fields

    def filter(self, record: logging.LogRecord) -> bool:
        for key, value in self.fields.items():
            if not hasattr(record, key):
                setattr(record, key, value)
        return True


def add_fields(**fields: str) -> None:
    """Put ``fields`` on every line this process logs from now on (after :func:`setup_logging`).

    Agents sharing one log (``wsprobe run --processes N``) tag their lines with their
    ``shard`` this way.
    """
    for handler in logging.getLogger().handlers:
        if handler.get_name() == _HANDLER_NAME:
            handler.addFilter(_StaticFields(dict(fields)))
