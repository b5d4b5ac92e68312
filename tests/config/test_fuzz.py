"""Whatever is in the files, loading ends in a Config or a ConfigError, never a traceback."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent.config.loader import ConfigError, load_config
from agent.runtime.registries import REGISTRIES

KEYS = [
    "name",
    "url",
    "kind",
    "interval",
    "timeout",
    "cron",
    "auth",
    "bearer",
    "basic",
    "tls",
    "ca_file",
    "labels",
    "steps",
    "send",
    "expect",
    "checks",
    "defaults",
    "receivers",
    "type",
    "alerting",
    "agent",
    "check_files",
    "pings",
    "headers",
    "file",
]
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True),
    st.sampled_from(["ws://h/", "wss://127.0.0.1:1/x", "30s", "${HOME}", "${", "*/5 * * * *"]),
    st.text(max_size=20),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.one_of(st.sampled_from(KEYS), st.text(max_size=8)), inner, max_size=5),
    ),
    max_leaves=30,
)
YAMLISH = st.text(
    alphabet=st.sampled_from(list("abc:-[]{}&*!|>'\"#%@`,?\n  \t$0123456789.")), max_size=200
)

_SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _load(agent: str, check_file: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "checks").mkdir()
        (root / "wsprobe.yaml").write_text(agent, encoding="utf-8")
        (root / "checks" / "a.yaml").write_text(check_file, encoding="utf-8")
        issues: list[str] = []
        try:
            load_config(root / "wsprobe.yaml", registries=REGISTRIES)
        except ConfigError as exc:
            issues = [str(issue) for issue in exc.issues]
            assert issues, "a ConfigError always carries issues"
        assert all(issues)


@_SETTINGS
@given(YAMLISH, YAMLISH)
def test_random_text_never_raises_anything_but_config_error(agent: str, checks: str) -> None:
    """Random YAML-ish text in both files gives a Config or a ConfigError."""
    _load(agent, checks)


@_SETTINGS
@given(values, values)
def test_random_structures_never_raise_anything_but_config_error(agent: Any, checks: Any) -> None:
    """Random well-formed YAML trees with config-like keys give a Config or a ConfigError."""
    _load(yaml.safe_dump(agent), yaml.safe_dump({"checks": [checks]}))


BOMB = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 9)}]\n" for i in range(8)
)


@pytest.mark.parametrize(
    "text",
    ["agent: &r [*r]\n", BOMB, "[" * 1500 + "]" * 1500],
    ids=["self-alias", "billion-laughs", "deep-nesting"],
)
def test_alias_bomb_recursion_and_deep_nesting_are_errors(tmp_path: Path, text: str) -> None:
    """A self-referencing alias, a billion-laughs document and deep nesting are reported."""
    (tmp_path / "wsprobe.yaml").write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "wsprobe.yaml", registries=REGISTRIES)
    assert info.value.issues
