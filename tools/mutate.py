"""Mutation testing of wsprobe's pure modules: one small AST change at a time.

Each mutant is one change to one module (a flipped comparison or boundary, a swapped
operator, a constant moved by one, a string or boolean changed, a statement deleted, a
``return`` of None); the module's own tests then run against it. A mutant the tests fail
on is *killed*; one they pass on *survived*: a behaviour no test would miss.

How it runs: this process imports pytest and the third-party libraries once, then forks
one child per mutant. The child serves the mutated source for the target module from
memory (a meta-path finder ahead of every other), runs ``pytest -x -q`` on the module's
tests and exits with pytest's code; an alarm kills a child that hangs (an infinite loop
is a killed mutant). Nothing is written to the source tree.

Mutants known to be *equivalent* (no test could tell them apart from the original) are
listed in ``tools/mutate-equivalent.txt``, each with its reason, and left out of the score.

Usage::

    python tools/mutate.py                 # every module, summary and survivors
    python tools/mutate.py liveness shard  # some modules
    python tools/mutate.py --list matchers # the mutants, without running anything
"""

from __future__ import annotations

import argparse
import ast
import copy
import dataclasses
import importlib.abc
import importlib.util
import json
import os
import select
import signal
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
EQUIVALENT_FILE = Path(__file__).resolve().with_name("mutate-equivalent.txt")

#: Module key -> (source file, the tests that exercise it). Keep the test lists narrow:
#: every mutant runs them.
MODULES: dict[str, tuple[str, tuple[str, ...]]] = {
    "state": (
        "agent/alerting/state.py",
        ("tests/alerting/test_state_events.py", "tests/alerting/test_state.py"),
    ),
    "backoff": (
        "agent/watch/backoff.py",
        ("tests/watch/test_backoff_limits.py", "tests/watch/test_backoff.py"),
    ),
    "liveness": (
        "agent/watch/liveness.py",
        ("tests/watch/test_liveness_rules.py", "tests/watch/test_liveness.py"),
    ),
    "types": (
        "agent/config/types.py",
        (
            "tests/config/test_types.py",
            "tests/config/test_durations.py",
            "tests/config/test_hostile.py",
            "tests/config/test_mistakes.py",
        ),
    ),
    "rules": ("agent/config/_rules.py", ("tests/config/test_rules.py",)),
    "matchers": (
        "agent/probes/script/matchers.py",
        ("tests/probes/script/test_predicates.py", "tests/probes/script/test_matchers.py"),
    ),
    "shard": (
        "agent/runtime/shard.py",
        (
            "tests/runtime/test_stable_hash.py::test_offset_fraction_is_pinned",
            "tests/runtime/test_shard_spec.py",
            "tests/runtime/test_shard.py::test_auto_shard_errors_say_what_to_set",
            "tests/runtime/test_shard.py::test_auto_shard_reads_the_ordinal",
            "tests/runtime/test_shard.py::test_shards_are_balanced_and_stable",
            "tests/runtime/test_shard.py::test_resize_moves_about_one_in_n_plus_one",
            "tests/runtime/test_shard.py::test_shrink_moves_only_the_removed_shards_checks",
            "tests/runtime/test_stable_hash.py",
            "tests/runtime/test_scheduler.py::test_parse_shard",
            "tests/runtime/test_scheduler.py::test_shards_partition_checks",
        ),
    ),
    "redact": ("agent/redact.py", ("tests/test_redact.py",)),
    "mapping": (
        "agent/probes/errors/mapping.py",
        ("tests/probes/errors/test_translation_table.py", "tests/probes/errors/test_mapping.py"),
    ),
}

#: Third-party modules imported once, before forking, so each mutant pays only for
#: collecting and running its tests.
#: pytest's warning that it cannot rewrite the asserts of these (plugins among them) is
#: silenced in the child: it is about the plugins' own asserts, not the tests'.
_PRELOAD = (
    "pytest",
    "pytest_asyncio",
    "pytest_timeout",
    "hypothesis",
    "pydantic",
    "yaml",
    "websockets",
    "websockets.asyncio.client",
    "websockets.asyncio.server",
    "httpx",
    "aiohttp",
    "aiohttp.web",
    "trustme",
)

#: wsprobe packages and test helpers preloaded for a module's run when they do not
#: import that module (see :func:`_in_worker`).
_AGENT_PRELOAD = (
    "agent.result",
    "agent.config",
    "agent.probes",
    "agent.notifiers",
    "agent.watch",
    "agent.alerting",
    "agent.storage",
    "agent.metrics",
    "agent.runtime",
    "agent.http",
    "agent.cli",
    "tests.servers",
    "tests.http_receiver",
)

#: anyio's pytest plugin (unused: the suite runs on pytest-asyncio) costs more to load
#: than most mutants' tests take to run.
_PYTEST_OPTIONS = ("-p", "no:cacheprovider", "-p", "no:anyio")

_NO_REWRITE_WARNING = "ignore::pytest.PytestAssertRewriteWarning"

_CMP_SWAPS: dict[type[ast.cmpop], tuple[type[ast.cmpop], ...]] = {
    ast.Lt: (ast.LtE, ast.GtE),
    ast.LtE: (ast.Lt, ast.Gt),
    ast.Gt: (ast.GtE, ast.LtE),
    ast.GtE: (ast.Gt, ast.Lt),
    ast.Eq: (ast.NotEq,),
    ast.NotEq: (ast.Eq,),
    ast.Is: (ast.IsNot,),
    ast.IsNot: (ast.Is,),
    ast.In: (ast.NotIn,),
    ast.NotIn: (ast.In,),
}
_BIN_SWAPS: dict[type[ast.operator], type[ast.operator]] = {
    ast.Add: ast.Sub,
    ast.Sub: ast.Add,
    ast.Mult: ast.Div,
    ast.Div: ast.Mult,
    ast.FloorDiv: ast.Div,
    ast.Mod: ast.FloorDiv,
    ast.Pow: ast.Mult,
    ast.LShift: ast.RShift,
    ast.RShift: ast.LShift,
}
_SYMBOLS = {
    ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">=", ast.Eq: "==", ast.NotEq: "!=",
    ast.Is: "is", ast.IsNot: "is not", ast.In: "in", ast.NotIn: "not in",
}  # fmt: skip
#: Statements whose deletion is worth a mutant (defs and imports only break the import).
_DELETABLE = (
    ast.Expr, ast.Assign, ast.AugAssign, ast.AnnAssign, ast.If, ast.For, ast.While,
    ast.Raise, ast.Try, ast.With, ast.Assert, ast.Return,
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Mutant:
    """One change: where (node index in ``ast.walk`` order), what, and its stable id."""

    node: int
    kind: str
    arg: Any
    line: int
    qualname: str
    change: str

    def ident(self, path: str) -> str:
        """The id used in the equivalent list: stable while the code around it moves."""
        return f"{path}::{self.qualname}: {self.change}"


def _short(node: ast.AST, limit: int = 90) -> str:
    text = ast.unparse(node).replace("\n", " ")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _is_docstring(stmt: ast.stmt) -> bool:
    return (
        isinstance(stmt, ast.Expr)
        and isinstance(stmt.value, ast.Constant)
        and isinstance(stmt.value.value, str)
    )


def _is_log_call(stmt: ast.stmt) -> bool:
    """``log.debug(...)`` and friends: what they print is not a tested behaviour."""
    if not isinstance(stmt, ast.Expr) or not isinstance(stmt.value, ast.Call):
        return False
    func = stmt.value.func
    return (
        isinstance(func, ast.Attribute)
        and isinstance(func.value, ast.Name)
        and func.value.id in {"log", "logger", "logging"}
    )


def _skipped_nodes(tree: ast.Module) -> set[int]:
    """ids of nodes never mutated.

    Docstrings, annotations, imports, ``__all__``, ``__slots__``, bare dataclass field
    declarations, type aliases and log calls: changing them changes no behaviour a test
    of the module could observe, or only breaks the import.
    """
    skip: set[int] = set()

    def drop(node: ast.AST | None) -> None:
        if node is not None:
            skip.update(id(n) for n in ast.walk(node))

    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and _is_docstring(body[0]):
            drop(body[0])
        if isinstance(node, ast.arg | ast.AnnAssign):
            drop(node.annotation)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            drop(node.returns)
        if isinstance(node, ast.Import | ast.ImportFrom):
            drop(node)
        if isinstance(node, ast.FormattedValue):
            drop(node.format_spec)
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id in {"__all__", "__slots__"} for t in node.targets
        ):
            drop(node)  # exports and memory layout, not behaviour
        if isinstance(node, ast.AnnAssign) and node.value is None:
            drop(node)  # a bare field declaration: deleting it only breaks construction
        if isinstance(node, ast.stmt) and _is_log_call(node):
            drop(node)
        if isinstance(node, ast.Call) and ast.unparse(node.func) in {"TypeVar", "Literal"}:
            drop(node)
        if isinstance(node, ast.Call) and ast.unparse(node.func) in {"cast", "typing.cast"}:
            drop(node.args[0] if node.args else None)  # the type, for the type checker
        if isinstance(node, ast.Subscript) and ast.unparse(node.value) == "Literal":
            drop(node)
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Subscript):
            # Type aliases such as ``Status = Literal[...]``: read by the type checker.
            drop(node)
    return skip


def _qualnames(tree: ast.Module) -> dict[int, str]:
    names: dict[int, str] = {}

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                name = f"{prefix}.{child.name}" if prefix else child.name
                names[id(child)] = name
                visit(child, name)
            else:
                names[id(child)] = prefix or "<module>"
                visit(child, prefix)

    visit(tree, "")
    return names


def _parents(tree: ast.Module) -> dict[int, tuple[ast.AST, str, int | None]]:
    """id(node) -> (parent, field name, index within that field's list or None)."""
    out: dict[int, tuple[ast.AST, str, int | None]] = {}
    for parent in ast.walk(tree):
        for field, value in ast.iter_fields(parent):
            if isinstance(value, list):
                for i, item in enumerate(value):
                    if isinstance(item, ast.AST):
                        out[id(item)] = (parent, field, i)
            elif isinstance(value, ast.AST):
                out[id(value)] = (parent, field, None)
    return out


def _constant_changes(value: Any) -> list[Any]:
    if isinstance(value, bool):
        return [not value]
    if isinstance(value, int | float):
        return [value + 1, value - 1]
    if isinstance(value, str):
        return ["XX" + value + "XX"] if value else ["XX"]
    if isinstance(value, bytes):
        return [b"XX" + value + b"XX"]
    return []


def _constant_change(
    node: ast.Constant, new: Any, parents: dict[int, tuple[ast.AST, str, int | None]]
) -> str:
    """The change shown in the expression around the constant, when that is short."""
    plain = f"{node.value!r} -> {new!r}"
    parent, field, index = parents[id(node)]
    if isinstance(parent, ast.arguments):
        return plain
    before = _short(parent, limit=1000)
    if len(before) > 90:
        return plain
    mutated = copy.deepcopy(parent)
    holder = getattr(mutated, field)
    target = holder[index] if index is not None else holder
    target.value = new
    return f"{before} -> {_short(mutated)}"


def _changes(
    node: ast.AST, parents: dict[int, tuple[ast.AST, str, int | None]]
) -> list[tuple[str, Any, str]]:
    """The mutations of one node: (kind, argument for :func:`apply_mutant`, description)."""
    out: list[tuple[str, Any, str]] = []
    if isinstance(node, ast.Compare):
        for i, op in enumerate(node.ops):
            for new in _CMP_SWAPS.get(type(op), ()):
                mutated = copy.deepcopy(node)
                mutated.ops[i] = new()
                out.append(("cmp", (i, new), f"{_short(node)} -> {_short(mutated)}"))
    elif isinstance(node, ast.BinOp | ast.AugAssign) and type(node.op) in _BIN_SWAPS:
        mutated = copy.deepcopy(node)
        mutated.op = _BIN_SWAPS[type(node.op)]()
        out.append(("binop", _BIN_SWAPS[type(node.op)], f"{_short(node)} -> {_short(mutated)}"))
    elif isinstance(node, ast.BoolOp):
        new_op = ast.Or if isinstance(node.op, ast.And) else ast.And
        mutated = copy.deepcopy(node)
        mutated.op = new_op()
        out.append(("boolop", new_op, f"{_short(node)} -> {_short(mutated)}"))
    elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not | ast.USub):
        out.append(("unary", None, f"{_short(node)} -> {_short(node.operand)}"))
    elif isinstance(node, ast.Constant):
        for new in _constant_changes(node.value):
            out.append(("const", new, _constant_change(node, new, parents)))
    if isinstance(node, ast.Return) and not (
        node.value is None or (isinstance(node.value, ast.Constant) and node.value.value is None)
    ):
        out.append(("return", None, f"{_short(node)} -> return None"))
    if isinstance(node, _DELETABLE) and not isinstance(node, ast.Return):
        first = _short(node).split(":")[0] if isinstance(node, ast.If) else _short(node)
        out.append(("delete", None, f"delete {first}"))
    return out


def enumerate_mutants(source: str) -> list[Mutant]:
    """Every mutant of ``source``, in a stable order."""
    tree = ast.parse(source)
    skip = _skipped_nodes(tree)
    qual = _qualnames(tree)
    parents = _parents(tree)
    out: list[Mutant] = []
    for index, node in enumerate(ast.walk(tree)):
        if id(node) in skip:
            continue
        line = getattr(node, "lineno", 0)
        where = qual.get(id(node), "<module>")
        for kind, arg, change in _changes(node, parents):
            out.append(Mutant(index, kind, arg, line, where, change))
    # The same change may occur twice in one function: number the repeats.
    seen: dict[tuple[str, str], int] = {}
    numbered: list[Mutant] = []
    for m in out:
        n = seen.get((m.qualname, m.change), 0) + 1
        seen[(m.qualname, m.change)] = n
        if n > 1:
            m = Mutant(m.node, m.kind, m.arg, m.line, m.qualname, f"{m.change} #{n}")
        numbered.append(m)
    return numbered


def apply_mutant(source: str, mutant: Mutant) -> str:
    """``source`` with ``mutant`` applied."""
    tree = ast.parse(source)
    nodes = list(ast.walk(tree))
    node = nodes[mutant.node]
    if mutant.kind == "cmp":
        i, new = mutant.arg
        node.ops[i] = new()
    elif mutant.kind in {"binop", "boolop"}:
        node.op = mutant.arg()
    elif mutant.kind == "const":
        node.value = mutant.arg
    elif mutant.kind == "return":
        node.value = None
    elif mutant.kind in {"unary", "delete"}:
        parent, field, index = _parents(tree)[id(node)]
        new_node: ast.AST = node.operand if mutant.kind == "unary" else ast.Pass()
        if index is None:
            setattr(parent, field, new_node)
        else:
            getattr(parent, field)[index] = new_node
    return ast.unparse(ast.fix_missing_locations(tree))


class _MutatedSource(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Serves one module's mutated source; every other import goes the usual way."""

    def __init__(self, fullname: str, path: Path, source: str) -> None:
        self.fullname, self.path, self.source = fullname, path, source

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        if fullname != self.fullname:
            return None
        return importlib.util.spec_from_loader(fullname, self, origin=str(self.path))

    def create_module(self, spec: Any) -> None:
        return None

    def exec_module(self, module: Any) -> None:
        module.__file__ = str(self.path)
        exec(compile(self.source, str(self.path), "exec"), module.__dict__)  # noqa: S102


def _run_tests(
    fullname: str, path: Path, source: str | None, tests: Sequence[str], *, timeout: float
) -> bool:
    """Run ``tests`` in a forked child against ``source``; True when they all pass."""
    pid = os.fork()
    if pid == 0:  # the child: never returns
        code = 3
        try:
            if not os.environ.get("MUTATE_VERBOSE"):
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, 1)
                os.dup2(devnull, 2)
            if source is not None:
                sys.meta_path.insert(0, _MutatedSource(fullname, path, source))
            import pytest

            code = pytest.main(["-x", "-q", *_PYTEST_OPTIONS, "-W", _NO_REWRITE_WARNING, *tests])
        except BaseException:
            import traceback

            traceback.print_exc()
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(int(code))
    # pytest-timeout owns SIGALRM in the child, so the deadline is kept from here.
    pidfd = os.pidfd_open(pid)
    try:
        ready, _, _ = select.select([pidfd], [], [], timeout)
    finally:
        os.close(pidfd)
    if not ready:  # a hang (an infinite loop, a wait that never ends): killed
        os.kill(pid, signal.SIGKILL)
    _, status = os.waitpid(pid, 0)
    return bool(ready) and os.waitstatus_to_exitcode(status) == 0


def _load_equivalent() -> dict[str, str]:
    out: dict[str, str] = {}
    if not EQUIVALENT_FILE.exists():
        return out
    for raw in EQUIVALENT_FILE.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        ident, _, reason = line.partition("  # ")
        out[ident.strip()] = reason.strip()
    return out


@dataclass(slots=True)
class Score:
    """The outcome for one module."""

    path: str
    total: int = 0
    killed: int = 0
    equivalent: int = 0
    survivors: int = 0

    @property
    def percent(self) -> float:
        scored = self.total - self.equivalent
        return 100.0 * self.killed / scored if scored else 100.0


def mutate_module(
    key: str, *, equivalent: dict[str, str], timeout_factor: float, only: str | None = None
) -> Score:
    """Run every mutant of one module against its tests."""
    rel, tests = MODULES[key]
    path = ROOT / rel
    fullname = rel.removesuffix(".py").replace("/", ".")
    source = path.read_text(encoding="utf-8")
    mutants = [m for m in enumerate_mutants(source) if only is None or only in m.ident(rel)]
    start = time.perf_counter()
    if not _run_tests(fullname, path, None, tests, timeout=300):
        sys.exit(f"{rel}: its tests fail without any mutation; fix them first")
    baseline = time.perf_counter() - start
    timeout = max(10.0, timeout_factor * baseline)
    score = Score(rel)
    unused = {i for i in equivalent if i.startswith(f"{rel}::")}
    print(f"{rel}: {len(mutants)} mutants, tests take {baseline:.1f} s", flush=True)
    for n, mutant in enumerate(mutants, 1):
        ident = mutant.ident(rel)
        score.total += 1
        if ident in equivalent:
            score.equivalent += 1
            unused.discard(ident)
            continue
        mutated = apply_mutant(source, mutant)
        # One test file (or test) at a time, focused ones first: most mutants die in the
        # first, which then is all that gets collected and run for them.
        if all(_run_tests(fullname, path, mutated, (t,), timeout=timeout) for t in tests):
            score.survivors += 1
            print(f"  survived  {rel}:{mutant.line}  {ident}", flush=True)
        else:
            score.killed += 1
        if n % 25 == 0:
            print(f"  ... {n}/{len(mutants)}", flush=True)
    for ident in sorted(unused):
        print(f"  note: listed as equivalent but no longer generated: {ident}", flush=True)
    print(
        f"{rel}: {score.killed} killed, {score.equivalent} equivalent,"
        f" {score.survivors} survived: {score.percent:.1f} %",
        flush=True,
    )
    return score


def _imports_target(candidate: str, fullname: str) -> bool:
    """Whether importing ``candidate`` imports ``fullname`` too (checked in a child)."""
    pid = os.fork()
    if pid == 0:
        code = 2
        try:
            importlib.import_module(candidate)
            code = 1 if fullname in sys.modules else 0
        except BaseException:  # a failed import is simply not preloaded
            code = 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status) != 0


def _in_worker(
    key: str, *, equivalent: dict[str, str], timeout_factor: float, only: str | None
) -> Score:
    """Mutate one module in a child process that preloads what its mutants cannot touch.

    wsprobe's own packages that do not import the target module (building pydantic
    models is the costly part of their import) are imported once in that child, so
    each mutant's process starts with them; the target module itself is never among
    them, so each mutant still imports its own mutated copy.
    """
    fullname = MODULES[key][0].removesuffix(".py").replace("/", ".")
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_fd)
        code = 3
        try:
            preloaded = [c for c in _AGENT_PRELOAD if not _imports_target(c, fullname)]
            for candidate in preloaded:
                importlib.import_module(candidate)
            print(f"{MODULES[key][0]}: preloaded {', '.join(preloaded) or 'nothing'}", flush=True)
            assert fullname not in sys.modules
            score = mutate_module(
                key, equivalent=equivalent, timeout_factor=timeout_factor, only=only
            )
            os.write(write_fd, json.dumps(dataclasses.asdict(score)).encode())
            code = 0
        finally:
            sys.stdout.flush()
            os._exit(code)
    os.close(write_fd)
    with os.fdopen(read_fd, "rb") as pipe:
        data = pipe.read()
    _, status = os.waitpid(pid, 0)
    if os.waitstatus_to_exitcode(status) != 0 or not data:
        sys.exit(f"{MODULES[key][0]}: the mutation run failed")
    return Score(**json.loads(data))


def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry point; exit status 1 when a module scores below ``--min-score``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("modules", nargs="*", help=f"default: all of {', '.join(MODULES)}")
    parser.add_argument("--list", action="store_true", help="print the mutants and stop")
    parser.add_argument("--only", metavar="TEXT", help="run only mutants whose id contains TEXT")
    parser.add_argument("--min-score", type=float, default=95.0)
    parser.add_argument("--timeout-factor", type=float, default=4.0)
    args = parser.parse_args(argv)
    keys = list(args.modules) or list(MODULES)
    unknown = sorted(set(keys) - set(MODULES))
    if unknown:
        parser.error(f"unknown module {', '.join(unknown)} (known: {', '.join(MODULES)})")
    if args.list:
        for key in keys:
            rel = MODULES[key][0]
            for m in enumerate_mutants((ROOT / rel).read_text(encoding="utf-8")):
                if args.only and args.only not in m.ident(rel):
                    continue
                print(f"{rel}:{m.line}  {m.ident(rel)}")
        return 0
    os.chdir(ROOT)
    sys.path.insert(0, str(ROOT))
    for name in _PRELOAD:
        importlib.import_module(name)
    from hypothesis import settings

    # No example database (a mutant's failing examples would be replayed by the real
    # suite), no deadline (a loaded machine must not kill mutants by slowness), and
    # fewer examples where a test does not set its own: the table tests do the aiming.
    settings.register_profile(
        "mutate", database=None, deadline=None, derandomize=True, max_examples=20
    )
    settings.load_profile("mutate")
    equivalent = _load_equivalent()
    scores = [
        _in_worker(key, equivalent=equivalent, timeout_factor=args.timeout_factor, only=args.only)
        for key in keys
    ]
    print("\nmodule                              mutants  killed  equivalent  survived  score")
    for s in scores:
        print(
            f"{s.path:<36}{s.total:>7}{s.killed:>8}{s.equivalent:>12}{s.survivors:>10}"
            f"{s.percent:>7.1f} %"
        )
    return 1 if any(s.percent < args.min_score for s in scores) else 0


if __name__ == "__main__":
    sys.exit(main())
