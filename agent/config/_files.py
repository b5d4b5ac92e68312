"""Reading config files and expanding ``check_files`` patterns, both bounded.

A config names files; a mistaken name must end in an error, never in a load that reads
a device forever or walks the whole filesystem (``/**/*.yaml``). So a file is read up
to :data:`MAX_CONFIG_FILE_BYTES`, and a pattern is expanded by a walk that stops after
:data:`MAX_GLOB_DIRECTORIES` directories, :data:`MAX_GLOB_ENTRIES` entries or
:data:`MAX_GLOB_SECONDS`, whichever comes first.

Patterns follow :mod:`glob` (``*``, ``?``, ``[...]``, ``**`` for any depth; names
starting with a dot only match a pattern starting with a dot), and only files match.

Exceptions::

    FileTooLarge(ValueError)      a config file over the size cap
    PatternTooBroad(ValueError)   a pattern whose walk passed a bound
"""

from __future__ import annotations

import fnmatch
import glob
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

__all__ = [
    "MAX_CONFIG_FILE_BYTES",
    "MAX_GLOB_DIRECTORIES",
    "MAX_GLOB_ENTRIES",
    "MAX_GLOB_SECONDS",
    "FileTooLarge",
    "PatternTooBroad",
    "expand_pattern",
    "read_config_file",
]

#: 10,000 checks take about 3 MB of YAML; ten times that is still a config.
MAX_CONFIG_FILE_BYTES = 32 * 1024 * 1024
MAX_GLOB_DIRECTORIES = 10_000
MAX_GLOB_ENTRIES = 200_000
MAX_GLOB_SECONDS = 5.0


class FileTooLarge(ValueError):
    """A config file larger than the cap (or a device that never ends)."""

    def __init__(self, limit: int) -> None:
        super().__init__(limit)
        self.limit = limit

    def __str__(self) -> str:
        return f"larger than {self.limit // (1024 * 1024)} MiB: not a config file"


class PatternTooBroad(ValueError):
    """Expanding a pattern passed one of the walk's bounds."""

    def __init__(self, bound: str) -> None:
        super().__init__(bound)
        self.bound = bound

    def __str__(self) -> str:
        return (
            f"matching stopped after {self.bound}: name the directories that hold check"
            " files (e.g. conf.d/*.yaml) instead of searching"
        )


def read_config_file(path: Path, *, limit: int = MAX_CONFIG_FILE_BYTES) -> bytes:
    """The bytes of ``path``, read at most ``limit`` bytes far.

    Raises:
        OSError: the file cannot be opened or read.
        FileTooLarge: it holds more than ``limit`` bytes.
    """
    with open(path, "rb") as file:
        data = file.read(limit + 1)
    if len(data) > limit:
        raise FileTooLarge(limit)
    return data


class _Budget:
    def __init__(
        self,
        *,
        max_directories: int,
        max_entries: int,
        max_seconds: float,
        clock: Callable[[], float],
    ) -> None:
        self.max_directories = self.directories = max_directories
        self.max_entries = self.entries = max_entries
        self.max_seconds = max_seconds
        self.clock = clock
        self.deadline = clock() + max_seconds

    def scandir(self, directory: str) -> list[os.DirEntry[str]]:
        self.directories -= 1
        if self.directories < 0:
            raise PatternTooBroad(f"{self.max_directories:,} directories")
        if self.clock() > self.deadline:
            raise PatternTooBroad(f"{self.max_seconds:g} s")
        try:
            with os.scandir(directory) as it:
                entries = []
                for entry in it:
                    self.entries -= 1
                    if self.entries < 0:
                        raise PatternTooBroad(f"{self.max_entries:,} directory entries")
                    entries.append(entry)
                return entries
        except OSError:  # unreadable or vanished: glob skips it too
            return []


def expand_pattern(
    base_dir: Path,
    pattern: str,
    *,
    max_directories: int = MAX_GLOB_DIRECTORIES,
    max_entries: int = MAX_GLOB_ENTRIES,
    max_seconds: float = MAX_GLOB_SECONDS,
    clock: Callable[[], float] = time.monotonic,
) -> list[Path]:
    """Files matching ``pattern`` (relative to ``base_dir``, ``~`` expanded), sorted.

    Raises:
        PatternTooBroad: the walk passed a bound before it could finish.
    """
    full = os.path.join(base_dir, os.path.expanduser(pattern))
    if not glob.has_magic(full):
        return [Path(full)] if os.path.isfile(full) else []
    parts = full.split(os.sep)
    fixed = 0
    while not glob.has_magic(parts[fixed]):
        fixed += 1
    root = os.sep.join(parts[:fixed]) or os.sep  # "" when the pattern is /*...
    budget = _Budget(
        max_directories=max_directories,
        max_entries=max_entries,
        max_seconds=max_seconds,
        clock=clock,
    )
    found = set(_match(root, parts[fixed:], budget, set()))
    return [Path(p) for p in sorted(found)]


def _hidden_ok(name: str, segment: str) -> bool:
    return not name.startswith(".") or segment.startswith(".")


def _match(
    directory: str, segments: list[str], budget: _Budget, active: set[tuple[int, int]]
) -> Iterator[str]:
    """Paths under ``directory`` matching ``segments`` (one path component each)."""
    segment, rest = segments[0], segments[1:]
    if not glob.has_magic(segment):
        path = os.path.join(directory, segment)
        if not rest:
            if os.path.isfile(path):
                yield path
        elif os.path.isdir(path):
            yield from _match(path, rest, budget, active)
        return
    if segment == "**":
        yield from _recursive(directory, rest, budget, active)
        return
    for entry in budget.scandir(directory):
        if not (_hidden_ok(entry.name, segment) and fnmatch.fnmatch(entry.name, segment)):
            continue
        if not rest:
            if _is_file(entry):
                yield entry.path
        elif _is_dir(entry):
            yield from _match(entry.path, rest, budget, active)


def _recursive(
    directory: str, rest: list[str], budget: _Budget, active: set[tuple[int, int]]
) -> Iterator[str]:
    """``**`` then ``rest``: zero or more non-hidden directories below ``directory``."""
    try:
        info = os.stat(directory)
    except OSError:
        return
    key = (info.st_dev, info.st_ino)
    if key in active:  # a symlink back up the tree
        return
    active.add(key)
    try:
        entries = budget.scandir(directory)
        last = rest[0] if len(rest) == 1 and rest[0] != "**" else None
        if last is not None:  # the common `**/*.yaml`: one scan serves both
            for entry in entries:
                matched = _hidden_ok(entry.name, last) and fnmatch.fnmatch(entry.name, last)
                if matched and _is_file(entry):
                    yield entry.path
        elif rest:
            yield from _match(directory, rest, budget, active)
        for entry in entries:
            if entry.name.startswith("."):
                continue
            if not rest and _is_file(entry):
                yield entry.path
            elif _is_dir(entry):
                yield from _recursive(entry.path, rest, budget, active)
    finally:
        active.discard(key)


def _is_file(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_file()
    except OSError:
        return False


def _is_dir(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_dir()
    except OSError:
        return False
