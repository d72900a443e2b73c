"""The import graph: every module imports, app/ has no import cycle (lazy imports inside
functions count too), and app/ never imports worker/ (the worker is built on top of the app)."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("app", "worker")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {
    module_name(path): path
    for package in PACKAGES
    for path in sorted((ROOT / package).rglob("*.py"))
    if not path.name.startswith("__main__")
}


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imports_of(name: str) -> set[str]:
    """The app/worker modules `name` imports at run time, anywhere in its body."""
    tree = ast.parse(MODULES[name].read_text())
    is_package = MODULES[name].name == "__init__.py"
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = name if is_package else name.rpartition(".")[0]
                for _ in range(node.level - 1):
                    package = package.rpartition(".")[0]
                base = f"{package}.{base}".strip(".")
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return {module for module in found if module in MODULES and module != name}


GRAPH = {name: imports_of(name) for name in MODULES}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                connect(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
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
            connect(node)
    return found


def test_the_graph_sees_imports_inside_functions() -> None:
    # The guard itself: a lazy import in a function body is an edge like any other.
    assert "app.main" in GRAPH["app.cli.serve"]  # `serve` imports create_app inside the function
    assert "app.restorations.task" in GRAPH["worker.tasks"]


def test_cycle_finder_finds_a_known_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c"]]


def test_no_import_cycle_in_app_or_worker() -> None:
    assert cycles(GRAPH) == []


def test_app_never_imports_worker() -> None:
    offenders = {
        name: sorted(m for m in imported if m.split(".")[0] == "worker")
        for name, imported in GRAPH.items()
        if name.split(".")[0] == "app"
    }
    assert {name: found for name, found in offenders.items() if found} == {}


# What worker/ may use of app/: settings, the restore bundle and task, the shared Celery
# configuration, and the errors it retries on.
WORKER_SEAMS = {
    "app.config",
    "app.errors",
    "app.lifecycle.retention",  # the beat task's sweep_configured
    "app.observability.logs",
    "app.observability.metrics",
    "app.restorations.celery_queue",
    "app.restorations.context",
    "app.restorations.task",
}


def test_worker_uses_app_only_through_its_seams() -> None:
    used = {m for name, imported in GRAPH.items() if name.startswith("worker") for m in imported}
    app_modules = {m for m in used if m.split(".")[0] == "app"}
    assert app_modules - WORKER_SEAMS == set()


FRAMEWORK_FREE = (
    "app.errors",
    "app.storage.local",
    "app.storage.s3",
    "app.restorations.celery_queue",
)


@pytest.mark.parametrize("name", FRAMEWORK_FREE)
def test_errors_storage_and_the_celery_publisher_do_not_import_fastapi(name: str) -> None:
    imported: set[str] = set()
    for node in ast.walk(ast.parse(MODULES[name].read_text())):
        if isinstance(node, ast.Import):
            imported.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module.split(".")[0])
    assert not imported & {"fastapi", "starlette"}


@pytest.mark.parametrize("name", sorted(MODULES))
def test_every_module_imports(name: str) -> None:
    assert importlib.import_module(name).__name__ == name
