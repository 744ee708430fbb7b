"""Layers that hold (DESIGN.md section 2): no import cycles, and no import pointing up a layer.

The import graph is read from the syntax trees of every module under ``replaykit/`` and
``storage_adapters/``: every ``import`` counts, also those inside functions and under
``if TYPE_CHECKING:`` (a cycle of type-only imports is still a cycle of knowledge). An import of
``a.b.c`` is an arrow to ``a.b.c`` only, not to the packages ``a`` and ``a.b`` whose
``__init__`` Python also runs. ``tests/core/test_purity.py`` checks the core's own rules.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("replaykit", "storage_adapters")

# Layers from the bottom up, each with the layers it may import (its own included). The face is
# ``replaykit/__init__.py``: re-exports of the core and the runtime, which programs may import.
LAYERS: dict[str, tuple[str, ...]] = {
    "core": ("core",),
    "storage": ("core", "storage"),
    "adapter factory": ("core", "storage", "adapters"),
    "adapters": ("core", "storage", "adapters", "adapter factory"),
    "testing": ("core", "testing"),
    "runtime": ("core", "storage", "runtime", "adapter factory"),
    "face": ("core", "storage", "runtime", "face"),
    "integrations": ("core", "storage", "testing", "runtime", "face", "integrations"),
}
PROGRAMS = ("replaykit.demo",)  # programs on the public API, in the integrations' layer

# Cycles known and owned by work in progress; each must go (the test says when one is gone).
KNOWN_CYCLES: list[list[str]] = []


def layer_of(module: str) -> str:
    """The layer of a module name."""
    if module == "storage_adapters":
        return "adapter factory"  # open_storage: what the runtime may use to open an adapter
    if module.startswith("storage_adapters."):
        return "adapters"
    if module == "replaykit":
        return "face"
    if module == "replaykit.storage":
        return "storage"
    if module in PROGRAMS:
        return "integrations"
    for part in ("core", "testing", "runtime", "integrations"):
        prefix = f"replaykit.{part}"
        if module == prefix or module.startswith(prefix + "."):
            return part
    raise AssertionError(f"{module}: which layer is it in? (add it to tests/test_layers.py)")


def modules(root: Path = ROOT) -> dict[str, Path]:
    """Every module of the packages, by dotted name."""
    found = {}
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def _package(module: str, path: Path) -> str:
    return module if path.name == "__init__.py" else module.rpartition(".")[0]


def _imported(tree: ast.AST, module: str, path: Path) -> Iterator[tuple[str, list[str]]]:
    """(base module, imported names) of every import statement."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, []
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = _package(module, path).split(".")
                parts = parts[: len(parts) - node.level + 1]
                base = ".".join([*parts, base] if base else parts)
            yield base, [alias.name for alias in node.names]


def import_graph(found: dict[str, Path]) -> dict[str, set[str]]:
    """Module -> the modules of the packages it imports."""
    graph: dict[str, set[str]] = {}
    for module, path in found.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        targets: set[str] = set()
        for base, names in _imported(tree, module, path):
            submodules = [f"{base}.{name}" for name in names if f"{base}.{name}" in found]
            if submodules:
                targets.update(submodules)
            if base in found and (not names or len(submodules) < len(names)):
                targets.add(base)
        targets.discard(module)
        graph[module] = targets
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
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


def upward_arrows(graph: dict[str, set[str]]) -> list[str]:
    """``a -> b`` for every import of a layer that ``a``'s layer may not import."""
    bad = []
    for module, targets in sorted(graph.items()):
        allowed = LAYERS[layer_of(module)]
        for target in sorted(targets):
            if layer_of(target) not in allowed:
                bad.append(f"{module} ({layer_of(module)}) -> {target} ({layer_of(target)})")
    return bad


def storage_reads(found: dict[str, Path], root: Path = ROOT) -> list[str]:
    """Places where an integration reaches into ``<something>.storage`` instead of App's API."""
    bad = []
    for module, path in found.items():
        if layer_of(module) != "integrations":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr == "storage":
                bad.append(f"{path.relative_to(root).as_posix()}:{node.lineno}: .storage")
    return bad


# -- the checks ---------------------------------------------------------------------------------


def test_there_is_no_import_cycle() -> None:
    found = cycles(import_graph(modules()))
    new = [c for c in found if c not in KNOWN_CYCLES]
    assert not new, "import cycles:\n" + "\n".join(" <-> ".join(c) for c in new)
    gone = [c for c in KNOWN_CYCLES if c not in found]
    assert not gone, f"no longer a cycle, remove it from KNOWN_CYCLES: {gone}"


def test_no_import_points_up_a_layer() -> None:
    bad = upward_arrows(import_graph(modules()))
    assert not bad, "imports against the layers (DESIGN.md section 2):\n" + "\n".join(bad)


def test_integrations_use_the_apps_public_api_not_its_storage() -> None:
    bad = storage_reads(modules())
    assert not bad, "integrations must use App's public queries:\n" + "\n".join(bad)


# -- the checker itself -------------------------------------------------------------------------


def _tree(tmp_path: Path, files: dict[str, str]) -> dict[str, Path]:
    for name, source in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(source, encoding="utf-8")
    return modules(tmp_path)


def test_the_checker_finds_cycles_also_through_type_only_and_local_imports(tmp_path: Path) -> None:
    found = _tree(
        tmp_path,
        {
            "replaykit/__init__.py": "",
            "replaykit/runtime/__init__.py": "",
            "replaykit/runtime/a.py": "from typing import TYPE_CHECKING\n"
            "if TYPE_CHECKING:\n    from .b import B\n",
            "replaykit/runtime/b.py": "def f():\n    from replaykit.runtime import a\n",
            "replaykit/runtime/c.py": "from . import a\n",
            "storage_adapters/__init__.py": "",
        },
    )
    graph = import_graph(found)
    assert graph["replaykit.runtime.c"] == {"replaykit.runtime.a"}
    assert cycles(graph) == [["replaykit.runtime.a", "replaykit.runtime.b"]]


def test_the_checker_finds_arrows_pointing_up(tmp_path: Path) -> None:
    found = _tree(
        tmp_path,
        {
            "replaykit/__init__.py": "from .runtime.app import App\n",
            "replaykit/storage.py": "from .core import x\n",
            "replaykit/core/__init__.py": "",
            "replaykit/core/x.py": "",
            "replaykit/runtime/__init__.py": "",
            "replaykit/runtime/app.py": "from ..integrations.http import h\n"
            "from storage_adapters import open_storage\n"
            "from storage_adapters.sqlite import adapter\n",
            "replaykit/integrations/__init__.py": "",
            "replaykit/integrations/http.py": "def h(app):\n    return app.storage\n",
            "storage_adapters/__init__.py": "",
            "storage_adapters/sqlite/__init__.py": "",
            "storage_adapters/sqlite/adapter.py": "from replaykit.runtime import app\n",
        },
    )
    assert upward_arrows(import_graph(found)) == [
        "replaykit.runtime.app (runtime) -> replaykit.integrations.http (integrations)",
        "replaykit.runtime.app (runtime) -> storage_adapters.sqlite.adapter (adapters)",
        "storage_adapters.sqlite.adapter (adapters) -> replaykit.runtime.app (runtime)",
    ]
    assert storage_reads(found, tmp_path) == ["replaykit/integrations/http.py:2: .storage"]
