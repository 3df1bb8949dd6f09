"""No import cycles inside the package.

The import graph is read from the source (the AST of every ``watersupply/**/*.py``),
not from ``sys.modules``: every ``import`` and ``from ... import`` counts, absolute
or relative, at module level or inside a function (a deferred import only hides
a cycle until the function runs). An edge points at the module named; importing a
name from a package points at the submodule when the name is one.
"""

from __future__ import annotations

import ast
from pathlib import Path

import networkx as nx
import pytest

import watersupply

PACKAGE_DIR = Path(watersupply.__file__).resolve().parent

#: Cycles tolerated for now, each as the set of modules of one strongly connected component.
#: Only ever shrinks: an entry that no longer matches a cycle fails the test, so it is removed.
EXEMPT: list[frozenset[str]] = []


def _module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE_DIR.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(PACKAGE_DIR.rglob("*.py")) if "__pycache__" not in p.parts}


def _resolve(name: str, known: set[str]) -> str | None:
    """The longest prefix of dotted `name` that is a module of the package."""
    parts = name.split(".")
    while parts:
        cand = ".".join(parts)
        if cand in known:
            return cand
        parts.pop()
    return None


def import_graph() -> nx.DiGraph:
    """Directed graph module -> imported module, over the package's own modules."""
    mods = _modules()
    known = set(mods)
    g = nx.DiGraph()
    g.add_nodes_from(known)
    for mod, path in mods.items():
        is_pkg = path.name == "__init__.py"
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        # imports under `if TYPE_CHECKING:` never run: annotations only, not a dependency at run time
        typing_only = {id(n) for block in ast.walk(tree)
                       if isinstance(block, ast.If) and "TYPE_CHECKING" in ast.unparse(block.test)
                       for stmt in block.body for n in ast.walk(stmt)}
        for node in ast.walk(tree):
            if id(node) in typing_only:
                continue
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = mod.split(".") if is_pkg else mod.split(".")[:-1]
                    base = base[: len(base) - (node.level - 1)] if node.level > 1 else base
                    prefix = ".".join(base + ([node.module] if node.module else []))
                else:
                    prefix = node.module or ""
                targets = [f"{prefix}.{a.name}" for a in node.names]  # a submodule, or a name in `prefix`
            for t in targets:
                dest = _resolve(t, known)
                if dest is not None and dest != mod:
                    g.add_edge(mod, dest)
    return g


def _cycles(g: nx.DiGraph) -> list[frozenset[str]]:
    return [frozenset(c) for c in nx.strongly_connected_components(g) if len(c) > 1]


def test_graph_sees_relative_absolute_and_deferred_imports():
    g = import_graph()
    assert g.has_edge("watersupply.io", "watersupply.schema")                 # module level, relative
    assert g.has_edge("watersupply.loader", "watersupply.convert")            # inside a function
    assert g.has_edge("watersupply.scenario.spec", "watersupply._resources")  # two dots up
    assert g.has_edge("watersupply.scenario", "watersupply.scenario.spec")    # a package's __init__
    assert len(g) >= 40


def test_finds_a_cycle_when_there_is_one():
    g = nx.DiGraph([("a", "b"), ("b", "c"), ("c", "a"), ("c", "d")])
    assert _cycles(g) == [frozenset({"a", "b", "c"})]


def test_no_import_cycles():
    g = import_graph()
    found = _cycles(g)
    unexpected = [c for c in found if c not in EXEMPT]
    if unexpected:
        lines = []
        for comp in unexpected:
            cycle = nx.find_cycle(g.subgraph(comp))
            lines.append(" -> ".join([a for a, _ in cycle] + [cycle[0][0]]))
        pytest.fail("import cycle(s) inside the package:\n  " + "\n  ".join(lines))
    stale = [sorted(c) for c in EXEMPT if c not in found]
    assert not stale, f"exempted cycle(s) no longer exist; remove them from EXEMPT: {stale}"
