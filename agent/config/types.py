"""Value types shared by every config model: durations, sizes and secrets."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, SecretStr, ValidationInfo

__all__ = ["Duration", "Frozen", "Secret", "parse_duration", "read_secret"]

_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}


class Frozen(BaseModel):
    """Base of every config model: immutable, and unknown keys are errors."""

    model_config = ConfigDict(frozen=True, extra="forbid")


def parse_duration(value: Any) -> Any:
    """Accept ``5``, ``2.5``, ``"500ms"``, ``"30s"``, ``"5m"``, ``"1h"``, ``"1d"``.

    Returns float seconds; anything else is handed on for pydantic to reject.
    """
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        m = _DURATION_RE.match(value)
        if not m:
            raise ValueError(
                f"invalid duration {value!r}: use a number of seconds or 500ms, 30s, 5m, 1h"
            )
        return float(m.group(1)) * _UNIT_SECONDS[m.group(2)]
    return value


def read_secret(value: Any, info: ValidationInfo) -> Any:
    """Resolve a secret written as ``{file: PATH}`` (relative to the config file).

    ``${ENV_VAR}`` references are expanded by the loader before validation, so plain
    strings arrive here already resolved.
    """
    if isinstance(value, dict):
        if set(value) != {"file"} or not isinstance(value["file"], str):
            raise ValueError("a secret is a string or {file: PATH}")
        base = Path((info.context or {}).get("base_dir", "."))
        path = base / value["file"]
        try:
            return path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ValueError(f"cannot read secret file {str(path)!r}: {exc.strerror}") from None
    return value


#: Float seconds; accepts numbers and strings with a unit.
Duration = Annotated[float, BeforeValidator(parse_duration)]
#: A secret string: never printed (``SecretStr``), may come from a file.
Secret = Annotated[SecretStr, BeforeValidator(read_secret)]
