"""Imports point one way between the packages under ``services/`` (design: schemas <- the shared
library <- each service <- the CLI), and the benchmarks stand on the project, not on its tests."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ROOT / "services"

#: package -> package it imports -> where (module: line), every import counted, a deferred one
#: inside a function as well: it makes the same cycle when it runs.
Graph = dict[str, dict[str, list[str]]]


def _imported(tree: ast.AST, module: str) -> list[tuple[str, int]]:
    """(imported module, line) of every import in a module's tree, relative ones resolved."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(a.name, node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = module.split(".")[: -node.level]
                base = ".".join([*parent, base] if base else parent)
            found.append((base, node.lineno))
            found += [(f"{base}.{a.name}", node.lineno) for a in node.names]
    return found


def _package(module: str) -> str | None:
    """The package under ``services`` a module belongs to (``services.node.store.db`` -> node)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "services" else None


def package_graph(root: Path = SERVICES) -> Graph:
    graph: Graph = defaultdict(lambda: defaultdict(list))
    packages = {p.name for p in root.iterdir() if (p / "__init__.py").exists()}
    for path in sorted(root.rglob("*.py")):
        module = ".".join(path.relative_to(root.parent).with_suffix("").parts)
        own = _package(module)
        tree = ast.parse(path.read_text(), str(path))
        for name, line in _imported(tree, module.removesuffix(".__init__")):
            other = _package(name)
            if own and other in packages and other != own:
                graph[own][other].append(f"{path.relative_to(root.parent)}:{line}")
    return graph


def cycles(graph: Graph) -> list[list[str]]:
    """Every elementary cycle's packages, once each (starting from its smallest name)."""
    found: set[tuple[str, ...]] = set()

    def walk(start: str, node: str, path: list[str]) -> None:
        for nxt in graph.get(node, {}):
            if nxt == start:
                found.add(tuple(path))
            elif nxt not in path and nxt > start:
                walk(start, nxt, [*path, nxt])

    for start in sorted(graph):
        walk(start, start, [start])
    return [list(c) for c in sorted(found)]


def _describe(graph: Graph, cycle: list[str]) -> str:
    steps = zip(cycle, [*cycle[1:], cycle[0]], strict=True)
    return " -> ".join(f"{a} ({graph[a][b][0]})" for a, b in steps) + f" -> {cycle[0]}"


def test_no_import_cycle_between_the_packages_under_services() -> None:
    graph = package_graph()
    found = cycles(graph)
    assert not found, "import cycles between packages:\n" + "\n".join(
        _describe(graph, c) for c in found
    )


def test_the_cycle_finder_finds_a_cycle_through_three_packages(tmp_path: Path) -> None:
    """The check above fails when it should: a made-up tree with a -> b -> c -> a."""
    root = tmp_path / "services"
    for name, imports in {"a": "services.b.x", "b": "services.c", "c": "services.a.y"}.items():
        (root / name).mkdir(parents=True)
        (root / name / "__init__.py").write_text("")
        (root / name / "x.py").write_text(f"def f() -> None:\n    import {imports}\n")
    (root / "a" / "y.py").write_text("")
    assert cycles(package_graph(root)) == [["a", "b", "c"]]


def test_benchmarks_import_nothing_from_the_tests() -> None:
    offending = [
        f"{path.relative_to(ROOT)}:{line} imports {name}"
        for path in sorted((ROOT / "bench").glob("*.py"))
        for name, line in _imported(ast.parse(path.read_text()), f"bench.{path.stem}")
        if name == "tests" or name.startswith("tests.")
    ]
    assert not offending, offending


#: What a front end reaches only through the application layer (services/node/application).
BEHIND_THE_APPLICATION_LAYER = (
    "services.node.store",
    "services.node.casework",
    "services.node.workflows",
    "services.core.envelope",
)


def front_end_imports_behind_the_layer(root: Path = SERVICES) -> list[str]:
    """Every import, in a module under ``services/cli``, of what lies behind the layer."""
    found = []
    for path in sorted((root / "cli").rglob("*.py")):
        module = ".".join(path.relative_to(root.parent).with_suffix("").parts)
        for name, line in _imported(ast.parse(path.read_text()), module):
            if any(name == b or name.startswith(f"{b}.") for b in BEHIND_THE_APPLICATION_LAYER):
                found.append(f"{path.relative_to(root.parent)}:{line} imports {name}")
    return found


def test_the_cli_reaches_the_node_only_through_the_application_layer() -> None:
    found = front_end_imports_behind_the_layer()
    assert not found, "\n".join(found)


def test_the_layer_check_finds_a_deferred_store_import(tmp_path: Path) -> None:
    """The check above fails when it should: a CLI module importing the store in a function."""
    cli = tmp_path / "services" / "cli"
    cli.mkdir(parents=True)
    (cli / "x.py").write_text("def f() -> None:\n    from services.node.store import Store\n")
    assert front_end_imports_behind_the_layer(tmp_path / "services") == [
        "services/cli/x.py:2 imports services.node.store",
        "services/cli/x.py:2 imports services.node.store.Store",
    ]


def test_no_import_cycle_between_the_cli_modules() -> None:
    """The CLI's modules import one another one way (issue found: casework_cmd <-> node_cmd)."""
    graph: dict[str, set[str]] = defaultdict(set)
    for path in sorted((SERVICES / "cli").glob("*.py")):
        module = f"services.cli.{path.stem}"
        for name, _ in _imported(ast.parse(path.read_text()), module):
            if name.startswith("services.cli.") and name.count(".") == 2:
                graph[path.stem].add(name.split(".")[2])
    found = cycles({a: {b: [""] for b in bs if b != a} for a, bs in graph.items()})
    assert not found, found
