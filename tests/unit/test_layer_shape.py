"""The house rules of the layer and the tests, checked on the source (CONTRIBUTING.md, "House rules").

- no module of the layer imports a module that imports it back, directly or through others (importing
  ``a.b.c`` runs ``a/__init__.py`` and ``a/b/__init__.py`` first, so those count as imports too);
- no function in the layer is over 50 lines, outside the HTTP/2 transport;
- no test patches a private name (a seam or a public setting is what a test swaps);
- no route imports storage, and storage imports nothing of the pipeline but the ledger port it implements;
- providers import neither storage nor the credential store;
- a target's stored extras are read only through its platform's typed view;
- docs/ARCHITECTURE.md names every key prefix storage/keys.py makes, and every queue message with its fields.
"""

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
LAYER = REPO / "layers" / "push_core"
PACKAGE = "push_core"
LONGEST_FUNCTION = 50
PATCHERS = {"setattr", "patch", "object", "setitem"}


def layer_modules() -> dict[str, Path]:
    modules = {}
    for path in (LAYER / PACKAGE).rglob("*.py"):
        parts = list(path.relative_to(LAYER).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def imported(module: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The layer's modules that importing ``module`` runs, with the packages on their way."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            names.update(f"{base}.{alias.name}" for alias in node.names)
            names.add(base)
    found: set[str] = set()
    for name in names:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        while name:  # the module and every package above it run
            found.add(name)
            name = name.rpartition(".")[0]
    own_packages = {".".join(module.split(".")[:n]) for n in range(1, module.count(".") + 1)}
    return found - {module} - own_packages


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for successor in graph[node]:
            if successor not in index:
                visit(successor)
                low[node] = min(low[node], low[successor])
            elif successor in stack:
                low[node] = min(low[node], index[successor])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in graph:
        if node not in index:
            visit(node)
    return found


def test_no_module_of_the_layer_imports_itself_back():
    modules = layer_modules()
    graph = {module: imported(module, path, modules) for module, path in modules.items()}
    assert cycles(graph) == []


def test_the_cycle_finder_finds_a_cycle_through_a_package():
    graph = {"p": {"p.a"}, "p.a": {"p.b"}, "p.b": {"p"}, "q": set()}
    assert cycles(graph) == [["p", "p.a", "p.b"]]


def test_no_function_in_the_layer_is_over_fifty_lines():
    long = [
        f"{path.relative_to(LAYER)}:{node.lineno} {node.name} ({node.end_lineno - node.lineno + 1} lines)"
        for module, path in layer_modules().items()
        if not module.startswith(f"{PACKAGE}.http2")
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.end_lineno is not None
        and node.end_lineno - node.lineno + 1 > LONGEST_FUNCTION
    ]
    assert long == []


def private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def patched_private_names(source: str) -> Iterator[str]:
    """Private names a test swaps with monkeypatch.setattr, mock.patch(.object) or setattr."""
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call):
            continue
        callee = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
        if callee not in PATCHERS or not node.args:
            continue
        strings = [a.value for a in node.args[:2] if isinstance(a, ast.Constant) and isinstance(a.value, str)]
        for text in strings:
            if any(private(part) for part in text.split(".")):
                yield f"line {node.lineno}: {text}"


def test_no_test_patches_a_private_name():
    offences = {
        str(path.relative_to(REPO)): found
        for path in (REPO / "tests").rglob("*.py")
        if (found := list(patched_private_names(path.read_text())))
    }
    assert offences == {}


@pytest.mark.parametrize(
    ("source", "found"),
    [
        ('monkeypatch.setattr(module, "_hidden", 1)', ["line 1: _hidden"]),
        ('mock.patch("package.module._helper")', ["line 1: package.module._helper"]),
        ('mock.patch.object(module, "_CACHE", {})', ["line 1: _CACHE"]),
        ('monkeypatch.setattr(module, "PUBLIC", 1)', []),
        ('monkeypatch.setattr(Stubber, "__call__", f)', []),
    ],
)
def test_the_patch_finder_tells_private_from_public(source: str, found: list[str]):
    assert list(patched_private_names(source)) == found


def key_prefixes() -> set[str]:
    """Every literal prefix storage/keys.py puts in a key: ``APP#``, ``#DEV#``, ``RUN#`` and the like."""
    source = (LAYER / PACKAGE / "storage" / "keys.py").read_text()
    prefixes: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.JoinedStr):  # f"APP#{app_id}#DEV#{device_id}"
            literals = [p.value for p in node.values if isinstance(p, ast.Constant) and isinstance(p.value, str)]
        elif isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant):  # SUBSCRIPTION_PREFIX = "SUB#"
            literals = [node.value.value] if isinstance(node.value.value, str) else []
        else:
            continue
        for literal in literals:
            prefixes.update(re.findall(r"#?[A-Z]+#?", literal))
    return prefixes


def test_the_architecture_document_names_every_key_prefix():
    document = (REPO / "docs" / "ARCHITECTURE.md").read_text()
    prefixes = key_prefixes()
    assert {"APP#", "#DEV#", "RUN#", "SUB#", "DEV"} <= prefixes  # the reading of keys.py still finds them
    quoted = re.findall(r"`([^`\n]+)`", document)  # inline code, one line each
    missing = sorted(prefix for prefix in prefixes if not any(prefix in code for code in quoted))
    assert missing == []


def test_no_route_touches_storage():
    """Routes go through the domain (registry, pipeline, inbox); only the edge maps storage's errors."""
    modules = layer_modules()
    routes = {m: p for m, p in modules.items() if m.startswith(f"{PACKAGE}.api.routes")}
    touching = {
        module: sorted(name for name in imported(module, path, modules) if name.startswith(f"{PACKAGE}.storage"))
        for module, path in routes.items()
    }
    assert {module: names for module, names in touching.items() if names} == {}


def test_the_architecture_document_names_every_queue_message_and_its_fields():
    from pydantic import BaseModel

    from push_core.pipeline import jobs

    document = (REPO / "docs" / "ARCHITECTURE.md").read_text()
    defined = {  # every job model jobs.py defines, but the shared base, must be in its list of messages
        kind
        for kind in vars(jobs).values()
        if isinstance(kind, type) and issubclass(kind, BaseModel) and kind.__module__ == jobs.__name__
        if kind is not jobs.Job
    }
    assert defined <= set(jobs.QUEUE_MESSAGES)
    assert {kind.__name__ for kind in jobs.QUEUE_MESSAGES} == {
        "ExpandJob",
        "DeliveryJob",
        "PurgeAppJob",
        "FeedbackEvent",
    }
    missing = sorted(
        f"{kind.__name__}.{name}"
        for kind in jobs.QUEUE_MESSAGES
        for name in [kind.__name__, *kind.model_fields]
        if f"`{name}`" not in document
    )
    assert missing == []


def test_storage_takes_and_gives_domain_types_not_the_pipelines():
    """Storage sits under the pipeline: what it stores is defined in models.py (or by storage itself). The
    one arrow up is the port an adapter implements: the DynamoDB batch ledger implements pipeline/ledger.py."""
    modules = layer_modules()
    port = {f"{PACKAGE}.pipeline", f"{PACKAGE}.pipeline.ledger"}
    reaching = {
        module: sorted(
            name
            for name in imported(module, path, modules)
            if name.startswith(f"{PACKAGE}.pipeline") and name not in port
        )
        for module, path in modules.items()
        if module.startswith(f"{PACKAGE}.storage")
    }
    assert {module: names for module, names in reaching.items() if names} == {}


def test_providers_touch_neither_storage_nor_the_credential_store():
    """Providers get credentials and a token store handed in; the arrow runs from the layer to them only."""
    modules = layer_modules()
    reaching = {
        module: sorted(
            name
            for name in imported(module, path, modules)
            if name.startswith(f"{PACKAGE}.storage") or name == f"{PACKAGE}.credentials"
        )
        for module, path in modules.items()
        if module.startswith(f"{PACKAGE}.providers")
    }
    assert {module: names for module, names in reaching.items() if names} == {}


def test_a_targets_extras_are_read_only_through_their_platforms_typed_view():
    """`target.push["environment"]` scattered over the pipeline is how platform rules leaked; one view each."""
    views = {"push_core.models", "push_core.providers.apns.target", "push_core.providers.webpush.target"}
    keyed = re.compile(r"""\.push(\.get\(|\[)\s*["']""")
    readers = sorted(
        module for module, path in layer_modules().items() if module not in views and keyed.search(path.read_text())
    )
    assert readers == []
