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

from pydantic import (
    BaseModel,
    BeforeValidator,
    ByteSize,
    ConfigDict,
    GetJsonSchemaHandler,
    SecretStr,
    ValidationInfo,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema

__all__ = [
    "DURATION_PATTERN",
    "MAX_SECRET_FILE_BYTES",
    "ByteCount",
    "Duration",
    "Frozen",
    "Int",
    "Number",
    "Secret",
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


class _OrText:
    """JSON Schema of a value also written as text matching ``pattern`` (``30s``)."""

    def __init__(self, pattern: str) -> None:
        self.pattern = pattern

    def __get_pydantic_json_schema__(
        self, core: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        number = handler(core)
        return {"anyOf": [number, {"type": "string", "pattern": self.pattern}]}


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
    with os.fdopen(fd, "rb") as file:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise ValueError(f"secret file {str(path)!r} is not a regular file")
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


def _secret_schema(core: CoreSchema, handler: GetJsonSchemaHandler) -> JsonSchemaValue:
    file_ref = {
        "type": "object",
        "properties": {"file": {"type": "string"}},
        "required": ["file"],
        "additionalProperties": False,
    }
    return {"anyOf": [{"type": "string"}, file_ref]}


class _SecretSchema:
    __get_pydantic_json_schema__ = staticmethod(_secret_schema)


#: Float seconds; accepts numbers and strings with units (``30s``, ``1m30s``).
Duration = Annotated[float, BeforeValidator(parse_duration), _OrText(DURATION_PATTERN)]
#: An integer (never a boolean).
Int = Annotated[int, BeforeValidator(reject_bool)]
#: A float (never a boolean).
Number = Annotated[float, BeforeValidator(reject_bool)]
#: Bytes: a number or ``64KiB``, ``1MB`` (never a boolean).
ByteCount = Annotated[ByteSize, BeforeValidator(reject_bool)]
#: A secret string: never printed (``SecretStr``), may come from a file.
Secret = Annotated[SecretStr, BeforeValidator(read_secret), _SecretSchema()]
