"""Imports flow one way: no module, and no package, imports one that imports it back.

Every module of ``stereo_snn`` and ``classification`` is parsed with ``ast`` (imports inside
functions count; those under ``if TYPE_CHECKING:`` name types only, never run, and do not); the graph is built on modules and, separately,
on packages (``stereo_snn.stereo`` stands for all its modules).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TOP = ("stereo_snn", "classification")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for top in TOP for p in sorted((ROOT / top).rglob("*.py"))}


def _is_package(name: str, modules: dict[str, Path]) -> bool:
    return modules[name].name == "__init__.py"


def _resolve(name: str, modules: dict[str, Path]) -> str | None:
    """The longest project module that ``name`` (a dotted import target) names or lies in."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def _runtime_nodes(path: Path) -> list[ast.AST]:
    """Every node of the module at ``path`` except the bodies of ``if TYPE_CHECKING:`` blocks."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip.update(id(n) for child in node.body for n in ast.walk(child))
    return [n for n in ast.walk(tree) if id(n) not in skip]


def imports_of(name: str, modules: dict[str, Path]) -> set[str]:
    """Project modules that module ``name`` imports anywhere at run time."""
    package = name if _is_package(name, modules) else name.rpartition(".")[0]
    found: set[str] = set()
    for node in _runtime_nodes(modules[name]):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                prefix = ".".join(base + ([node.module] if node.module else []))
            else:
                prefix = node.module or ""
            targets = [f"{prefix}.{a.name}" for a in node.names] + [prefix]
        for target in targets:
            mod = _resolve(target, modules)
            if mod is not None and mod != name:
                found.add(mod)
    return found


def external_imports_of(name: str, modules: dict[str, Path]) -> set[str]:
    """Top-level names of the non-project packages module ``name`` imports anywhere at run time."""
    found: set[str] = set()
    for node in _runtime_nodes(modules[name]):
        if isinstance(node, ast.Import):
            found.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            found.add(node.module.split(".")[0])
    return found - set(TOP)


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one member (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def _unit(name: str) -> str:
    """The unit of the package graph: the first-level part ``stereo_snn.X`` (a subpackage such
    as ``stereo_snn.stereo`` with everything under it, or a top-level module such as
    ``stereo_snn.viz``), likewise ``classification.X``."""
    return ".".join(name.split(".")[:2])


def module_graph() -> dict[str, set[str]]:
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for name in modules:
        # a module importing its own package's __init__ (or a parent's) is how Python loads it, not a dependency
        graph[name] = {m for m in imports_of(name, modules) if not name.startswith(m + ".")}
    return graph


def package_graph() -> dict[str, set[str]]:
    """First-level units as nodes (see :func:`_unit`): an edge when a module of one imports a module of another."""
    graph: dict[str, set[str]] = {}
    for name, targets in module_graph().items():
        for target in targets:
            if _unit(target) != _unit(name):
                graph.setdefault(_unit(name), set()).add(_unit(target))
    return graph


def test_the_parser_sees_imports_inside_functions_and_relative_ones(tmp_path):
    modules = _modules()
    assert "stereo_snn.stereo.cli" in modules and "stereo_snn.viz" in modules
    # cli_visualize imports viz inside a function, relatively
    assert "stereo_snn.viz" in imports_of("stereo_snn.stereo.cli_visualize", modules)
    # typing-only imports are left out: scene names SimConfig for its hints only
    assert "stereo_snn.events.simulator.config" not in imports_of("stereo_snn.events.simulator.scene", modules)
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


@pytest.mark.parametrize("graph", ["modules", "packages"])
def test_no_module_or_package_imports_one_that_imports_it_back(graph):
    cycles = _cycles(module_graph() if graph == "modules" else package_graph())
    assert not cycles, "import cycles:\n" + "\n".join(" <-> ".join(c) for c in cycles)


def test_the_events_layer_never_imports_torch():
    modules = _modules()
    offenders = sorted(
        n
        for n in modules
        if (n == "stereo_snn.events" or n.startswith("stereo_snn.events."))
        and "torch" in external_imports_of(n, modules)
    )
    assert not offenders, f"stereo_snn.events must not import torch: {offenders}"
