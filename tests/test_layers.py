"""ccserver's dependency rule (``ccserver/__init__.py``), checked from the imports.

Like ``tests/ccproto/test_sans_io.py`` for ccproto: the rule holds because a test reads
every import statement, wherever it stands (module level, inside a function, under
``TYPE_CHECKING``), not because someone remembered it.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

from ccserver import LAYERS

ROOT = Path(__file__).resolve().parents[1]
SOURCES = sorted((ROOT / "ccserver").rglob("*.py"))
RANK = {part: rank for rank, line in enumerate(LAYERS) for part in line}


def module_name(path: Path) -> tuple[str, bool]:
    """(dotted name, is a package's ``__init__``) of a source file."""
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        return ".".join(parts[:-1]), True
    return ".".join(parts), False


def imports(path: Path) -> Iterator[tuple[int, str, bool]]:
    """(line, imported module or name, stands inside a function) for every import."""
    name, is_pkg = module_name(path)
    here = name.split(".") if is_pkg else name.split(".")[:-1]
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    in_function: set[ast.AST] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            in_function.update(ast.walk(node))
    for node in ast.walk(tree):
        local = node in in_function
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name, local
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here[: len(here) - node.level + 1]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            yield node.lineno, target, local
            for alias in node.names:  # `from . import x` names a module
                yield node.lineno, f"{target}.{alias.name}", local


def part_of(module: str) -> str | None:
    """The part of ccserver a dotted name belongs to (None: not a part of ccserver)."""
    parts = module.split(".")
    if parts[0] != "ccserver" or len(parts) < 2:
        return None
    return parts[1]


def known(module: str) -> bool:
    path = ROOT / Path(*module.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def test_every_part_of_ccserver_is_on_a_line() -> None:
    parts = {part_of(module_name(p)[0]) for p in SOURCES} - {None}
    assert parts == set(RANK)


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_imports_only_go_down(path: Path) -> None:
    name, _ = module_name(path)
    mine = part_of(name)
    bad = []
    for line, target, _ in imports(path):
        theirs = part_of(target)
        if mine is None or theirs is None or theirs == mine or not known(target):
            continue
        if RANK[theirs] <= RANK[mine]:
            bad.append(f"line {line}: {name} ({mine}) imports {target} ({theirs})")
    assert not bad


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_ccproto_only_through_its_facade_and_no_imports_in_functions(path: Path) -> None:
    found = [(line, target) for line, target, local in imports(path)
             if (target.startswith("ccproto.") and known(target))
             or (local and target.split(".")[0] in ("ccproto", "ccserver"))]
    assert not found


def test_no_import_cycles() -> None:
    graph: dict[str, set[str]] = {}
    for path in SOURCES:
        name, _ = module_name(path)
        graph[name] = {t for _, t, _ in imports(path)
                       if t != name and t.startswith("ccserver") and known(t)
                       and not name.startswith(t + ".")}  # a module's own package __init__
    cycles = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                cycles.append([*path[path.index(nxt):], nxt])
            elif nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    assert not cycles
