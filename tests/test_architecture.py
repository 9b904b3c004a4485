"""The project's import graph: no cycles, every import runs down the layers, and no
private name crosses a module.

Layers, top to bottom (a module may import its own layer and those below it):
transports (consumer, views, admin, API, tasks, commands) -> presentation (HTML) -> live (a
reply in flight) -> domain (services, selectors, context, providers, ...) -> models.
Imports inside functions count as much as those at the top: a deferred import that dodges a
cycle is the cycle still.
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("chatsite", "conversations", "api")

# First match wins: the most specific prefixes come first.
LAYERS = [
    ("conversations.models", 0),
    ("conversations.migrations", 0),
    ("api.models", 0),
    ("api.migrations", 0),
    ("conversations.live", 2),
    ("conversations.presenters", 3),
    ("conversations.pages", 3),
    ("conversations.rendering", 3),
    ("conversations.user_pushes", 3),
    ("conversations.streaming_markdown", 3),
    ("conversations.templatetags", 3),
    ("conversations.chat_actions", 4),
    ("conversations.consumers", 4),
    ("conversations.user_socket", 4),
    ("conversations.routing", 4),
    ("conversations.views", 4),
    ("conversations.sidebar_views", 4),
    ("conversations.controls_views", 4),
    ("conversations.urls", 4),
    ("conversations.forms", 4),
    ("conversations.admin", 4),
    ("conversations.observability.exposition", 4),
    ("conversations.observability.http", 4),
    ("conversations.tasks", 4),
    ("conversations.apps", 4),
    ("conversations.management", 4),
    ("chatsite.asgi", 4),
    ("chatsite.urls", 4),
    ("api", 4),
    # Settings and process set-up: imported by anyone, importing nothing of the app.
    ("chatsite", 0),
    ("conversations", 1),
]
LAYER_NAMES = {0: "models", 1: "domain", 2: "live", 3: "presentation", 4: "transports"}


def layer_of(module: str) -> int:
    for prefix, layer in LAYERS:
        if module == prefix or module.startswith(prefix + "."):
            return layer
    raise AssertionError(f"{module} is in no layer: add it to LAYERS")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def project_modules() -> dict[str, Path]:
    modules = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            modules[_module_name(path)] = path
    return modules


def _imported(node: ast.AST, module: str, is_package: bool, known: set[str]) -> set[str]:
    """The project modules an import statement loads (a name from a package that is a
    submodule counts as the submodule)."""
    if isinstance(node, ast.Import):
        return {alias.name for alias in node.names if alias.name.split(".")[0] in PACKAGES}
    assert isinstance(node, ast.ImportFrom)
    if node.level:
        base = module.split(".") if is_package else module.split(".")[:-1]
        base = base[: len(base) - node.level + 1]
        source = ".".join(base + ([node.module] if node.module else []))
    else:
        source = node.module or ""
    if source.split(".")[0] not in PACKAGES:
        return set()
    found = set()
    for alias in node.names:
        candidate = f"{source}.{alias.name}"
        found.add(candidate if candidate in known else source)
    return found


def import_graph() -> dict[str, set[str]]:
    modules = project_modules()
    known = set(modules)
    graph: dict[str, set[str]] = {}
    for module, path in modules.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        edges: set[str] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import | ast.ImportFrom):
                edges |= _imported(node, module, path.name == "__init__.py", known)
        graph[module] = {edge for edge in edges if edge in known and edge != module}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for successor in sorted(graph.get(node, ())):
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
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_project_has_no_import_cycle():
    found = cycles(import_graph())
    assert found == [], "import cycles: " + "; ".join(" -> ".join(c) for c in found)


def test_every_import_runs_down_the_layers():
    upward = [
        f"{module} ({LAYER_NAMES[layer_of(module)]}) imports {target} "
        f"({LAYER_NAMES[layer_of(target)]})"
        for module, targets in sorted(import_graph().items())
        for target in sorted(targets)
        if layer_of(target) > layer_of(module)
    ]
    assert upward == []


def test_the_checker_sees_a_cycle_and_an_upward_import():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert layer_of("conversations.services.replies") < layer_of("conversations.live.run")
    assert layer_of("conversations.live.run") < layer_of("conversations.consumers")


@pytest.mark.parametrize("module", ["conversations.live.run", "conversations.consumers"])
def test_the_graph_reads_the_imports_of_real_modules(module):
    graph = import_graph()
    assert "conversations.models" in graph[module] or any(
        target.startswith("conversations.live") for target in graph[module]
    )


def test_no_private_name_crosses_a_module():
    crossing = []
    for module, path in sorted(project_modules().items()):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if not isinstance(node, ast.ImportFrom) or node.level:
                continue
            if (node.module or "").split(".")[0] not in PACKAGES:
                continue
            private = [
                alias.name
                for alias in node.names
                if alias.name.startswith("_") and not alias.name.startswith("__")
            ]
            crossing += [f"{module} imports {node.module}.{name}" for name in private]
    assert crossing == []


def test_the_presenters_import_no_reads():
    """Presenters are handed resolved read models; a query there would run once per message
    of every page and every push."""
    path = ROOT / "conversations" / "presenters.py"
    imported = {
        (node.module, alias.name)
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
    }
    reads = {
        (module, name)
        for module, name in imported
        if module and module.startswith(("conversations.selectors", "conversations.usage"))
    }
    assert reads <= {("conversations.selectors", "MessageRead")}
    assert ("conversations", "usage") not in imported
    assert ("conversations", "selectors") not in imported
    assert ".objects" not in path.read_text()


# The provider seam: only these modules speak the SDK's language.
SDK_MODULES = {
    "conversations.providers.transport",
    "conversations.providers.embeddings",
    "conversations.providers.sdk_errors",
}


def test_only_the_provider_seam_imports_the_openai_sdk():
    importers = set()
    for module, path in project_modules().items():
        for node in ast.walk(ast.parse(path.read_text())):
            names = (
                [alias.name for alias in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            if any(name == "openai" or name.startswith("openai.") for name in names):
                importers.add(module)
    assert importers == SDK_MODULES
