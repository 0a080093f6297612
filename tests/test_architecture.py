"""The package's modules import each other without cycles.

Every ``import`` and ``from ... import`` in ``mlx/`` counts, at module level or inside
a function (a lazy import still makes the importing module depend on the imported
one). ``from mlx.a import b`` depends on the submodule ``mlx.a.b`` when there is one,
else on ``mlx.a``; importing a submodule does not count as depending on its parent
package, whose ``__init__`` is only a facade.
"""

from __future__ import annotations

import ast
from pathlib import Path

from helpers import REPO_ROOT

PACKAGE = REPO_ROOT / "mlx"


def _modules(package: Path) -> dict[str, tuple[Path, bool]]:
    """Dotted module name -> (file, is a package ``__init__``)."""
    found = {}
    for path in sorted(package.rglob("*.py")):
        parts = list(path.relative_to(package.parent).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        if is_package:
            parts.pop()
        found[".".join(parts)] = (path, is_package)
    return found


def import_graph(package: Path = PACKAGE) -> dict[str, dict[str, int]]:
    """Module -> {imported module: line of the first import}, over the package's own
    modules only."""
    modules = _modules(package)
    root = package.name

    def resolve(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, dict[str, int]] = {name: {} for name in modules}
    for name, (path, is_package) in modules.items():
        here = name if is_package else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parent = here.split(".")[: len(here.split(".")) - node.level + 1]
                    base = ".".join(parent + ([node.module] if node.module else []))
                targets = [
                    f"{base}.{alias.name}"
                    if f"{base}.{alias.name}" in modules
                    else base
                    for alias in node.names
                ]
            for target in targets:
                if target != root and not target.startswith(root + "."):
                    continue
                found = resolve(target)
                if found is not None and found != name:
                    graph[name].setdefault(found, node.lineno)
    return graph


def import_cycles(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in graph[node]:
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                other = stack.pop()
                on_stack.discard(other)
                component.append(other)
                if other == node:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for node in graph:
        if node not in index:
            visit(node)
    return components


def _describe(graph: dict[str, dict[str, int]], component: list[str]) -> str:
    files = {
        name: path.relative_to(REPO_ROOT)
        for name, (path, _) in _modules(PACKAGE).items()
    }
    edges = [
        f"  {a} -> {b} ({files[a]} line {line})"
        for a in component
        for b, line in sorted(graph[a].items())
        if b in component
    ]
    return "import cycle among " + ", ".join(component) + ":\n" + "\n".join(edges)


def test_the_package_has_no_import_cycles() -> None:
    graph = import_graph()
    cycles = import_cycles(graph)
    assert not cycles, "\n".join(_describe(graph, c) for c in cycles)


def test_the_analysis_sees_function_level_and_relative_imports(tmp_path: Path) -> None:
    # a package whose only cycle runs through an import inside a function
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "low.py").write_text("def f():\n    from pkg.sub import high\n")
    (package / "sub" / "__init__.py").write_text("")
    (package / "sub" / "high.py").write_text("from .. import low\n")
    (package / "alone.py").write_text("import pkg.low\n")
    graph = import_graph(package)
    assert graph["pkg.low"] == {"pkg.sub.high": 2}
    assert graph["pkg.sub.high"] == {"pkg.low": 1}
    assert import_cycles(graph) == [["pkg.low", "pkg.sub.high"]]


def test_the_layers_point_one_way() -> None:
    # lower layers never import higher ones, lazily or not: the floors of
    # docs/development.md, config at the bottom (it asks nothing of the data or the
    # models: "can this run here?" is the plan's question, mlx.experiment.checks)
    layers = [
        ("mlx.config",),
        ("mlx.datasets",),
        ("mlx.models", "mlx.numerics"),
        ("mlx.runs",),
        ("mlx.experiment",),
        ("mlx.outputs",),
        ("mlx.sweeps",),
        ("mlx.cli",),
    ]
    rank = {prefix: i for i, group in enumerate(layers) for prefix in group}

    def layer(module: str) -> int | None:
        for prefix, i in rank.items():
            if module == prefix or module.startswith(prefix + "."):
                return i
        return None

    def points_up(a: str, b: str) -> bool:
        low, high = layer(a), layer(b)
        return low is not None and high is not None and high > low

    graph = import_graph()
    upward = [
        f"{a} -> {b} (line {line})"
        for a, targets in graph.items()
        for b, line in targets.items()
        if points_up(a, b)
    ]
    assert not upward, "\n".join(upward)
