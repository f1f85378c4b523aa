"""Run the fake Anthropic API in a subprocess and build environments for the real CLI.

The fake runs as ``python -m ccserver.fakeapi --port 0 --log FILE`` in its own process, so sync
tests (and the transcript recorder) can use it without an event loop; the port comes from the
single ``listening on http://HOST:PORT`` line it prints, and the request log is read from FILE.
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = [
    "CLAUDE_BIN",
    "REPO_ROOT",
    "STREAM_JSON_ARGS",
    "FakeAPI",
    "cli_env",
    "run_claude",
    "running_fakeapi",
    "user_line",
]

REPO_ROOT = Path(__file__).resolve().parent.parent.parent
#: The real Claude Code CLI (npm-installed into the repo).
CLAUDE_BIN = str(REPO_ROOT / "node_modules" / ".bin" / "claude")

#: Persistent-mode flags with token deltas; the prompt goes in as one stream-json stdin line.
STREAM_JSON_ARGS = (
    "-p",
    "--input-format",
    "stream-json",
    "--output-format",
    "stream-json",
    "--verbose",
    "--include-partial-messages",
)

_START_TIMEOUT_S = 15.0
_PROXY_VARS = frozenset({"http_proxy", "https_proxy", "all_proxy", "no_proxy", "ftp_proxy"})


class FakeAPI:
    """Handle on a running fake: its address and its request log."""

    def __init__(self, port: int, log_path: Path) -> None:
        self.port = port
        self.base_url = f"http://127.0.0.1:{port}"
        self.log_path = log_path

    def requests(self) -> list[dict[str, Any]]:
        """Every request logged so far, oldest first."""
        entries = []
        for line in self.log_path.read_text(encoding="utf-8").splitlines():
            # A line being written right now may be incomplete; it shows up on the next read.
            with contextlib.suppress(ValueError):
                entries.append(json.loads(line))
        return entries

    def messages_requests(self) -> list[dict[str, Any]]:
        """Only the ``POST /v1/messages`` requests (count_tokens and others left out)."""
        return [
            r
            for r in self.requests()
            if r["method"] == "POST" and r["path"].partition("?")[0] == "/v1/messages"
        ]


@contextlib.contextmanager
def running_fakeapi(tmp_path: Path) -> Iterator[FakeAPI]:
    """Start the fake on a free port, yield a `FakeAPI`, then terminate and reap it."""
    log_path = tmp_path / "fake.jsonl"
    argv = [sys.executable, "-m", "ccserver.fakeapi", "--host", "127.0.0.1", "--port", "0"]
    with (tmp_path / "fake.stderr").open("wb") as stderr:
        proc = subprocess.Popen(
            [*argv, "--log", str(log_path)],
            cwd=REPO_ROOT,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=stderr,
        )
    try:
        line = _read_first_line(proc, _START_TIMEOUT_S)
        prefix = "listening on http://127.0.0.1:"
        if not line.startswith(prefix):
            err = (tmp_path / "fake.stderr").read_text(errors="replace")
            raise RuntimeError(f"fake API did not start: {line!r}\n{err}")
        yield FakeAPI(int(line[len(prefix) :]), log_path)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        assert proc.stdout is not None
        proc.stdout.close()


def _read_first_line(proc: subprocess.Popen[bytes], timeout: float) -> str:
    # Read byte-wise from the raw fd under a selector so a fake that never prints cannot
    # block the test forever.
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    deadline = time.monotonic() + timeout
    buf = b""
    with selectors.DefaultSelector() as sel:
        sel.register(fd, selectors.EVENT_READ)
        while not buf.endswith(b"\n"):
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not sel.select(remaining):
                raise TimeoutError(f"fake API printed no port within {timeout} s")
            chunk = os.read(fd, 256)
            if not chunk:
                break  # exited early; the caller reports stderr
            buf += chunk
    return buf.decode(errors="replace").strip()


def cli_env(fake: FakeAPI, config_dir: Path | str, **extra: str) -> dict[str, str]:
    """os.environ for a CLI run against ``fake``, isolated in ``config_dir``.

    Inherited ``ANTHROPIC_*`` / ``CLAUDE*`` variables and proxies are dropped first so the run
    cannot reach a real account or leak settings from a parent Claude Code session.
    """
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("ANTHROPIC_", "CLAUDE")) and name.lower() not in _PROXY_VARS
    }
    # A home of its own: the Bash tool runs login shells, which would source the machine's
    # profile (here pyenv's rehash, whose lock a killed shell leaves behind, after which
    # every shell waits 60 s for it). Tests kill shells on purpose; they must not leave
    # traps for the next test.
    home = Path(config_dir).parent / "home"
    home.mkdir(parents=True, exist_ok=True)
    env.update(
        HOME=str(home),
        ANTHROPIC_BASE_URL=fake.base_url,
        ANTHROPIC_API_KEY="sk-test",
        CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC="1",
        CLAUDE_CONFIG_DIR=str(config_dir),
        CLAUDE_CODE_MAX_RETRIES="0",
        DISABLE_AUTOUPDATER="1",
        NO_PROXY="127.0.0.1,localhost",
    )
    env.update(extra)
    return env


def user_line(content: str | Sequence[Mapping[str, Any]]) -> bytes:
    """One stream-json stdin line carrying a user message."""
    message = {"role": "user", "content": content}
    return (json.dumps({"type": "user", "message": message}) + "\n").encode()


def run_claude(
    fake: FakeAPI,
    workdir: Path,
    content: str | Sequence[Mapping[str, Any]],
    *flags: str,
    env: Mapping[str, str] | None = None,
    timeout: float = 60.0,
) -> subprocess.CompletedProcess[bytes]:
    """Run the real CLI once (``STREAM_JSON_ARGS + flags``) with ``content`` on a stdin pipe.

    The config dir is ``workdir/cfg`` and the cwd ``workdir/cwd``, so runs sharing a workdir
    share sessions (for ``--resume``) and runs in different workdirs share nothing. stdin must
    be a pipe: the CLI silently ignores stream-json from a small regular file.
    """
    config_dir, cwd = workdir / "cfg", workdir / "cwd"
    config_dir.mkdir(parents=True, exist_ok=True)
    cwd.mkdir(parents=True, exist_ok=True)
    return subprocess.run(
        [CLAUDE_BIN, *STREAM_JSON_ARGS, *flags],
        input=user_line(content),
        capture_output=True,
        cwd=cwd,
        env=cli_env(fake, config_dir, **(env or {})),
        timeout=timeout,
        check=False,
    )
