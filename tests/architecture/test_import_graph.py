"""The package's shape, checked from its source: no import cycle, layers point one way.

The graph is read with ``ast`` from every module of ``django_aistemsplitter``,
counting imports inside functions and under ``TYPE_CHECKING`` too (a cycle that
only shows at run time or only to the type checker is still a cycle for the
next maintainer). ``from package import name`` counts as importing the module
``package.name`` when that is a module, else the package itself.
"""

from __future__ import annotations

import ast
import re
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2] / "django_aistemsplitter"
PACKAGE = "django_aistemsplitter"
DJANGO_IMPORT = re.compile(r"^\s*(?:from|import)\s+(?:django|rest_framework)\b(?!_)", re.MULTILINE)


def _modules() -> dict[str, Path]:
    found = {}
    for path in ROOT.rglob("*.py"):
        parts = [PACKAGE, *path.relative_to(ROOT).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


MODULES = _modules()


def _resolve(name: str) -> str | None:
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _imports(module: str, path: Path) -> Iterable[tuple[str, int, bool]]:
    """(imported module, line, inside a function) for each package import of ``module``."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    in_function: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            in_function.update(id(child) for child in ast.walk(node) if child is not node)
    for node in ast.walk(tree):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            targets = [
                f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base
                for alias in node.names
            ]
        for target in targets:
            if target == PACKAGE or target.startswith(PACKAGE + "."):
                resolved = _resolve(target)
                if resolved and resolved != module:
                    yield resolved, node.lineno, id(node) in in_function


def _graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = defaultdict(set)
    for module, path in MODULES.items():
        for target, _line, _lazy in _imports(module, path):
            graph[module].add(target)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = [0]

    def visit(node: str) -> None:
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(set(graph) | {n for targets in graph.values() for n in targets}):
        if node not in index:
            visit(node)
    return found


def test_the_checker_sees_a_cycle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_the_graph_covers_the_package() -> None:
    graph = _graph()
    assert len(MODULES) > 50
    assert f"{PACKAGE}.models" in graph[f"{PACKAGE}.services"]


def test_no_import_cycle() -> None:
    cycles = _cycles(_graph())
    assert cycles == [], "import cycles (function-level imports included):\n" + "\n".join(
        " <-> ".join(cycle) for cycle in cycles
    )


#: Modules below the entry points: they must not import an entry point or the
#: Celery adapter (which call *them*).
LOWER_LAYERS = (
    "backends",
    "conf",
    "contract",
    "deliveries",
    "destinations",
    "dispatch",
    "exceptions",
    "ingest",
    "jobs",
    "jsonvalues",
    "models",
    "pricing",
    "registry",
    "services",
    "steps",
    "storage",
    "tickets",
    "validation",
    "workdirs",
)
ENTRY_POINTS_AND_ADAPTERS = (
    "admin",
    "api",
    "autosplit",
    "backends.hosted.webhook",
    "forms",
    "management",
    "tasks",
    "upload_view",
    "urls",
)


def _under(module: str, prefixes: Iterable[str]) -> bool:
    return any(
        module == f"{PACKAGE}.{prefix}" or module.startswith(f"{PACKAGE}.{prefix}.")
        for prefix in prefixes
    )


def test_layers_point_one_way() -> None:
    wrong = []
    for module, path in MODULES.items():
        if not _under(module, LOWER_LAYERS) or _under(module, ENTRY_POINTS_AND_ADAPTERS):
            continue
        for target, line, _lazy in _imports(module, path):
            if _under(target, ENTRY_POINTS_AND_ADAPTERS):
                wrong.append(f"{path.relative_to(ROOT.parent)}:{line} imports {target}")
    assert wrong == []


#: Where importing a package module inside a function is the design, not a
#: workaround: the root stays import-light for the Django-free client, and
#: AppConfig.ready() wires the app once the registry is ready.
LAZY_ALLOWED = {f"{PACKAGE}": "__getattr__", f"{PACKAGE}.apps": "ready"}


def test_no_lazy_imports_of_the_package_itself() -> None:
    lazy = []
    for module, path in MODULES.items():
        if module in LAZY_ALLOWED:
            continue
        for target, line, inside in _imports(module, path):
            if inside:
                lazy.append(f"{path.relative_to(ROOT.parent)}:{line} imports {target}")
    assert lazy == [], "lazy imports are for optional heavy dependencies only"


@pytest.mark.parametrize("module", [f"{PACKAGE}.client", f"{PACKAGE}.contract"])
def test_django_free_modules_import_nothing_django_bound(module: str) -> None:
    """The client (and what it uses) must not reach a module that needs Django.

    The root package's lazy ``__getattr__`` (``split``, ``register``) only runs
    when those names are asked for, so its edges are left out here.
    """
    graph = _graph()
    graph[PACKAGE] = {t for t, _line, lazy in _imports(PACKAGE, MODULES[PACKAGE]) if not lazy}
    seen, todo = set(), [module]
    while todo:
        current = todo.pop()
        if current in seen:
            continue
        seen.add(current)
        todo.extend(graph.get(current, ()))
    django_bound = [
        name for name in sorted(seen) if DJANGO_IMPORT.search(MODULES[name].read_text())
    ]
    assert django_bound == []
