"""The import graph of ``agent/``: no cycle between modules, no import up the layers.

Every ``import`` and ``from ... import`` in ``agent/`` counts, wherever it is written:
at module level, inside a function, or under ``if TYPE_CHECKING:`` (a type-only import
still ties two modules together). The layers, lowest first; a package may import its
own modules and any package of a LOWER layer, never one of its own layer or above:

    0  agent (the version), agent.redact, agent.logs  helpers every layer may use
    1  agent.result                                   what a run measures: phases, reasons
    2  agent.config                                   YAML -> frozen, validated models
    3  agent.probes, agent.notifiers, agent.storage,  the capabilities, each on its own:
       agent.metrics, agent.demo                      probes never see notifiers or metrics
    4  agent.watch (sessions over probes),            compositions of one capability
       agent.alerting (state -> notifiers, storage)
    5  agent.http                                     endpoints over metrics and alerting
    6  agent.runtime                                  the daemon wires everything together
    7  agent.cli                                      commands
    8  agent.__main__                                 ``python -m agent``

Peers in one layer are independent: config validation gets the probe kinds and receiver
types from its caller (``agent.runtime.registries``), the daemon decides the GC policy,
and the API reads the checks and series it is handed rather than importing the runtime.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

AGENT = Path(__file__).resolve().parents[1] / "agent"

#: Top-level package (or module) -> its layer; see the module docstring.
LAYERS: dict[str, int] = {
    "agent": 0,
    "agent.redact": 0,
    "agent.logs": 0,
    "agent.result": 1,
    "agent.config": 2,
    "agent.probes": 3,
    "agent.notifiers": 3,
    "agent.storage": 3,
    "agent.metrics": 3,
    "agent.demo": 3,
    "agent.watch": 4,
    "agent.alerting": 4,
    "agent.http": 5,
    "agent.runtime": 6,
    "agent.cli": 7,
    "agent.__main__": 8,
}

#: (importing module, imported package or module) pairs allowed for now, each naming the
#: seam whose change removes it; delete an entry once its seam has landed.
KNOWN_EXCEPTIONS: frozenset[tuple[str, str]] = frozenset({})


def _modules() -> dict[str, Path]:
    """Every module of ``agent/`` by dotted name (a package by its ``__init__``)."""
    out: dict[str, Path] = {}
    for path in AGENT.rglob("*.py"):
        parts = list(path.relative_to(AGENT.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


MODULES = _modules()


def _known(name: str) -> str | None:
    """The module ``name`` is, or the closest package containing it."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _imports(module: str, path: Path) -> Iterator[str]:
    """The ``agent`` modules that ``module`` imports, by dotted name."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == "agent" or alias.name.startswith("agent."):
                    found = _known(alias.name)
                    if found:
                        yield found
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                source = ".".join([*base, *([node.module] if node.module else [])])
            else:
                source = node.module or ""
            if source != "agent" and not source.startswith("agent."):
                continue
            for alias in node.names:
                # `from agent.probes import probe` imports the module agent.probes.probe.
                submodule = f"{source}.{alias.name}"
                found = submodule if submodule in MODULES else _known(source)
                if found:
                    yield found


def _graph() -> dict[str, set[str]]:
    return {
        module: {target for target in _imports(module, path) if target != module}
        for module, path in MODULES.items()
    }


def _layer_of(module: str) -> tuple[str, int]:
    """The entry of :data:`LAYERS` ``module`` belongs to (the longest matching name).

    ``agent`` itself is the package's ``__init__`` only, not a catch-all for new packages.
    """
    for name in sorted(LAYERS, key=len, reverse=True):
        if module == name or (name != "agent" and module.startswith(name + ".")):
            return name, LAYERS[name]
    raise AssertionError(f"{module} is in no layer: add its package to LAYERS")


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_graph_is_read() -> None:
    """The parser sees the imports the layering rests on (guards against a blind test)."""
    graph = _graph()
    assert "agent.runtime.runner" in graph["agent.runtime.daemon"]
    assert "agent.config.models" in graph["agent.runtime.scheduler"]
    assert "agent.probes.probe" in graph["agent.probes"]  # `from agent.probes import probe`
    assert "agent.metrics.series" in graph["agent.http.api"]
    assert all(_layer_of(module) for module in graph)


def test_no_import_cycle() -> None:
    """No two modules of agent/ import each other, directly or through others."""
    assert _cycles(_graph()) == []


def test_no_import_up_the_layers() -> None:
    """No module imports a package of its own layer (other than its own) or of a higher one."""
    wrong = []
    for module, targets in sorted(_graph().items()):
        package, layer = _layer_of(module)
        for target in sorted(targets):
            other, other_layer = _layer_of(target)
            if other == package or other_layer < layer:
                continue
            if (module, target) not in KNOWN_EXCEPTIONS:
                wrong.append(f"{module} (layer {layer}) imports {target} (layer {other_layer})")
    assert wrong == []


def test_the_checks_catch_what_they_are_for() -> None:
    """A made-up upward import and a made-up cycle are both reported."""
    graph = _graph()
    graph["agent.config.loader"] = graph["agent.config.loader"] | {"agent.runtime.gc_policy"}
    graph["agent.metrics.watch"] = graph["agent.metrics.watch"] | {"agent.metrics.registry"}
    assert ["agent.metrics.registry", "agent.metrics.watch"] in _cycles(graph)
    _, low = _layer_of("agent.config.loader")
    _, high = _layer_of("agent.runtime.gc_policy")
    assert high > low
