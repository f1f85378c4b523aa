"""examples/asyncio_client.py: ccproto driven from asyncio, without trio or ccserver.

The example runs as its own program, as a user would run it, against the real CLI and the
fake upstream. Its ``-v`` line on stderr names the CLI's pid, and every process it starts
inherits a marker variable of the test's, so the process table shows what it left behind.
"""

from __future__ import annotations

import ast
import json
import os
import secrets
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ccserver.proc.tree import env_value
from tests.support.e2e import directive, upstream_turns
from tests.support.fakeapi import CLAUDE_BIN, REPO_ROOT, FakeAPI, cli_env, running_fakeapi
from tests.support.gateway import processes, wait_until

pytestmark = [pytest.mark.e2e]

EXAMPLE = REPO_ROOT / "examples" / "asyncio_client.py"
MARKER = "CCTEST_ASYNCIO_EXAMPLE"
#: A bound on each wait for the example, so a broken one fails instead of hanging.
BOUND = 60.0


@pytest.fixture(scope="module")
def fake(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeAPI]:
    with running_fakeapi(tmp_path_factory.mktemp("fakeapi")) as api:
        yield api


def start(fake: FakeAPI, tmp_path: Path, prompt: str) -> tuple[subprocess.Popen[bytes], str]:
    """The example for ``prompt`` in ``tmp_path/ws``; (its process, its marker value)."""
    (tmp_path / "ws").mkdir()
    mark = secrets.token_hex(8)
    env = cli_env(fake, tmp_path / "cfg", **{MARKER: mark})
    proc = subprocess.Popen(
        [sys.executable, str(EXAMPLE), "--claude", CLAUDE_BIN, "-v", prompt],
        cwd=tmp_path / "ws", env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    return proc, mark


def events(stdout: bytes) -> list[str]:
    """The data of each SSE event, in order (every event is one ``data:`` line)."""
    blocks = stdout.decode().split("\n\n")
    assert blocks[-1] == ""  # the stream ends with a whole event
    assert all(b.startswith("data: ") and "\n" not in b for b in blocks[:-1]), blocks
    return [b.removeprefix("data: ") for b in blocks[:-1]]


def cli_pid(stderr: bytes) -> int:
    (line,) = [ln for ln in stderr.decode().splitlines() if ln.startswith("claude: pid ")]
    return int(line.removeprefix("claude: pid "))


def marked(mark: str) -> list[int]:
    """Live processes started with our marker: the CLI and anything it started."""
    parents, _ = processes()
    return [pid for pid in parents if env_value(pid, MARKER) == mark]


def assert_nothing_left(pid: int, mark: str) -> None:
    # The example reaps the CLI before it exits: once it has, the pid is gone for good.
    parents, _ = processes()
    assert pid not in parents
    assert wait_until(lambda: not marked(mark)), marked(mark)


def text_of(chunks: list[dict[str, Any]]) -> str:
    return "".join(c["choices"][0]["delta"].get("content") or ""
                   for c in chunks if c["choices"])


def test_one_streaming_completion(fake: FakeAPI, tmp_path: Path) -> None:
    text = "Streamed through asyncio, one delta at a time."
    marker = f"asyncio-{secrets.token_hex(4)}"
    proc, mark = start(fake, tmp_path, f"Say it {marker} " + directive(text=text))
    stdout, stderr = proc.communicate(timeout=BOUND)
    assert proc.returncode == 0, stderr.decode()

    *data, done = events(stdout)
    assert done == "[DONE]"
    chunks = [json.loads(d) for d in data]
    assert {c["object"] for c in chunks} == {"chat.completion.chunk"}
    assert len({c["id"] for c in chunks}) == 1 and chunks[0]["id"].startswith("chatcmpl-")
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert len(chunks) >= 4  # role, more than one text delta (the fake splits words), finish
    assert text_of(chunks) == text
    finishes = [c["choices"][0]["finish_reason"] for c in chunks]
    assert finishes[-1] == "stop" and set(finishes[:-1]) == {None}

    # The prompt reached the upstream as the user's turn.
    (turn,) = upstream_turns(fake, marker)
    assert turn[0] == "user" and f"Say it {marker}" in turn[1]
    assert_nothing_left(cli_pid(stderr), mark)


def test_ctrl_c_stops_and_reaps_the_cli(fake: FakeAPI, tmp_path: Path) -> None:
    # The upstream sends one delta and then nothing: the turn would wait for ever.
    content = "Wait " + directive(chunks=["partial "], hang="after_chunks")
    proc, mark = start(fake, tmp_path, content)
    assert proc.stdout is not None
    seen = b""
    deadline = time.monotonic() + BOUND
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        while b'"content":"partial "' not in seen:
            assert sel.select(deadline - time.monotonic()), seen  # bound, not a timing check
            chunk = os.read(proc.stdout.fileno(), 65536)
            assert chunk, seen
            seen += chunk
    proc.send_signal(signal.SIGINT)
    rest, stderr = proc.communicate(timeout=BOUND)

    assert proc.returncode == 130, stderr.decode()
    assert b"[DONE]" not in seen + rest  # the stream was interrupted, not finished
    assert_nothing_left(cli_pid(stderr), mark)


def test_imports_only_the_standard_library_and_ccproto() -> None:
    tree = ast.parse(EXAMPLE.read_text(encoding="utf-8"))
    imported = {alias.name.split(".")[0] for node in ast.walk(tree)
                if isinstance(node, ast.Import) for alias in node.names}
    imported |= {(node.module or "").split(".")[0] for node in ast.walk(tree)
                 if isinstance(node, ast.ImportFrom)}
    assert imported - set(sys.stdlib_module_names) == {"ccproto"}

    # And nothing pulls them in at run time either (ccproto's own attrs and cattrs may).
    probe = (
        "import importlib.util, json, sys\n"
        f"spec = importlib.util.spec_from_file_location('asyncio_client', {str(EXAMPLE)!r})\n"
        "spec.loader.exec_module(importlib.util.module_from_spec(spec))\n"
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, check=True,
                         timeout=BOUND, cwd=REPO_ROOT / "examples")
    loaded = set(json.loads(out.stdout))
    assert "ccproto" in loaded
    assert not loaded & {"trio", "trio_asyncio", "ccserver", "hypercorn"}
