"""agent.logs: text and JSON formats, levels, and libraries that would print secrets."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator

import pytest

from agent.logs import add_fields, setup_logging

#: logfmt as go-logfmt (the decoder of Prometheus' and Loki's tooling) reads it: bare
#: keys, ``=``, a bare value (no space, quote, ``=`` or control character) or a
#: double-quoted one with backslash escapes, pairs separated by spaces.
_PAIR = re.compile(r'([^\s="\x00-\x1f]+)=("(?:[^"\\\x00-\x1f]|\\.)*"|[^\s="\\\x00-\x1f]*)(?: |$)')


def parse_logfmt(line: str) -> dict[str, str]:
    """Decode one logfmt line strictly: every character belongs to a pair."""
    assert "\n" not in line
    out: dict[str, str] = {}
    pos = 0
    while pos < len(line):
        match = _PAIR.match(line, pos)
        assert match, f"not logfmt at {pos}: {line[pos:]!r}"
        key, raw = match.groups()
        assert key not in out, f"duplicate key {key}"
        # A quoted value's escapes are Go's strconv ones, a superset of JSON's.
        out[key] = json.loads(raw) if raw.startswith('"') else raw
        pos = match.end()
    return out


@pytest.fixture(autouse=True)
def _restore() -> Iterator[None]:
    root = logging.getLogger()
    names = ("websockets", "websockets.client", "httpx", "apscheduler")
    saved = list(root.handlers), root.level, {n: logging.getLogger(n).level for n in names}
    yield
    root.handlers[:] = saved[0]
    root.setLevel(saved[1])
    for name, level in saved[2].items():
        logging.getLogger(name).setLevel(level)


def test_json_format_is_one_object_per_line_with_extra_fields() -> None:
    """--log-format json writes ts, level, logger, message and extra= fields."""
    stream = io.StringIO()
    setup_logging(level="info", fmt="json", stream=stream)
    logging.getLogger("agent.runtime.runner").info("probe %s done", "x", extra={"check": "x"})
    (line,) = stream.getvalue().splitlines()
    data = json.loads(line)
    assert {k: data[k] for k in ("level", "logger", "message", "check")} == {
        "level": "info",
        "logger": "agent.runtime.runner",
        "message": "probe x done",
        "check": "x",
    }
    assert data["ts"].endswith("Z")


def test_text_format_appends_fields_and_respects_level() -> None:
    """Text lines are logfmt 'ts= level= logger= msg= k=v'; records below the level are dropped."""
    stream = io.StringIO()
    setup_logging(level="WARNING", fmt="text", stream=stream)
    log = logging.getLogger("agent.x")
    log.info("hidden")
    log.warning("shown", extra={"reason": "dns"})
    (line,) = stream.getvalue().splitlines()
    assert line.split(" ", 1)[1] == "level=warning logger=agent.x msg=shown reason=dns"
    assert parse_logfmt(line)["ts"].endswith("Z")


def test_added_fields_go_on_every_line_and_yield_to_the_records_own() -> None:
    """add_fields(shard=...) tags each later line; a record's own field of that name wins."""
    stream = io.StringIO()
    setup_logging(level="info", fmt="text", stream=stream)
    add_fields(shard="2/4")
    log = logging.getLogger("agent.x")
    log.info("one")
    log.info("two", extra={"shard": "mine"})
    first, second = (parse_logfmt(line) for line in stream.getvalue().splitlines())
    assert first["shard"] == "2/4"
    assert second["shard"] == "mine"


def test_setup_replaces_only_its_own_handler() -> None:
    """Calling setup twice leaves one wsprobe handler and keeps foreign handlers."""
    foreign = logging.NullHandler()
    logging.getLogger().addHandler(foreign)
    setup_logging(level="info", fmt="text", stream=io.StringIO())
    setup_logging(level="info", fmt="json", stream=io.StringIO())
    names = [h.get_name() for h in logging.getLogger().handlers]
    assert names.count("wsprobe") == 1
    assert foreign in logging.getLogger().handlers


def test_debug_never_enables_header_dumping_libraries() -> None:
    """At debug, websockets stays at INFO (it logs Authorization headers) and httpx at WARNING."""
    stream = io.StringIO()
    setup_logging(level="debug", fmt="text", stream=stream)
    logging.getLogger("websockets.client").debug("> Authorization: Bearer sekrit")
    logging.getLogger("httpx").info("HTTP Request: POST https://hooks.slack.com/T/B/sekrit")
    assert "sekrit" not in stream.getvalue()
    assert logging.getLogger("apscheduler").getEffectiveLevel() == logging.DEBUG


@pytest.mark.parametrize(
    ("level", "fmt"), [("loud", "text"), ("info", "xml")], ids=["level", "format"]
)
def test_unknown_level_or_format_is_rejected(level: str, fmt: str) -> None:
    """An unknown level or format raises ValueError naming the choices."""
    with pytest.raises(ValueError, match="must be one of"):
        setup_logging(level=level, fmt=fmt)


@pytest.mark.parametrize(
    "value",
    ["plain", "two words", 'say "hi"', "a=b", "back\\slash", "", "line\nbreak", "tab\there",
     "ünïcode ✓", "\x00\x1b[31m"],
    ids=["bare", "space", "quotes", "equals", "backslash", "empty", "newline", "tab", "unicode",
         "control"],
)  # fmt: skip
def test_text_format_is_logfmt_for_any_value(value: str) -> None:
    """Every message and field value reads back unchanged with a strict logfmt decoder."""
    stream = io.StringIO()
    setup_logging(level="info", fmt="text", stream=stream)
    logging.getLogger("agent.x").info(value, extra={"field": value, "n": 0.25, "ok": True})
    (line,) = stream.getvalue().splitlines()
    pairs = parse_logfmt(line)
    assert pairs["msg"] == value
    assert pairs["field"] == value
    assert pairs["level"] == "info"
    assert pairs["logger"] == "agent.x"
    assert (pairs["n"], pairs["ok"]) == ("0.25", "true")
    # Quoted only when it must be: a bare word stays bare.
    assert (" msg=plain " in line) == (value == "plain")


def test_text_format_keeps_a_traceback_on_one_line() -> None:
    """An exception's traceback is the exc field of the same line, not lines of its own."""
    stream = io.StringIO()
    setup_logging(level="info", fmt="text", stream=stream)
    try:
        raise ValueError("bad value")
    except ValueError:
        logging.getLogger("agent.x").exception("crashed")
    (line,) = stream.getvalue().splitlines()
    pairs = parse_logfmt(line)
    assert pairs["msg"] == "crashed"
    assert pairs["exc"].startswith("Traceback (most recent call last):\n")
    assert pairs["exc"].endswith("ValueError: bad value")
