"""Shared config value types: durations with units, secrets from files, frozen models."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from agent.config.types import Duration, Frozen, Secret


class Model(Frozen):
    """The smallest model using each shared type."""

    timeout: Duration = 1.0
    token: Secret | None = None


def error(data: dict[str, Any], context: dict[str, Any] | None = None) -> str:
    """The one validation message ``data`` produces."""
    with pytest.raises(ValidationError) as info:
        Model.model_validate(data, context=context)
    errors = info.value.errors()
    assert len(errors) == 1
    return str(errors[0]["msg"])


@pytest.mark.parametrize(
    ("written", "seconds"),
    [
        (5, 5.0),
        (2.5, 2.5),
        ("30", 30.0),
        ("2.5", 2.5),
        ("500ms", 0.5),
        ("30s", 30.0),
        ("5m", 300.0),
        ("1.5m", 90.0),
        ("1h", 3600.0),
        ("2h", 7200.0),
        ("1d", 86400.0),
        ("0.5d", 43200.0),
        (" 2 s ", 2.0),
    ],
    ids=str,
)
def test_duration_units(written: Any, seconds: float) -> None:
    """Numbers are seconds; ms, s, m, h and d scale by their length in seconds."""
    timeout = Model.model_validate({"timeout": written}).timeout
    assert timeout == seconds
    assert type(timeout) is float


@pytest.mark.parametrize("written", ["5x", "m", "-1s", "1 h 2", "", "1e3"], ids=repr)
def test_bad_duration_names_the_value(written: str) -> None:
    """Text that is not a duration is rejected, quoting it and saying what to write."""
    assert error({"timeout": written}).startswith(
        f"Value error, invalid duration {written!r}: use "
    )


def test_non_duration_type_is_rejected() -> None:
    """A list where a duration belongs is rejected by type, quoting what was written."""
    with pytest.raises(ValidationError) as info:
        Model.model_validate({"timeout": [1]})
    (only,) = info.value.errors()
    assert (only["msg"], only["input"]) == ("Input should be a valid number", [1])


def test_secret_from_file_relative_to_config(tmp_path: Path) -> None:
    """{file: PATH} reads the file next to the config, without its trailing newline."""
    (tmp_path / "token").write_text("  sésame\n", encoding="utf-8")
    model = Model.model_validate({"token": {"file": "token"}}, context={"base_dir": str(tmp_path)})
    assert model.token is not None
    assert model.token.get_secret_value() == "sésame"


def test_secret_file_without_context_is_relative_to_cwd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without a config directory, a secret file is looked up from the working directory."""
    (tmp_path / "token").write_text("abc", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    model = Model.model_validate({"token": {"file": "token"}})
    assert model.token is not None
    assert model.token.get_secret_value() == "abc"


def test_secret_as_plain_string() -> None:
    """A plain string is the secret itself, hidden when printed."""
    model = Model.model_validate({"token": "s3cret"})
    assert model.token is not None
    assert model.token.get_secret_value() == "s3cret"
    assert "s3cret" not in repr(model)


@pytest.mark.parametrize(
    "written",
    [{"file": 3}, {"file": "token", "mode": "r"}, {"path": "token"}, {}],
    ids=["path-not-text", "extra-key", "wrong-key", "empty"],
)
def test_secret_shape_is_checked(written: dict[str, Any], tmp_path: Path) -> None:
    """Only {file: PATH} with a text path is a secret reference."""
    (tmp_path / "token").write_text("abc", encoding="utf-8")
    message = error({"token": written}, context={"base_dir": str(tmp_path)})
    assert message == "Value error, a secret is a string or {file: PATH}"


def test_missing_secret_file_is_named(tmp_path: Path) -> None:
    """An unreadable secret file is reported with its path and the system's reason."""
    message = error({"token": {"file": "nope"}}, context={"base_dir": str(tmp_path)})
    path = str(tmp_path / "nope")
    assert message == f"Value error, cannot read secret file {path!r}: No such file or directory"


def test_config_models_are_immutable() -> None:
    """A loaded config cannot be changed by the code that reads it."""
    model = Model()
    with pytest.raises(ValidationError, match="frozen"):
        model.timeout = 2.0  # type: ignore[misc]


def test_unknown_keys_are_errors() -> None:
    """A misspelt key is an error, not silently ignored."""
    assert error({"timout": 3}) == "Extra inputs are not permitted"
