"""agent.config._yaml: the one-walk build of plain documents equals PyYAML's construction.

The oracle for data is ``yaml.safe_load``; for lines, a walk of the nodes composed by
PyYAML's pure-Python SafeLoader (libyaml is what parse_yaml uses first).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, SequenceNode

from agent.config._yaml import MAX_NODES, Parsed, YamlError, parse_yaml
from agent.config.loader import ConfigError, load_config
from agent.runtime.registries import REGISTRIES

_SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Keys the safe constructor does not read as strings, or that are YAML syntax.
TRICKY_KEYS = ["1", "true", "True", "null", "~", "", "<<", "=", "1.5", "2001-12-14", "0x1f", "a:b"]
keys = st.one_of(st.sampled_from(TRICKY_KEYS), st.text(max_size=6))
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False),
    st.sampled_from(["${HOME}", "$", "a$b", "30s", "ws://h:1/", "*", "&a", "!x", "- x", "#"]),
    st.text(max_size=12),
)
trees = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.one_of(keys, st.integers(0, 3), st.booleans()), inner, max_size=5),
    ),
    max_leaves=25,
)
dump_options = st.fixed_dictionaries(
    {
        "default_flow_style": st.sampled_from([False, True, None]),
        "default_style": st.sampled_from([None, '"', "'"]),
        "allow_unicode": st.booleans(),
        "width": st.sampled_from([20, 80]),
    }
)
# Fragments that make documents the one walk must leave to the constructor.
YAMLISH = st.lists(
    st.sampled_from(
        [
            *["a", "b", "1", "true", "~", ": ", ":", "-", " ", "\n", "\n  ", "[", "]", "{", "}"],
            *[",", "&x ", "*x", "<<: ", "!!str ", "!!int ", "!!map ", "!!set ", "? ", "'", '"'],
            *["$", "="],
        ]
    ),
    max_size=40,
).map("".join)


def constructed_key(node: Node) -> Any:
    """A key as PyYAML builds it; ``=`` (tagged "value", a string once in a mapping) as text."""
    if node.tag == "tag:yaml.org,2002:value":
        return node.value
    return SafeConstructor().construct_object(node, deep=True)


def reference_lines(text: str) -> dict[tuple[Any, ...], int]:
    """Key path -> line, walking PyYAML's pure-Python nodes (for alias-free documents)."""
    lines: dict[tuple[Any, ...], int] = {}

    def walk(node: Node, path: tuple[Any, ...]) -> None:
        if isinstance(node, MappingNode):
            for key_node, value_node in node.value:
                key = constructed_key(key_node)
                lines[(*path, key)] = key_node.start_mark.line + 1
                walk(value_node, (*path, key))
        elif isinstance(node, SequenceNode):
            for index, item in enumerate(node.value):
                lines[(*path, index)] = item.start_mark.line + 1
                walk(item, (*path, index))

    root = yaml.compose(text, Loader=yaml.SafeLoader)
    if root is not None:
        walk(root, ())
    return lines


def reference_duplicates(text: str) -> list[tuple[int, str]]:
    """(line, message) of every key repeated in its mapping (alias-free documents)."""
    found: list[tuple[int, str]] = []

    def walk(node: Node) -> None:
        if isinstance(node, MappingNode):
            first: dict[Any, int] = {}
            for key_node, value_node in node.value:
                key = constructed_key(key_node)
                line = key_node.start_mark.line + 1
                if key in first:
                    found.append((line, f"duplicate key {key!r} (first at line {first[key]})"))
                else:
                    first[key] = line
                walk(value_node)
        elif isinstance(node, SequenceNode):
            for item in node.value:
                walk(item)

    root = yaml.compose(text, Loader=yaml.SafeLoader)
    if root is not None:
        walk(root)
    return sorted(found)


def string_values(data: Any) -> list[str]:
    if isinstance(data, str):
        return [data]
    if isinstance(data, dict):
        return [s for value in data.values() for s in string_values(value)]
    if isinstance(data, list):
        return [s for item in data for s in string_values(item)]
    return []


def only_string_keys(data: Any) -> bool:
    if isinstance(data, dict):
        return all(isinstance(k, str) and only_string_keys(v) for k, v in data.items())
    if isinstance(data, list):
        return all(only_string_keys(item) for item in data)
    return True


def same(a: Any, b: Any) -> bool:
    """Equal, and of the same types all the way down (so 1 is not True, 1.0 is not 1)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(
            same(k, kb) and same(v, b[kb]) for (k, v), kb in zip(a.items(), b, strict=True)
        )
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) and math.isnan(a):
        return math.isnan(b)
    return bool(a == b)


def check_against_pyyaml(text: str) -> Parsed | None:
    """parse_yaml(text) against PyYAML; returns the parse (None when both refuse it)."""
    try:
        expected = yaml.safe_load(text)
    except yaml.YAMLError:
        with pytest.raises(YamlError):
            parse_yaml(text)
        return None
    except (AttributeError, IndexError, KeyError, TypeError, ValueError):  # e.g. !!int ""
        with pytest.raises(YamlError, match="value cannot be read as !!"):
            parse_yaml(text)
        return None
    parsed = parse_yaml(text)
    assert same(parsed.data, expected)
    if "*" not in text and "<<" not in text:  # nodes not shared, nor merged into others
        assert parsed.lines == reference_lines(text)
        assert sorted(parsed.duplicates) == reference_duplicates(text)
    if parsed.plain:
        assert parsed.lines == reference_lines(text)
        assert parsed.duplicates == ()
        assert only_string_keys(expected)
        assert parsed.dollar == any("$" in s for s in string_values(expected))
    return parsed


@_SETTINGS
@given(trees, dump_options)
def test_dumped_trees_parse_as_pyyaml_constructs_them(tree: Any, options: dict[str, Any]) -> None:
    """Any tree in any dump style: same data as safe_load, same lines as the node walk."""
    text = yaml.safe_dump(tree, **options)
    parsed = check_against_pyyaml(text)
    assert parsed is not None
    # A tree from the dumper has no alias, merge or duplicate: only non-string keys
    # (1, true, null written unquoted) and "<<" / "=" keys leave the one walk.
    if only_string_keys(tree) and "<<" not in text and "=" not in text:
        assert parsed.plain


@_SETTINGS
@given(YAMLISH)
@example("=: x\n=: y\nb: {'=': 1, =: 2}\n")
@example("a: &x {b: 1}\nc: *x\n")
@example("- &x [1]\n- *x\n- {<<: {a: 1}, a: 2}\n")
def test_random_text_parses_as_pyyaml_does(text: str) -> None:
    """Fragments with anchors, tags, merge keys and duplicates: data as safe_load gives."""
    check_against_pyyaml(text)


def test_keys_the_constructor_reads_as_numbers_booleans_and_null() -> None:
    """1:, true:, null: keys are 1, True and None; duplicates of them are reported."""
    text = "a:\n  2: two\n  '2': string two\n  true: yes\n  null: x\n"
    parsed = parse_yaml(text)
    assert same(parsed.data, yaml.safe_load(text))
    assert list(parsed.data["a"]) == [2, "2", True, None]
    assert parsed.lines == {("a",): 1, ("a", 2): 2, ("a", "2"): 3, ("a", True): 4, ("a", None): 5}
    assert not parsed.plain
    # 1 == True for a dict, so `true:` after `1:` is a duplicate (PyYAML keeps key 1).
    text = "b:\n  1: one\n  true: yes\n  True: again\n  null: x\n  ~: y\n  '~': z\n"
    parsed = parse_yaml(text)
    assert same(parsed.data, yaml.safe_load(text))
    assert parsed.duplicates == (
        (3, "duplicate key True (first at line 2)"),
        (4, "duplicate key True (first at line 2)"),
        (6, "duplicate key None (first at line 5)"),
    )


def test_duplicate_string_keys_are_reported_at_their_lines() -> None:
    """Duplicates deep in a list of checks are found (and leave the one walk)."""
    text = "checks:\n  - name: a\n    url: x\n    labels: {t: 1, t: 2}\n    url: y\n"
    parsed = parse_yaml(text)
    assert set(parsed.duplicates) == {
        (4, "duplicate key 't' (first at line 4)"),
        (5, "duplicate key 'url' (first at line 3)"),
    }
    assert parsed.data == yaml.safe_load(text)


def test_aliased_mappings_stay_shared_as_pyyaml_builds_them() -> None:
    """An alias to a mapping gives the same object twice, as the constructor does."""
    parsed = parse_yaml("a: &x {k: v}\nb: *x\n")
    assert parsed.data["a"] is parsed.data["b"]
    assert not parsed.plain


def test_plain_document_and_where_a_dollar_counts() -> None:
    """A ``$`` in a key is not a value to expand; one in a value is, escaped or not."""
    assert parse_yaml("$k: v\nl: [a, b]\n").plain
    assert not parse_yaml("$k: v\nl: [a, b]\n").dollar
    assert parse_yaml("k: [a, 'x$']\n").dollar
    assert parse_yaml('k: "\\x24{HOME}"\n').dollar


def test_escaped_reference_without_a_dollar_in_the_text_is_expanded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The skip of env expansion looks at values, not at the file's text."""
    monkeypatch.setenv("WSPROBE_TEST_TEAM", "core")
    (tmp_path / "wsprobe.yaml").write_text(
        'checks:\n  - name: a\n    url: ws://h/\n    labels: {team: "\\x24{WSPROBE_TEST_TEAM}"}\n',
        encoding="utf-8",
    )
    (check,) = load_config(tmp_path / "wsprobe.yaml", registries=REGISTRIES).checks
    assert check.labels == {"team": "core"}


def test_a_tree_larger_than_the_limit_is_still_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No alias, but more values than MAX_NODES: refused as before, not built in one walk."""
    monkeypatch.chdir(tmp_path)
    text = "checks: [" + ", ".join(["a"] * MAX_NODES) + "]\n"
    (tmp_path / "wsprobe.yaml").write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "wsprobe.yaml", registries=REGISTRIES)
    assert [str(i) for i in info.value.issues] == [
        "wsprobe.yaml:1: document too large once its aliases are expanded"
    ]


@pytest.mark.parametrize(
    ("value", "tag"),
    [('!!int ""', "!!int"), ("!!bool maybe", "!!bool"), ("!!timestamp x", "!!timestamp")],
)
def test_values_pyyaml_crashes_on_are_errors_at_their_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: str, tag: str
) -> None:
    """A tagged value PyYAML's constructor cannot build is a config error, not a traceback."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "wsprobe.yaml").write_text(
        f"checks:\n  - name: a\n    url: ws://h/\n    pings: {value}\n", encoding="utf-8"
    )
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "wsprobe.yaml", registries=REGISTRIES)
    assert [str(i) for i in info.value.issues] == [
        f"wsprobe.yaml:4: YAML syntax: value cannot be read as {tag}"
    ]
