"""Safe YAML parsing that remembers where every key was written.

PyYAML's ``safe_load`` throws line numbers away. Here the document is composed into
nodes (which carry marks), constructed with the same ``SafeLoader`` constructor that
``safe_load`` uses (so no tag can build arbitrary objects), and the nodes are walked to
map every key path to its 1-based line.

Most config files are plain: mappings with string keys, lists, and scalars, without an
alias, merge key or duplicate key. Those are built, and their lines mapped, in one walk
(:func:`_plain`) that gives what the constructor gives; any other document takes the
full way, so only plain ones are ever built by our own code.

Exceptions::

    YamlError(ValueError)      the text is not a YAML document we can use (syntax,
                               unsafe tag, non-UTF-8, nesting too deep)
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import yaml
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

__all__ = ["MAX_NODES", "LineMap", "Parsed", "YamlError", "parse_yaml"]

#: Key path (mapping keys and list indexes from the document root) -> 1-based line.
LineMap = dict[tuple[Any, ...], int]

#: Aliases can make a small document describe an enormous tree ("billion laughs"): the
#: line walk stops descending after this many values, and env expansion refuses more.
MAX_NODES = 200_000
_STR_TAG = "tag:yaml.org,2002:str"
_MAP_TAG = "tag:yaml.org,2002:map"
_SEQ_TAG = "tag:yaml.org,2002:seq"
_MERGE_TAG = "tag:yaml.org,2002:merge"
#: Only a ``\uD800``-style escape in a double-quoted scalar can put one in a value: the
#: file itself is strict UTF-8. Such a string cannot be encoded (URL, header, label).
_SURROGATE = re.compile("[\ud800-\udfff]")


class YamlError(ValueError):
    """The file is not usable YAML; ``line`` is 1-based when known."""

    def __init__(self, message: str, *, line: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.line = line

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True, slots=True)
class Parsed:
    """A parsed document, where each key was, and problems found on the way."""

    data: Any
    lines: LineMap
    #: (line, message) of duplicate keys: PyYAML silently keeps the last one.
    duplicates: tuple[tuple[int, str], ...] = ()
    #: No alias, merge key or duplicate key, only string keys, at most MAX_NODES values:
    #: ``data`` is a tree (no value is shared) and ``lines`` has an entry for every key.
    plain: bool = False
    #: Some string value holds a ``$`` (keys not included); always True unless plain.
    dollar: bool = True
    #: (line, message) of other values no config can use (a lone surrogate).
    problems: tuple[tuple[int, str], ...] = ()


def parse_yaml(text: str | bytes) -> Parsed:
    """Parse one YAML document safely, keeping the line of every key.

    Args:
        text: the file's content (bytes must be UTF-8).

    Returns:
        The constructed data (``None`` for an empty document) and its line map.

    Raises:
        YamlError: syntax errors, unsafe or unknown tags, several documents, bad encoding,
            nesting too deep to parse.
    """
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise YamlError(f"file is not UTF-8 text (byte {exc.start})") from None
    # libyaml's parser when built in: the pure-Python one is most of the time of loading
    # 10,000 checks (docs/bench-log.md); both compose the same nodes with the same marks.
    # On any error, parse again in pure Python: its messages are the documented ones.
    fast = getattr(yaml, "CSafeLoader", None)
    if fast is not None:
        try:
            return _parse(text, fast)
        except YamlError:
            pass
    return _parse(text, yaml.SafeLoader)


def _parse(text: str, loader_class: Any) -> Parsed:
    try:
        loader = loader_class(text)  # the reader checks every character here
    except yaml.reader.ReaderError as exc:
        raise _reader_error(text, exc) from None
    node: Node | None = None
    try:
        node = loader.get_single_node()
        if node is None:
            return Parsed(None, {})
        try:
            return _plain(node)
        except _NotPlain:
            pass
        # Duplicates are found before construction: constructing merges `<<` keys into
        # the node in place, which would look like duplicates afterwards.
        duplicates = tuple(_duplicates(node))
        problems = tuple(_surrogates(node))
        data = loader.construct_document(node)
    except yaml.reader.ReaderError as exc:
        raise _reader_error(text, exc) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "invalid YAML"
        if exc.context and exc.problem:
            problem = f"{exc.context}: {exc.problem}"
        raise YamlError(f"YAML syntax: {problem}", line=mark.line + 1 if mark else None) from None
    except yaml.YAMLError as exc:
        raise YamlError(f"YAML: {exc}") from None
    except RecursionError:
        raise YamlError("YAML is nested too deeply") from None
    except (AttributeError, IndexError, KeyError, TypeError, ValueError):
        # PyYAML's scalar constructors crash on some explicitly tagged values (`!!int ""`,
        # `!!bool maybe`, `!!timestamp x`) instead of raising a YAMLError.
        found = _unbuildable(node) if node is not None else None
        if found is None:
            raise  # not a value PyYAML cannot build: a bug to see, not a YAML problem
        line, tag = found
        shown = tag.replace("tag:yaml.org,2002:", "!!")
        raise YamlError(f"YAML syntax: value cannot be read as {shown}", line=line) from None
    finally:
        loader.dispose()
    lines: LineMap = {}
    try:
        _walk(node, (), lines, set(), [0])  # lines are mapped after construction, see above
    except RecursionError:  # libyaml composes any depth; the walk is where it overflows
        raise YamlError("YAML is nested too deeply") from None
    return Parsed(data, lines, duplicates, problems=problems)


def _reader_error(text: str, exc: yaml.reader.ReaderError) -> YamlError:
    """A character YAML does not allow (NUL, other control characters), at its line."""
    position = exc.position if isinstance(exc.position, int) else 0
    line = text.count("\n", 0, position) + 1
    column = position - (text.rfind("\n", 0, position) + 1) + 1
    code = exc.character if isinstance(exc.character, int) else 0
    return YamlError(
        f"YAML: character U+{code:04X} at column {column} is not allowed in YAML text",
        line=line,
    )


def _unbuildable(root: Node) -> tuple[int, str] | None:
    """Line and tag of the first scalar SafeConstructor crashes on (not its value: a secret?)."""
    found: list[tuple[int, str]] = []
    for node in _each_node(root):
        if isinstance(node, (MappingNode, SequenceNode)):
            continue
        try:
            SafeConstructor().construct_object(node, deep=True)
        except yaml.YAMLError:
            pass
        except Exception:  # whatever made the construction crash
            found.append((node.start_mark.line + 1, node.tag))
    return min(found) if found else None


def _each_node(root: Node) -> Iterator[Node]:
    """Every node under ``root`` once (an alias is the node it names), depth first."""
    seen: set[int] = set()
    stack = [root]
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        yield node
        if isinstance(node, MappingNode):
            stack.extend(part for pair in node.value for part in pair)
        elif isinstance(node, SequenceNode):
            stack.extend(node.value)


class _NotPlain(Exception):
    """The document needs PyYAML's constructor and the separate walks."""


def _plain(root: Node) -> Parsed:
    """Build a plain document (see :class:`Parsed`) and its line map in one walk.

    Gives what ``construct_document`` and :func:`_walk` give: a string-tagged scalar is
    its text, a map- or seq-tagged node a dict or list (PyYAML's ``construct_yaml_map``
    and ``construct_yaml_seq``), any other scalar is built by PyYAML's SafeConstructor.

    Raises:
        _NotPlain: an alias to a mapping or list (one node met twice), a merge key, a key
            that is not a string-tagged scalar, a duplicate key, another tag on a mapping
            or list, a scalar the constructor refuses, more than MAX_NODES values, or
            nesting too deep for this walk.
    """
    walk = _PlainWalk()
    try:
        data = walk.build(root, ())
    except (yaml.YAMLError, RecursionError):
        raise _NotPlain from None
    problems = tuple(dict.fromkeys(walk.problems))  # a scalar alias is met twice
    return Parsed(data, walk.lines, plain=True, dollar=walk.dollar, problems=problems)


class _PlainWalk:
    __slots__ = ("count", "dollar", "lines", "problems", "scalars", "seen", "texts")

    def __init__(self) -> None:
        self.lines: LineMap = {}
        self.seen: set[int] = set()
        self.count = 0
        self.dollar = False
        self.scalars = SafeConstructor()
        self.problems: list[tuple[int, str]] = []
        # Each distinct text once: a check file repeats its kinds, label names and
        # values for every check, and the loaded checks keep them.
        self.texts: dict[str, str] = {}

    def build(self, node: Node, path: tuple[Any, ...]) -> Any:
        self.count += 1
        if self.count > MAX_NODES:
            raise _NotPlain
        kind = type(node)
        tag = node.tag
        if kind is ScalarNode:
            if tag == _STR_TAG:
                text = node.value
                if "$" in text:
                    self.dollar = True
                if getattr(node, "style", None) == '"' and _SURROGATE.search(text):
                    self.problems.append(_surrogate_problem(node))
                return self.texts.setdefault(text, text)
            return self.scalars.construct_object(node, deep=True)
        if id(node) in self.seen:
            raise _NotPlain
        self.seen.add(id(node))
        lines = self.lines
        if kind is MappingNode and tag == _MAP_TAG:
            data: dict[Any, Any] = {}
            for key_node, value_node in node.value:
                if type(key_node) is not ScalarNode or key_node.tag != _STR_TAG:
                    raise _NotPlain
                key = self.texts.setdefault(key_node.value, key_node.value)
                if key_node.style == '"' and _SURROGATE.search(key):
                    self.problems.append(_surrogate_problem(key_node))
                if key in data:
                    raise _NotPlain
                child = (*path, key)
                lines[child] = key_node.start_mark.line + 1
                data[key] = self.build(value_node, child)
            return data
        if kind is SequenceNode and tag == _SEQ_TAG:
            items: list[Any] = []
            for index, item in enumerate(node.value):
                child = (*path, index)
                lines[child] = item.start_mark.line + 1
                items.append(self.build(item, child))
            return items
        raise _NotPlain


def _surrogate_problem(node: Node) -> tuple[int, str]:
    found = _SURROGATE.search(node.value)
    code = ord(found.group()) if found else 0
    return (
        node.start_mark.line + 1,
        f"\\u{code:04x} is half of a UTF-16 surrogate pair, not a character:"
        " write the character itself",
    )


def _surrogates(root: Node) -> list[tuple[int, str]]:
    return [
        _surrogate_problem(node)
        for node in _each_node(root)
        if isinstance(node, ScalarNode) and node.style == '"' and _SURROGATE.search(node.value)
    ]


def _key(node: Node) -> Any:
    """The Python value of a mapping key node (scalars only; others are unhashable)."""
    if isinstance(node, ScalarNode):
        if node.tag == _STR_TAG:
            return node.value  # what SafeConstructor.construct_yaml_str returns
        try:
            return SafeConstructor().construct_object(node, deep=True)
        except yaml.YAMLError:
            return node.value
    return None


def _duplicates(root: Node) -> list[tuple[int, str]]:
    found: list[tuple[int, str]] = []
    for node in _each_node(root):
        if not isinstance(node, MappingNode):
            continue
        first: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == _MERGE_TAG:
                continue
            key = _key(key_node)
            line = key_node.start_mark.line + 1
            try:
                if key in first:
                    found.append((line, f"duplicate key {key!r} (first at line {first[key]})"))
                else:
                    first[key] = line
            except TypeError:  # unhashable: the constructor reports it
                continue
    return found


def _walk(
    node: Node, path: tuple[Any, ...], lines: LineMap, active: set[int], budget: list[int]
) -> None:
    # `active` holds the nodes on the current path so a recursive alias ends the walk.
    budget[0] += 1
    if budget[0] > MAX_NODES or id(node) in active:
        return
    active.add(id(node))
    try:
        if isinstance(node, MappingNode):
            for key_node, value_node in node.value:
                key = _key(key_node)
                try:
                    child = (*path, key)
                    # A key written later wins, as it does in the constructed data.
                    lines[child] = key_node.start_mark.line + 1
                except TypeError:
                    continue
                _walk(value_node, child, lines, active, budget)
        elif isinstance(node, SequenceNode):
            for index, item in enumerate(node.value):
                child = (*path, index)
                lines[child] = item.start_mark.line + 1
                _walk(item, child, lines, active, budget)
    finally:
        active.discard(id(node))
