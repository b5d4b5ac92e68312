"""Shared config value types: durations with units, secrets from files, frozen models."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import pytest
from pydantic import ByteSize, ValidationError

from agent.config.types import (
    MAX_SECRET_FILE_BYTES,
    ByteCount,
    Duration,
    Frozen,
    HeaderName,
    HeaderValue,
    HttpSecretUrl,
    HttpUrl,
    Int,
    Number,
    Secret,
    SecretHeaderValue,
    has_surrogate,
)


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


class Typed(Frozen):
    """One field of each shared type, as the JSON Schema describes them."""

    timeout: Duration = 1.0
    token: Secret | None = None
    name: HeaderName = "X-Token"
    value: HeaderValue = "v"
    url: HttpUrl = "https://h.example/"
    secret_url: HttpSecretUrl | None = None


SCHEMA_CASES: list[tuple[str, dict[str, Any]]] = [
    ("duration-number", {"timeout": 2}),
    ("duration-text", {"timeout": "1m30s"}),
    ("duration-bad-text", {"timeout": "soon"}),
    ("duration-list", {"timeout": [1]}),
    ("secret-text", {"token": "abc"}),
    ("secret-file", {"token": {"file": "token"}}),
    ("secret-file-extra-key", {"token": {"file": "token", "mode": "r"}}),
    ("secret-file-missing-key", {"token": {"path": "token"}}),
    ("secret-file-empty", {"token": {}}),
    ("secret-file-not-text", {"token": {"file": 3}}),
    ("secret-number", {"token": 3}),
    ("header-name", {"name": "X-Api-Key"}),
    ("header-name-space", {"name": "X Api"}),
    ("header-value-newline", {"value": "a\r\nb"}),
    ("header-value", {"value": "Bearer x"}),
    ("url-https", {"url": "https://h.example/x"}),
    ("url-ftp", {"url": "ftp://h.example/"}),
    ("secret-url", {"secret_url": "http://h.example/hook"}),
    ("secret-url-file", {"secret_url": {"file": "token"}}),
]


@pytest.mark.parametrize("data", [c[1] for c in SCHEMA_CASES], ids=[c[0] for c in SCHEMA_CASES])
def test_schema_accepts_what_validation_accepts(data: dict[str, Any], tmp_path: Path) -> None:
    """Editors checking against the JSON Schema agree with the loader on each value."""
    (tmp_path / "token").write_text("https://h.example/t", encoding="utf-8")
    try:
        Typed.model_validate(data, context={"base_dir": str(tmp_path)})
        valid = True
    except ValidationError:
        valid = False
    errors = list(jsonschema.Draft202012Validator(Typed.model_json_schema()).iter_errors(data))
    assert (not errors) is valid, errors


class Shared(Frozen):
    """Fields of the numeric, header and URL types."""

    count: Int = 1
    ratio: Number = 1.0
    size: ByteCount = ByteSize(1)
    header: HeaderName = "X-Token"
    value: HeaderValue = "v"
    secret_value: SecretHeaderValue | None = None
    url: HttpUrl = "https://h.example/"


def shared_error(data: dict[str, Any]) -> str:
    """The one validation message ``data`` produces on :class:`Shared`."""
    with pytest.raises(ValidationError) as info:
        Shared.model_validate(data)
    (only,) = info.value.errors()
    return str(only["msg"])


@pytest.mark.parametrize("key", ["count", "ratio", "size"])
@pytest.mark.parametrize("flag", [True, False], ids=["true", "false"])
def test_numbers_refuse_booleans(key: str, flag: bool) -> None:
    """true/false where a number belongs is an error naming the boolean."""
    word = "true" if flag else "false"
    assert shared_error({key: flag}) == f"Value error, expected a number, not the boolean {word}"


def test_numbers_are_kept() -> None:
    """Numbers, and sizes with a unit, pass through."""
    model = Shared.model_validate({"count": 3, "ratio": 0.5, "size": "2KiB"})
    assert (model.count, model.ratio, model.size) == (3, 0.5, 2048)


def test_header_and_url_values_are_kept() -> None:
    """Valid header names, values and URLs (non-ASCII included) come through unchanged."""
    model = Shared.model_validate(
        {
            "header": "X-Api_Key.v2",
            "value": "Bearer X-é",
            "secret_value": "tok",
            "url": "https://h.example/é?x=1",
        }
    )
    assert (model.header, model.value, model.url) == (
        "X-Api_Key.v2",
        "Bearer X-é",
        "https://h.example/é?x=1",
    )
    assert model.secret_value is not None
    assert model.secret_value.get_secret_value() == "tok"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"header": "X Api"}, "header name 'X Api' is not a valid HTTP token"),
        ({"value": "a\rb"}, "header value contains a line break or NUL"),
        ({"value": "a\nb"}, "header value contains a line break or NUL"),
        ({"value": "a\0b"}, "header value contains a line break or NUL"),
        ({"secret_value": "a\nb"}, "header value contains a line break or NUL"),
        (
            {"url": "https://h.example/\udc80"},
            "URL holds a lone surrogate (\\udXXX), not a character",
        ),
        ({"url": "https://h.example:99999/"}, "must be an absolute http:// or https:// URL"),
        ({"url": "ftp://h.example/"}, "must be an absolute http:// or https:// URL (not ftp://)"),
        ({"url": "https:///path"}, "must be an absolute http:// or https:// URL"),
        ({"url": "http:///path"}, "must be an absolute http:// or https:// URL"),
        ({"url": "/path"}, "must be an absolute http:// or https:// URL"),
        ({"url": "git+ssh://h.example/"}, "must be an absolute http:// or https:// URL"),
    ],
    ids=[
        "name-with-space",
        "value-cr",
        "value-lf",
        "value-nul",
        "secret-value-lf",
        "url-surrogate",
        "url-bad-port",
        "url-other-scheme",
        "url-no-host",
        "url-http-no-host",
        "url-relative",
        "url-odd-scheme-not-echoed",
    ],
)
def test_header_and_url_mistakes(data: dict[str, Any], message: str) -> None:
    """Each header or URL mistake is refused with a message that never quotes a secret."""
    assert shared_error(data) == f"Value error, {message}"


@pytest.mark.parametrize(
    ("value", "valid"),
    [("https://h.example/hook", True), ("ftp://h.example/", False), ({"file": "url"}, True),
     ({"file": 3}, False), ({}, False), (3, False)],
    ids=["https", "ftp", "file", "file-not-text", "empty-object", "number"],
)  # fmt: skip
def test_schema_of_secret_url(value: Any, valid: bool) -> None:
    """Editors are offered an http(s) URL or {file: PATH} for a secret URL."""
    schema = Typed.model_json_schema()
    errors = list(jsonschema.Draft202012Validator(schema).iter_errors({"secret_url": value}))
    assert (not errors) is valid


def test_surrogates_are_found_only_in_non_ascii_text() -> None:
    """Only a lone surrogate counts; other non-ASCII text is fine."""
    assert (has_surrogate("abc"), has_surrogate("é"), has_surrogate("a\ud800")) == (
        False,
        False,
        True,
    )


@pytest.mark.parametrize(
    ("size", "readable"),
    [(MAX_SECRET_FILE_BYTES, True), (MAX_SECRET_FILE_BYTES + 1, False)],
    ids=["at-limit", "over-limit"],
)
def test_secret_file_size_limit(size: int, readable: bool, tmp_path: Path) -> None:
    """A secret file of up to 64 KiB is read; one byte more is refused, saying so."""
    (tmp_path / "token").write_bytes(b"k" * size)
    if readable:
        model = Model.model_validate(
            {"token": {"file": "token"}}, context={"base_dir": str(tmp_path)}
        )
        assert model.token is not None
        assert len(model.token.get_secret_value()) == 65536
    else:
        path = str(tmp_path / "token")
        message = error({"token": {"file": "token"}}, context={"base_dir": str(tmp_path)})
        assert message == f"Value error, secret file {path!r} is larger than 64 KiB: not a secret"


def test_secret_file_must_be_utf8(tmp_path: Path) -> None:
    """A secret file that is not UTF-8 text is refused, naming it."""
    (tmp_path / "token").write_bytes(b"\xff\xfe")
    path = str(tmp_path / "token")
    message = error({"token": {"file": "token"}}, context={"base_dir": str(tmp_path)})
    assert message == f"Value error, secret file {path!r} is not UTF-8 text"


def test_secret_directory_is_refused(tmp_path: Path) -> None:
    """A directory given as a secret file is refused before anything is read."""
    (tmp_path / "token").mkdir()
    path = str(tmp_path / "token")
    message = error({"token": {"file": "token"}}, context={"base_dir": str(tmp_path)})
    assert message == f"Value error, secret file {path!r} is not a regular file"
