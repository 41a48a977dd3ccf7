"""The hale_tf package has no import cycle, counting imports inside functions too.

A cycle held open by a late (function-level) import works only as long as nobody moves the import or
calls the function during module initialisation; issue 19 removed the registry <-> resolve <-> synthetic
circle in ``hale_tf.data`` by putting value types at the bottom (``hale_tf.data.types``). This test keeps it
that way for the whole package: it reads every module with ``ast`` (no import side effects), builds the
graph of imports between hale_tf modules, and fails naming a cycle if there is one.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "hale_tf"


def _module_names() -> dict[str, Path]:
    """Every module of the package by dotted name (a package is named by its ``__init__``)."""
    modules = {}
    for path in sorted((ROOT / PACKAGE).rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def _imported(module: str, path: Path, known: set[str]) -> set[str]:
    """The hale_tf modules that ``module`` imports anywhere in its body (top level or inside functions).

    ``from pkg import name`` counts as importing ``pkg.name`` when that is a module, else ``pkg`` itself.
    A module's parent packages are not counted: Python initialises them before the module, so an import
    of a sibling through them is not a cycle, whereas ``from hale_tf.data import x`` inside a module of
    ``hale_tf.data`` is (it needs the package's ``__init__``, which is still running).
    """
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative import: resolve against this module's package
                anchor = module.split(".")
                anchor = anchor[: len(anchor) - node.level + (1 if is_package else 0)]
                base = ".".join(anchor + ([base] if base else []))
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base for alias in node.names]
        else:
            continue
        found.update(t for t in targets if t in known and t != module)
    return found


def import_graph() -> dict[str, set[str]]:
    """``{module: modules it imports}`` over the hale_tf package."""
    modules = _module_names()
    return {name: _imported(name, path, set(modules)) for name, path in modules.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle as ``[a, b, ..., a]``, or ``None`` when the graph is acyclic (iterative depth-first search)."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = finished
    for start in sorted(graph):
        if state.get(start):
            continue
        path, stack = [start], [iter(sorted(graph[start]))]
        state[start] = 1
        while stack:
            nxt = next(stack[-1], None)
            if nxt is None:
                state[path.pop()] = 2
                stack.pop()
            elif state.get(nxt) == 1:
                return path[path.index(nxt) :] + [nxt]
            elif not state.get(nxt):
                state[nxt] = 1
                path.append(nxt)
                stack.append(iter(sorted(graph[nxt])))
    return None


def test_cycle_finder_finds_a_late_import_cycle(tmp_path: Path) -> None:
    # The finder itself must see a cycle made only of function-level imports (the kind issue 19 removed).
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    cycle = find_cycle(graph)
    assert cycle is not None and cycle[0] == cycle[-1] and set(cycle) == {"a", "b", "c"}
    assert find_cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None
    source = tmp_path / "late.py"
    source.write_text("def f():\n    from hale_tf.data import registry\n    import hale_tf.data.raw\n")
    known = {"hale_tf.data", "hale_tf.data.registry", "hale_tf.data.raw", "late"}
    assert _imported("late", source, known) == {"hale_tf.data.registry", "hale_tf.data.raw"}


def test_hale_tf_has_no_import_cycle() -> None:
    graph = import_graph()
    assert "hale_tf.data.registry" in graph["hale_tf.data.resolve"]  # the graph sees the package's imports
    cycle = find_cycle(graph)
    assert cycle is None, f"import cycle in hale_tf: {' -> '.join(cycle)}"


def test_data_types_are_at_the_bottom() -> None:
    # Value types import nothing of hale_tf except the error classes, so every other module can use them.
    assert import_graph()["hale_tf.data.types"] <= {"hale_tf.data.errors"}


@pytest.mark.parametrize("module", sorted(_module_names()))
def test_every_module_imports(module: str) -> None:
    importlib.import_module(module)
