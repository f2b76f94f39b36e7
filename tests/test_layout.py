"""The shape of the code (docs/architecture.md): which layer may import which, no import circles
between modules, no module reaching into another's `_private` names, and no long module without a
reason at its top.

Every import counts, including those inside functions: an import moved into a function to dodge a
circle is still a circle.
"""

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PRODUCT_FOLDERS = ("cli", "domain", "dsl", "schema", "storage", "workbench")
LONG_MODULE = 500
# What a layer must not import: dsl/ knows nothing of the database session or the API, domain/
# nothing of GraphQL, HTTP or the command line, storage/ nothing of the services above it (only
# domain's error and setting types), schema/ nothing of the command line, workbench/ (static files
# and their routes) nothing of the layers: the page talks to the public API only.
FORBIDDEN = {
    "dsl": ("segmenta.domain", "segmenta.storage", "segmenta.schema", "segmenta.cli", "segmenta.server", "sqlalchemy.ext.asyncio"),
    "domain": ("segmenta.schema", "segmenta.cli", "segmenta.server", "strawberry", "starlette"),
    "storage": ("segmenta.schema", "segmenta.cli", "segmenta.server", "strawberry", "starlette"),
    "schema": ("segmenta.cli",),
    "workbench": ("segmenta.domain", "segmenta.storage", "segmenta.schema", "segmenta.dsl", "segmenta.cli", "segmenta.server"),
}
STORAGE_MAY_USE = ("segmenta.domain.errors", "segmenta.domain.settings")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(["segmenta", *parts])


def _modules() -> dict[str, Path]:
    paths = [ROOT / "server.py"] + [path for folder in PRODUCT_FOLDERS for path in (ROOT / folder).rglob("*.py")]
    return {_module_name(path): path for path in paths if "migrations" not in path.parts}


MODULES = _modules()


def _resolve(importer: str, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    package = importer.split(".")
    if not MODULES[importer].name == "__init__.py":
        package = package[:-1]
    package = package[: len(package) - node.level + 1]
    return ".".join([*package, *([node.module] if node.module else [])])


def _imports(name: str) -> Iterator[tuple[int, str, list[str]]]:
    """(line, imported module, names taken from it) for every import statement in the module."""
    tree = ast.parse(MODULES[name].read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name, []
        elif isinstance(node, ast.ImportFrom):
            yield node.lineno, _resolve(name, node), [alias.name for alias in node.names]


def _edges(name: str) -> set[str]:
    """The product modules this module imports (a name that is itself a module counts as that module)."""
    found: set[str] = set()
    for _, module, names in _imports(name):
        if not module.startswith("segmenta"):
            continue
        submodules = {f"{module}.{taken}" for taken in names} & MODULES.keys()
        found |= submodules
        if module in MODULES and len(submodules) < len(names or [None]):
            found.add(module)
    found.discard(name)
    return found


def _circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    circles: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for successor in sorted(graph[node]):
            if successor not in index:
                visit(successor)
                low[node] = min(low[node], low[successor])
            elif successor in on_stack:
                low[node] = min(low[node], index[successor])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for name in sorted(graph):
        if name not in index:
            visit(name)
    return circles


def test_no_module_imports_another_in_a_circle() -> None:
    assert _circles({name: _edges(name) for name in MODULES}) == []


def test_the_circle_finder_finds_circles_and_only_circles() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": set(), "e": {"d"}, "f": {"g"}, "g": {"f"}}
    assert _circles(graph) == [["a", "b", "c"], ["f", "g"]]


def test_a_function_level_import_is_an_edge() -> None:
    assert "segmenta.domain.routing.realtime" in _edges("segmenta.domain.customers.profiles")


def test_each_layer_imports_only_what_it_may() -> None:
    breaches = []
    for name in MODULES:
        layer = name.split(".")[1]
        for line, module, _ in _imports(name):
            for forbidden in FORBIDDEN.get(layer, ()):
                if module == forbidden or module.startswith(forbidden + "."):
                    breaches.append(f"{name}:{line} imports {module}")
            if layer == "storage" and module.startswith("segmenta.domain") and not module.startswith(STORAGE_MAY_USE):
                breaches.append(f"{name}:{line} imports {module}")
    assert breaches == []


def test_no_module_imports_another_modules_private_names() -> None:
    reaching = []
    for name in MODULES:
        tree = ast.parse(MODULES[name].read_text(encoding="utf-8"))
        module_aliases: set[str] = set()
        for line, module, names in _imports(name):
            if not module.startswith("segmenta"):
                continue
            for taken in names:
                if f"{module}.{taken}" in MODULES:
                    module_aliases.add(taken)
                elif taken.startswith("_"):
                    reaching.append(f"{name}:{line} imports {module}.{taken}")
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                for alias in node.names:
                    if alias.asname and f"{_resolve(name, node)}.{alias.name}" in MODULES:
                        module_aliases.add(alias.asname)
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id in module_aliases
                and node.attr.startswith("_")
                and not node.attr.startswith("__")
            ):
                reaching.append(f"{name}:{node.lineno} uses {node.value.id}.{node.attr}")
    assert reaching == []


def test_a_long_module_says_at_its_top_why_it_must_be() -> None:
    # The reason is a paragraph of the module docstring that starts "Why one module".
    unexplained = []
    for path in MODULES.values():
        source = path.read_text(encoding="utf-8")
        if source.count("\n") <= LONG_MODULE:
            continue
        docstring = ast.get_docstring(ast.parse(source)) or ""
        if "Why one module" not in docstring:
            unexplained.append(f"{path.relative_to(ROOT)}: {source.count(chr(10))} lines")
    assert unexplained == []
