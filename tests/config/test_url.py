"""A check's url: the quick accept of simple URLs answers as urlsplit's checks do."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.config.models import _SIMPLE_WS_URL, CheckConfig, _checked_ws_url

_SETTINGS = settings(max_examples=500, deadline=None)

url_like = st.one_of(
    st.from_regex(_SIMPLE_WS_URL, fullmatch=True),
    st.builds(
        "".join,
        st.lists(
            st.sampled_from(
                [
                    *["ws", "wss", "WS", "http", "://", ":", "/", "//", "h", "1", "99999", "0"],
                    *["65535", "[", "]", "::1", "@", "u:p@", "?", "#", " ", "\t", "\n", "é", "."],
                    "٣",  # an Arabic-Indic digit: str.isdigit() but not a port
                ]
            ),
            max_size=10,
        ),
    ),
    st.text(max_size=30),
)


def outcome(check: Callable[[str], str], value: str) -> tuple[str, str]:
    try:
        return ("ok", check(value))
    except ValueError as exc:
        return ("error", str(exc))


@settings(max_examples=500, deadline=None)
@given(st.from_regex(_SIMPLE_WS_URL, fullmatch=True))
def test_every_url_the_pattern_accepts_passes_the_full_checks(value: str) -> None:
    """Whatever the pattern matches is a ws/wss URL with a host (the port range aside)."""
    match = _SIMPLE_WS_URL.fullmatch(value)
    assert match is not None
    if int(match.group(1) or 0) <= 65535:
        assert _checked_ws_url(value) == value
    else:
        with pytest.raises(ValueError, match="URL port is invalid"):
            _checked_ws_url(value)


@_SETTINGS
@given(url_like)
def test_validator_answers_as_the_full_checks(value: str) -> None:
    """Same value or same message, for simple URLs and anything else."""
    assert outcome(CheckConfig._ws_url, value) == outcome(_checked_ws_url, value)
