"""The layers of netplanx, checked on its import graph (read with ast, so imports inside functions and
under TYPE_CHECKING count too): no cycle, and no import from a lower layer into a higher one.

Lowest first: the base (errors, addressing, files), the document layer, the system helpers, the engine, the
renderers, what features share, the features (each may import only the features the registry lists
before it), the registry, the spec layer, the workflow, the CLI, and the lab.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from netplanx.registry import FEATURES

PACKAGE = Path(__file__).resolve().parents[1] / "netplanx"
LAYERS = (
    ("netplanx", "netplanx.errors", "netplanx.addressing", "netplanx.files"),
    ("netplanx.document",),
    ("netplanx.system",),
    ("netplanx.engine",),
    ("netplanx.render",),
    ("netplanx.features", "netplanx.features.base", "netplanx.features.ebpf"),
    *((f"netplanx.features.{feature.name}",) for feature in FEATURES),
    ("netplanx.registry",),
    ("netplanx.spec",),
    ("netplanx.workflow",),
    ("netplanx.cli",),
    ("netplanx.lab", "netplanx.__main__"),
)
GENERATED = "netplanx.system.gobgp.api"  # gRPC stubs made at install time


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    found = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    return {name: path for name, path in found.items() if not name.startswith(GENERATED)}


def imports(path: Path, known: set[str]) -> set[str]:
    """The netplanx modules ``path`` imports (``from PACKAGE import MODULE`` counts as MODULE)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.startswith("netplanx")}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("netplanx"):
            for alias in node.names:
                child = f"{node.module}.{alias.name}"
                found.add(child if child in known else node.module)
    return found


def layer(module: str) -> int:
    """The index of the most specific layer prefix that covers ``module``."""
    best, depth = -1, -1
    for index, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            covers = module == prefix or (module.startswith(prefix + ".") and prefix != "netplanx")
            if covers and prefix.count(".") > depth:
                best, depth = index, prefix.count(".")
    return best


GRAPH = {name: imports(path, set(modules())) for name, path in modules().items()}


def test_every_module_has_a_layer() -> None:
    assert [m for m in GRAPH if layer(m) < 0] == []


def test_no_import_from_a_lower_layer_into_a_higher_one() -> None:
    upward = [f"{source} (layer {layer(source)}) imports {target} (layer {layer(target)})"
              for source, targets in GRAPH.items() for target in targets
              if target in GRAPH and layer(target) > layer(source)]
    assert upward == []


def test_the_import_graph_has_no_cycle() -> None:
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(node: str) -> None:  # Tarjan's strongly connected components
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in GRAPH.get(node, ()):
            if target not in GRAPH:
                continue
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1 or node in GRAPH[node]:
                cycles.append(sorted(component))

    for node in sorted(GRAPH):
        if node not in index:
            visit(node)
    assert cycles == []


@pytest.mark.parametrize("lower", ["netplanx.document", "netplanx.system", "netplanx.engine"])
def test_the_core_names_no_feature(lower: str) -> None:
    named = [(source, target) for source, targets in GRAPH.items() if source.startswith(lower)
             for target in targets if target.startswith(("netplanx.features", "netplanx.registry"))]
    assert named == []
