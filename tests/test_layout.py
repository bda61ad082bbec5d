"""The package's layout, read from its source with Python's ``ast``:

- no module imports another that imports it back, through any chain, counting imports inside functions and
  under ``TYPE_CHECKING`` (a cycle is a strongly connected group of modules);
- no function of ``src/`` is over 60 lines, and no line anywhere is packed past the formatter (no skip marker);
- a family's or a data source's name, as a word of a string in the code, appears only in its own folder (or
  module) and in its registry line: everything else reads the registries, or the family's class.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from tests.conftest import ROOT

SRC = ROOT / "src"
PACKAGE = SRC / "taxodiff"
REGISTRIES = {"families/__init__.py", "data/__init__.py", "studies/__init__.py"}


def _modules() -> dict[str, Path]:
    out = {}
    for p in PACKAGE.rglob("*.py"):
        parts = list(p.relative_to(SRC).with_suffix("").parts)
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = p
    return out


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The package's modules that ``name`` imports, anywhere in it."""

    def known(dotted: str) -> str | None:
        while dotted and dotted not in modules:
            dotted = dotted.rpartition(".")[0]
        return dotted or None

    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [known(a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([base] if base else []))
            targets = [known(f"{base}.{a.name}") for a in node.names]
        else:
            continue
        out |= {t for t in targets if t and t != name}
    return out


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for v in graph:
        if v not in index:
            visit(v)
    return found


def test_no_module_imports_another_that_imports_it_back():
    modules = _modules()
    graph = {name: _imports(name, path, modules) for name, path in modules.items()}
    assert sum(len(v) for v in graph.values()) > 200  # the reader does see the imports
    assert _cycles(graph) == []


def test_the_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_function_over_60_lines_and_nothing_packed():
    long = []
    for p in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(p.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.end_lineno - node.lineno >= 60:
                long.append(f"{p.relative_to(SRC)}:{node.lineno} {node.name}")
    assert long == []
    marker = "# fmt: " + "skip"
    packed = [
        str(p) for d in ("src", "tests", "benchmarks") for p in (ROOT / d).rglob("*.py") if marker in p.read_text()
    ]
    assert packed == []


def _owners() -> dict[str, list[str]]:
    """Every registered family and source name -> the folders or modules (relative to the package) it may
    appear in: a registry target's folder, or the target module itself where the module bears the name."""
    from taxodiff.data import SOURCES
    from taxodiff.families import FAMILIES

    out: dict[str, list[str]] = {}
    for reg in (FAMILIES, SOURCES):
        for name in reg.names():
            module = reg._targets[name].split(":")[0].split(".")[1:]
            own = "/".join(module) + ".py" if module[-1] == name else "/".join(module[:-1]) + "/"
            out.setdefault(name, []).append(own)
    return out


def _strings(tree: ast.AST) -> list[ast.Constant]:
    """The string constants of a module, docstrings aside."""
    docs = set()
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) and body:
            first = body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                docs.add(id(first.value))
    return [n for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in docs]


def test_family_and_source_names_only_in_their_folders_and_registry_lines():
    owners = _owners()
    word = re.compile(r"(?<![\w.-])(" + "|".join(map(re.escape, owners)) + r")(?![\w-])")
    found = []
    for p in PACKAGE.rglob("*.py"):
        rel = str(p.relative_to(PACKAGE))
        lines = p.read_text().splitlines()
        for node in _strings(ast.parse(p.read_text())):
            for m in word.finditer(node.value):
                name = m.group(1)
                if any(rel.startswith(o) for o in owners[name]):
                    continue
                if rel in REGISTRIES and re.match(r'\s*"[\w-]+": "taxodiff\.', lines[node.lineno - 1]):
                    continue  # a registry line
                found.append(f"{rel}:{node.lineno} {name!r} in {node.value[:60]!r}")
    assert found == []
