"""Import structure: no cycles anywhere, arrows that point one way, deploy on the public API."""

from __future__ import annotations

import ast

import pytest

from tests.architecture.import_graph import cycles, import_graph, module_files

GRAPH = import_graph()


def test_the_graph_sees_every_kind_of_import() -> None:
    # The checker itself: function-level and TYPE_CHECKING imports count as edges.
    assert "jaguar_sdk._request" in GRAPH["jaguar_sdk._async_client"]  # under TYPE_CHECKING too
    assert "jaguar_sdk._transports.http" in GRAPH["jaguar_sdk._core"]  # inside a function
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_cycles() -> None:
    assert cycles(GRAPH) == []


def _reaches(start: str) -> set[str]:
    seen: set[str] = set()
    todo = [start]
    while todo:
        for nxt in GRAPH.get(todo.pop(), ()):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


@pytest.mark.parametrize(
    ("package", "forbidden"),
    [
        # the weights never load a model or serve one (and never import torch: see below)
        ("jaguar_sdk.weights", ("jaguar_sdk.engine", "jaguar_sdk.server", "jaguar_sdk._core")),
        # the engine only runs the pipeline: no serving, no client, no weight store
        ("jaguar_sdk.engine", ("jaguar_sdk.server", "jaguar_sdk._core", "jaguar_sdk.weights")),
        # the service is handed its engine, never builds one (except `jaguar serve`'s loader)
        ("jaguar_sdk.server._service", ("jaguar_sdk.engine", "jaguar_sdk._core")),
    ],
)
def test_arrows_point_one_way(package: str, forbidden: tuple[str, ...]) -> None:
    modules = [m for m in GRAPH if m == package or m.startswith(package + ".")]
    assert modules
    for module in modules:
        bad = [t for t in GRAPH[module] if t.startswith(forbidden)]
        assert not bad, f"{module} imports {bad}"


def _third_party_imports(module: str) -> set[str]:
    tree = ast.parse(module_files()[module].read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_weights_never_import_torch() -> None:
    for module in (m for m in GRAPH if m.startswith("jaguar_sdk.weights")):
        assert not _third_party_imports(module) & {"torch", "diffusers", "transformers"}, module


def test_deploy_uses_only_public_names_of_jaguar_sdk() -> None:
    for module, path in module_files().items():
        if not module.startswith("deploy"):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("jaguar_sdk"):
                parts = (node.module or "").split(".")
                assert not any(p.startswith("_") for p in parts), (module, node.module)
                private = [
                    a.name
                    for a in node.names
                    if a.name.startswith("_") and not a.name.endswith("__")
                ]
                assert not private, (module, node.module, private)
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.startswith("jaguar_sdk"):
                        assert not any(p.startswith("_") for p in alias.name.split(".")), alias
