"""The Blender extension's structure, read from its source (no bpy): no import circles, no reaching into another
module's private names, and one place that tells an ARKit face from a FLAME head."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "i2fet_blender"


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path):
    """(imported module, names) for every import in the file, functions included, relative ones resolved."""
    package = _module_name(path) if path.name == "__init__.py" else _module_name(path).rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, []
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module
            names = [alias.name for alias in node.names]
            if node.module is None:  # `from . import a, b`: each name is a module
                for name in names:
                    yield f"{module}.{name}", []
            else:
                yield module, names


def import_graph() -> dict[str, set[str]]:
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    return {name: {m for m, _ in _imports(path) if m in modules and m != name} for name, path in modules.items()
            if name != "i2fet_blender"}  # the package's register() imports the classes it registers


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node):
        state[node] = 1
        stack.append(node)
        for dep in sorted(graph.get(node, ())):
            if state.get(dep) == 1:
                return stack[stack.index(dep):] + [dep]
            if dep not in state and (found := visit(dep)):
                return found
        state[node] = 2
        stack.pop()
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_the_cycle_finder_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


def test_no_import_circles_in_the_extension():
    graph = import_graph()
    assert {"i2fet_blender.targets", "i2fet_blender.writer", "i2fet_blender.flame_head"} <= set(graph)
    assert "i2fet_blender.shape_keys" in graph["i2fet_blender.writer"]  # the graph really sees relative imports
    assert find_cycle(graph) is None


def test_no_module_imports_private_names():
    for path in sorted(PACKAGE.rglob("*.py")):
        for module, names in _imports(path):
            private = [n for n in names if n.startswith("_")]
            assert not private, f"{path.name} imports {private} from {module}"


def test_only_targets_tells_arkit_faces_from_flame_heads():
    callers = sorted(path.name for path in PACKAGE.rglob("*.py") if path.name not in ("targets.py", "flame_head.py")
                     and "is_flame_head(" in path.read_text(encoding="utf-8"))
    assert callers == []
