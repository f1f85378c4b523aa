"""ccproto must stay sans-IO: no I/O, clock, randomness or server modules, anywhere."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

FORBIDDEN = {
    "asyncio", "trio", "trio_asyncio", "hypercorn", "ccserver", "socket", "subprocess",
    "time", "random", "uuid", "threading", "os", "io", "pathlib", "shutil", "datetime",
    "secrets", "select", "selectors",
}
SOURCES = sorted((Path(__file__).parents[2] / "ccproto").glob("*.py"))


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: p.name)
def test_imports_nothing_that_does_io(path: Path) -> None:
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names = [node.module or ""]
        else:
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                assert node.func.id != "open", f"{path.name}:{node.lineno} calls open()"
            continue
        for name in names:
            assert name.split(".")[0] not in FORBIDDEN, f"{path.name}:{node.lineno} imports {name}"


def test_the_check_sees_every_module() -> None:
    assert {p.name for p in SOURCES} >= {"stream.py", "turn.py", "plan.py", "chunks.py"}
