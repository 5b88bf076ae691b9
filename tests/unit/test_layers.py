"""The layers, read from the source with `ast` (run by `make lint` too): who may import whom, no cycles, and
no first-party import hidden inside a function without a comment that says why.

| folder | holds | may import (first-party) | never |
|---|---|---|---|
| core/ | the science | core | streamlit, altair, vl_convert |
| server/ | what one server shares among sessions | core, server | streamlit, altair |
| render/ | figures and their exports | core, render | streamlit |
| ui/ | Streamlit code | core, server, render, ui | |
| app_pages/, streamlit_app.py | the pages and the routing | core, server, render, ui | |
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LAYERS = ("core", "server", "render", "ui", "app_pages")
ALLOWED = {
    "core": {"core"},
    "server": {"core", "server"},
    "render": {"core", "render"},
    "ui": {"core", "server", "render", "ui"},
    "app_pages": {"core", "server", "render", "ui"},
    "streamlit_app": {"core", "server", "render", "ui"},
}
FORBIDDEN_THIRD_PARTY = {
    "core": {"streamlit", "altair", "vl_convert", "streamlit_drawable_canvas"},
    "server": {"streamlit", "altair", "vl_convert", "streamlit_drawable_canvas"},
    "render": {"streamlit", "streamlit_drawable_canvas"},
}


def module_name(path: Path) -> str:
    return ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")


def modules() -> dict[str, Path]:
    found = {module_name(p): p for layer in LAYERS for p in (ROOT / layer).rglob("*.py")}
    found["streamlit_app"] = ROOT / "streamlit_app.py"
    return found


MODULES = modules()


def first_party(name: str) -> str | None:
    """The module of ours that an imported name lives in (`core.eigen.decompose` -> `core.eigen`)."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


@cache
def imports(path: Path) -> list[tuple[ast.stmt, list[str]]]:
    """Every import statement in the file (top level, in functions, under TYPE_CHECKING) with the names it imports."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.append((node, [alias.name for alias in node.names]))
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node, [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]))
    return found


@cache
def graph() -> dict[str, set[str]]:
    edges = {}
    for name, path in MODULES.items():
        targets = {first_party(n) for _, names in imports(path) for n in names}
        edges[name] = {t for t in targets if t and t != name}
    return edges


def layer(module: str) -> str:
    return module.partition(".")[0]


@pytest.mark.parametrize("module", sorted(MODULES))
def test_each_layer_imports_only_the_layers_below_it(module):
    wrong = sorted(t for t in graph()[module] if layer(t) not in ALLOWED[layer(module)])
    assert not wrong, f"{module} may import only {sorted(ALLOWED[layer(module)])}, but imports {wrong}"
    banned = FORBIDDEN_THIRD_PARTY.get(layer(module), set())
    used = {n.partition(".")[0] for _, names in imports(MODULES[module]) for n in names}
    assert not used & banned, f"{module} imports {sorted(used & banned)}"


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while (w := stack.pop()) != v:
                component.append(w)
            if component:
                found.append(sorted([v, *component]))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def test_no_import_cycles_even_through_imports_inside_functions():
    assert cycles(graph()) == []


def test_the_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_an_import_inside_a_function_says_why():
    """A first-party import kept inside a function delays a heavy import (torch, altair); its line says so."""
    silent = []
    for name, path in MODULES.items():
        lines = path.read_text().splitlines()
        for node, names in imports(path):
            if node.col_offset == 0 or not any(first_party(n) for n in names):
                continue
            if _under_type_checking(path, node):
                continue
            if "#" not in lines[node.lineno - 1] and "#" not in lines[node.lineno - 2]:
                silent.append(f"{name}:{node.lineno}")
    assert not silent, f"imports inside functions with no comment saying why: {silent}"


def _under_type_checking(path: Path, target: ast.stmt) -> bool:
    for node in ast.walk(ast.parse(path.read_text())):
        if (
            isinstance(node, ast.If)
            and getattr(node.test, "id", "") == "TYPE_CHECKING"
            and any(_same(child, target) for child in ast.walk(node))
        ):
            return True
    return False


def _same(a: ast.AST, b: ast.AST) -> bool:
    return type(a) is type(b) and getattr(a, "lineno", None) == getattr(b, "lineno", None)


# The protocol driver's own tests: they alone may import loadtest, and only loadtest.protocol.
PROTOCOL_DRIVER_TESTS = {"tests/load/test_protocol_student.py", "tests/unit/test_protocol_version.py"}


def test_tests_run_the_tools_as_programs():
    """The tools (bench/, loadtest/) are no library of the tests: tests run `python -m loadtest` and share code
    with them through harness/; only the protocol driver's own tests import loadtest.protocol."""
    wrong = []
    for path in sorted((ROOT / "tests").rglob("*.py")):
        name = path.relative_to(ROOT).as_posix()
        for node, names in imports(path):
            tools = [n for n in names if n.partition(".")[0] in ("bench", "loadtest")]
            protocol = all(n in ("loadtest", "loadtest.protocol") or n.startswith("loadtest.protocol.") for n in tools)
            if tools and not (name in PROTOCOL_DRIVER_TESTS and protocol):
                wrong.append(f"{name}:{node.lineno} {tools}")
    assert not wrong, f"tests that import bench/ or loadtest/: {wrong}"


def test_the_app_never_imports_the_tooling_and_the_harness_none_of_our_code():
    """harness/ (a server, chromium, PostgreSQL, moto for tests, bench/ and loadtest/) drives the app from outside:
    it imports none of our code, and the app imports none of the tooling."""
    tooling = ("harness", "bench", "loadtest", "tests")
    wrong = [
        f"{name}:{node.lineno} {n}"
        for name, path in MODULES.items()
        for node, names in imports(path)
        for n in names
        if n.partition(".")[0] in tooling
    ]
    ours = {*LAYERS, "streamlit_app", "bench", "loadtest", "tests"}
    for path in sorted((ROOT / "harness").rglob("*.py")):
        for node, names in imports(path):
            wrong += [f"{path.relative_to(ROOT)}:{node.lineno} {n}" for n in names if n.partition(".")[0] in ours]
    assert not wrong, f"imports across the app / tooling line: {wrong}"
