"""Value types shared by every config model: durations, numbers, sizes and secrets.

YAML reads ``true``/``false`` as booleans and pydantic's lax mode would take them as
1 and 0 wherever a number is expected (``timeout: true`` would be a 1-second timeout):
every numeric type here refuses a boolean, with the key's line.
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ByteSize,
    ConfigDict,
    GetJsonSchemaHandler,
    SecretStr,
    ValidationInfo,
    WithJsonSchema,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema

__all__ = [
    "DURATION_PATTERN",
    "HEADER_NAME_PATTERN",
    "HEADER_VALUE_PATTERN",
    "HTTP_URL_PATTERN",
    "MAX_SECRET_FILE_BYTES",
    "NAME_PATTERN",
    "ByteCount",
    "Duration",
    "Frozen",
    "HeaderName",
    "HeaderValue",
    "HttpSecretUrl",
    "HttpUrl",
    "Int",
    "Number",
    "Secret",
    "SecretHeaderValue",
    "config_file",
    "has_surrogate",
    "parse_duration",
    "read_secret",
    "reject_bool",
]

_UNIT_SECONDS = {"d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
_NUM = r"\d+(?:\.\d+)?"
#: A duration as text: plain seconds (``30``, ``2.5``), one unit (``500ms``, ``5m``) or
#: Go-style components, each unit at most once and largest first (``1m30s``, ``1h2m3.5s``,
#: ``1d12h``).
DURATION_PATTERN = (
    rf"^\s*(?:{_NUM}(?:\s*(?:ms|s|m|h|d))?"
    rf"|(?=\d)(?:{_NUM}d)?(?:{_NUM}h)?(?:{_NUM}m)?(?:{_NUM}s)?(?:{_NUM}ms)?)\s*$"
)
_DURATION_RE = re.compile(DURATION_PATTERN)
_COMPONENT_RE = re.compile(rf"({_NUM})\s*(ms|s|m|h|d)")
_DURATION_HELP = (
    "use seconds (30, 2.5), a unit (500ms, 30s, 5m, 1h, 1d) or units largest first (1m30s)"
)
#: Largest secret file read (a token, a password, a key): anything bigger is a mistake,
#: and a device such as /dev/zero would otherwise be read forever.
MAX_SECRET_FILE_BYTES = 64 * 1024


class Frozen(BaseModel):
    """Base of every config model: immutable, and unknown keys are errors."""

    model_config = ConfigDict(frozen=True, extra="forbid")


def reject_bool(value: Any) -> Any:
    """Refuse ``true``/``false`` where a number is expected; anything else passes on."""
    if isinstance(value, bool):
        raise ValueError(f"expected a number, not the boolean {str(value).lower()}")
    return value


def parse_duration(value: Any) -> Any:
    """Accept ``5``, ``2.5``, ``"500ms"``, ``"30s"``, ``"5m"``, ``"1h"``, ``"1d"``, ``"1m30s"``.

    Returns float seconds; a boolean or malformed text raises :class:`ValueError`;
    anything else is handed on for pydantic to reject.
    """
    if isinstance(value, bool):
        raise ValueError(f"expected a duration, not the boolean {str(value).lower()}")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        if not _DURATION_RE.match(value):
            raise ValueError(f"invalid duration {value!r}: {_DURATION_HELP}")
        components = _COMPONENT_RE.findall(value)
        if not components:
            return float(value)
        return sum(float(number) * _UNIT_SECONDS[unit] for number, unit in components)
    return value


def _read_regular_file(path: Path, *, limit: int) -> bytes:
    """The content of ``path`` if it is a regular file of at most ``limit`` bytes.

    Opened without blocking so a FIFO cannot hang the load; a device, a directory or a
    pipe is refused before anything is read.

    Raises:
        ValueError: not a regular file, too large, or unreadable (message names it).
    """
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as exc:
        raise ValueError(f"cannot read secret file {str(path)!r}: {exc.strerror}") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise ValueError(f"secret file {str(path)!r} is not a regular file")
    with os.fdopen(fd, "rb") as file:
        data = file.read(limit + 1)
    if len(data) > limit:
        raise ValueError(
            f"secret file {str(path)!r} is larger than {limit // 1024} KiB: not a secret"
        )
    return data


def read_secret(value: Any, info: ValidationInfo) -> Any:
    """Resolve a secret written as ``{file: PATH}`` (relative to the config file).

    Only regular files of at most :data:`MAX_SECRET_FILE_BYTES` are read.
    ``${ENV_VAR}`` references are expanded by the loader before validation, so plain
    strings arrive here already resolved.
    """
    if isinstance(value, dict):
        if set(value) != {"file"} or not isinstance(value["file"], str):
            raise ValueError("a secret is a string or {file: PATH}")
        base = Path((info.context or {}).get("base_dir", "."))
        path = base / value["file"]
        data = _read_regular_file(path, limit=MAX_SECRET_FILE_BYTES)
        try:
            return data.decode("utf-8").strip()
        except UnicodeDecodeError:
            raise ValueError(f"secret file {str(path)!r} is not UTF-8 text") from None
    return value


def _text_schema(pattern: str | None = None) -> dict[str, Any]:
    """JSON Schema of a string matching ``pattern`` (what the validator checks, roughly)."""
    return {"type": "string"} if pattern is None else {"type": "string", "pattern": pattern}


class _Text:
    """JSON Schema of a string: it also matches ``pattern``."""

    def __init__(self, pattern: str) -> None:
        self.pattern = pattern

    def __get_pydantic_json_schema__(
        self, core: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        # The handler's schema carries the field's own constraints (bounds, lengths).
        return {**handler(core), **_text_schema(self.pattern)}


class _NumberOrText(_Text):
    """JSON Schema of a number also written as text matching ``pattern`` (``30s``)."""

    def __get_pydantic_json_schema__(
        self, core: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        return {"anyOf": [handler(core), _text_schema(self.pattern)]}


def _secret(pattern: str | None = None) -> WithJsonSchema:
    """JSON Schema of a secret: a string (matching ``pattern``, if given) or ``{file: PATH}``."""
    file_ref = {
        "type": "object",
        "properties": {"file": {"type": "string"}},
        "required": ["file"],
        "additionalProperties": False,
    }
    return WithJsonSchema({"anyOf": [_text_schema(pattern), file_ref]})


_SURROGATE = re.compile("[\ud800-\udfff]")
#: RFC 9110 token characters: what a header name may be made of.
HEADER_NAME_PATTERN = r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$"
_HEADER_NAME = re.compile(HEADER_NAME_PATTERN)
#: A header value must not split the request.
HEADER_VALUE_PATTERN = r"^[^\r\n\x00]*$"
#: What an http(s) URL starts with (the JSON Schema's approximation of the check below).
HTTP_URL_PATTERN = r"^https?://[^/?#\s]"

#: What a check name or the agent's location may be made of.
NAME_PATTERN = r"^[A-Za-z0-9_.:-]+$"


def config_file(value: str | None, info: ValidationInfo) -> str | None:
    """Resolve a file path relative to the config file's directory; it must exist.

    Only when loading a config (the loader passes ``base_dir`` in the validation
    context): models built in code keep their paths as given.
    """
    base = (info.context or {}).get("base_dir")
    if value is None or base is None:
        return value
    path = Path(base, os.path.expanduser(value))
    if not path.is_file():
        raise ValueError(f"file {str(path)!r} not found")
    return str(path)


def has_surrogate(text: str) -> bool:
    """Whether ``text`` holds half a UTF-16 surrogate pair (it cannot be encoded)."""
    return not text.isascii() and _SURROGATE.search(text) is not None


def _header_name(name: str) -> str:
    if not _HEADER_NAME.match(name):
        raise ValueError(f"header name {name!r} is not a valid HTTP token")
    return name


def _header_value(value: str) -> str:
    # The value is never part of the message: it may be a secret.
    if any(c in value for c in "\r\n\0"):
        raise ValueError("header value contains a line break or NUL")
    return value


def _secret_header_value(value: SecretStr) -> SecretStr:
    _header_value(value.get_secret_value())
    return value


def _http_url(value: str) -> str:
    """``value`` if it is an absolute http:// or https:// URL (never quoted in messages)."""
    if has_surrogate(value):
        raise ValueError("URL holds a lone surrogate (\\udXXX), not a character")
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises on a non-numeric or out-of-range port
    except ValueError:
        raise ValueError("must be an absolute http:// or https:// URL") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        other = parts.scheme not in ("", "http", "https") and parts.scheme.isalnum()
        hint = f" (not {parts.scheme}://)" if other else ""
        raise ValueError(f"must be an absolute http:// or https:// URL{hint}")
    return value


#: Float seconds; accepts numbers and strings with units (``30s``, ``1m30s``).
Duration = Annotated[float, BeforeValidator(parse_duration), _NumberOrText(DURATION_PATTERN)]
#: An integer (never a boolean).
Int = Annotated[int, BeforeValidator(reject_bool)]
#: A float (never a boolean).
Number = Annotated[float, BeforeValidator(reject_bool)]
#: Bytes: a number or ``64KiB``, ``1MB`` (never a boolean).
ByteCount = Annotated[ByteSize, BeforeValidator(reject_bool)]
#: A secret string: never printed (``SecretStr``), may come from a file.
Secret = Annotated[SecretStr, BeforeValidator(read_secret), _secret()]
#: An HTTP header name (an RFC 9110 token).
HeaderName = Annotated[str, AfterValidator(_header_name), _Text(HEADER_NAME_PATTERN)]
#: A plain header value: no line break, no NUL.
HeaderValue = Annotated[str, AfterValidator(_header_value), _Text(HEADER_VALUE_PATTERN)]
#: A secret header value (``auth.headers``): no line break, no NUL.
SecretHeaderValue = Annotated[Secret, AfterValidator(_secret_header_value)]
#: An absolute http:// or https:// URL.
HttpUrl = Annotated[str, AfterValidator(_http_url), _Text(HTTP_URL_PATTERN)]
#: A secret URL (Slack and Discord webhook URLs carry their token). Its scheme is checked
#: by the receiver type (``validate()`` of the notifier), which knows whether it needs one.
HttpSecretUrl = Annotated[SecretStr, BeforeValidator(read_secret), _secret(HTTP_URL_PATTERN)]
