"""A broken Claude Code CLI, through the whole app in-process: an OpenAI-shaped error with the
status its failure class promises (README "Reliability"), never a 500 or a 200 that hides it.

Each test writes a small stand-in `claude` that answers the start-up probes (`--version`,
`auth status`) and then fails its turn in one way: missing, not executable, gone after
start-up, crashing, killed by a signal, printing garbage or one huge line, flooding stderr,
or going silent before or after its first text. Every request is tried as JSON and as SSE:
the SSE status is held until the first content, so both get the same status.
"""

from __future__ import annotations

import json
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import trio

from ccserver.app import App
from ccserver.proc.tree import read_info
from tests.support.asgi_client import Response, lifespan, request, sse_events
from tests.support.replay import TRANSCRIPTS
from tests.support.settings import SettingsFactory

pytestmark = [pytest.mark.reliability]

# The stand-in's preamble: the probes get good answers, so only the turn fails. Every run
# records its pid, so a test can check that the gateway stopped and reaped it.
_PREAMBLE = """\
import json, os, signal, sys, time
if "--version" in sys.argv:
    print("2.1.197 (Claude Code)")
    sys.exit(0)
if sys.argv[1:3] == ["auth", "status"]:
    print(json.dumps({{"loggedIn": True, "authMethod": "api_key"}}))
    sys.exit(0)
with open({runs!r}, "a") as f:
    f.write(f"{{os.getpid()}}\\n")
sys.stdin.readline()
TRANSCRIPT = open({transcript!r}, "rb").read().splitlines(keepends=True)
def say(lines):
    for line in lines:
        sys.stdout.buffer.write(line)
        sys.stdout.flush()
"""
# Lines of text_stream.jsonl up to and including its first text delta.
_FIRST_TEXT = 5

#: A fault: the Python the stand-in runs after it read its prompt.
FAULTS = {
    "crash": "sys.stderr.write('panic: the CLI broke\\n'); sys.exit(3)",
    "signal": "os.kill(os.getpid(), signal.SIGSEGV)",
    "garbage": "sys.stdout.buffer.write(b'not json at all\\n\\x00\\xff\\xfe{\"half\": \\n'); "
               "sys.stdout.flush()",
    "huge line": "sys.stdout.buffer.write(b'{\"type\": \"' + b'x' * 200_000 + b'\"}\\n'); "
                 "sys.stdout.flush(); time.sleep(3600)",
    "stderr flood then exit": "[sys.stderr.buffer.write(b'e' * 1023 + b'\\n') "
                              "for _ in range(8 * 1024)]; sys.stderr.write('LAST WORDS\\n'); "
                              "sys.exit(1)",
    "stderr flood then answer": "[sys.stderr.buffer.write(b'e' * 1023 + b'\\n') "
                                "for _ in range(8 * 1024)]; say(TRANSCRIPT)",
    "silent": "time.sleep(3600)",
    "silent after text": f"say(TRANSCRIPT[:{_FIRST_TEXT}]); time.sleep(3600)",
}

ANSWER = "Streaming works: this answer arrives as several small text deltas."
FIRST_DELTA = "Streaming works: "


def chat(stream: bool) -> bytes:
    return json.dumps({"model": "sonnet", "stream": stream,
                       "messages": [{"role": "user", "content": "hi"}]}).encode()


async def post(app: App, stream: bool) -> Response:
    return await request(app, "POST", "/v1/chat/completions", body=chat(stream))


def error_of(response: Response) -> dict[str, Any]:
    body = response.json()
    assert set(body) == {"error"}, body
    error: dict[str, Any] = body["error"]
    assert isinstance(error["message"], str) and error["type"] == "server_error", error
    return error


class StandIn:
    """A stand-in `claude` at ``command`` running ``fault``; ``pids()`` lists its runs."""

    def __init__(self, home: Path, fault: str) -> None:
        home.mkdir(parents=True, exist_ok=True)
        self.command = home / "claude"
        self.runs = home / "runs"
        preamble = _PREAMBLE.format(runs=str(self.runs),
                                    transcript=str(TRANSCRIPTS / "text_stream.jsonl"))
        self.command.write_text(f"#!{sys.executable}\n{preamble}{fault}\n")
        self.command.chmod(0o755)

    def pids(self) -> list[int]:
        return [int(p) for p in self.runs.read_text().split()] if self.runs.exists() else []


async def assert_reaped(pids: list[int]) -> None:
    """Every run's process is gone and reaped (deadline: the test's fail_after guard)."""
    assert pids
    while any(read_info(pid) is not None for pid in pids):
        await trio.sleep(0.05)


OpenApp = Callable[..., AbstractAsyncContextManager[App]]


@pytest.fixture
def open_app(make_settings: SettingsFactory) -> OpenApp:
    """``async with open_app(command, **claude_settings) as app``: started through its
    lifespan, no warm pool, no retry backoff, short timeouts (the stand-ins that hang
    never answer, so how short changes nothing but the wait)."""

    @asynccontextmanager
    async def open_(command: Path | str, **claude: Any) -> AsyncIterator[App]:
        settings = make_settings(
            claude={"command": str(command), "retry_backoff_seconds": 0,
                    "first_output_timeout_seconds": 2, "idle_timeout_seconds": 2,
                    "kill_grace_seconds": 1, **claude},
            pool={"size": 0, "idle_seconds": 0})
        served = App(settings)
        async with lifespan(served):
            yield served

    return open_


@pytest.mark.parametrize("kind", ["missing", "not executable"])
async def test_no_usable_cli_is_a_503_and_health_says_so(
        open_app: OpenApp, tmp_path: Path, kind: str) -> None:
    command = tmp_path / "claude"
    if kind == "not executable":
        command.write_text("#!/bin/sh\nexit 0\n")
        command.chmod(0o644)
    async with open_app(command) as app:
        for stream in (False, True):
            response = await post(app, stream)
            assert response.status == 503, response.body
            assert error_of(response)["code"] == "cli_unavailable"
            assert "claude.command" in error_of(response)["message"]
        health = await request(app, "GET", "/health")
        assert health.status == 503


@pytest.mark.parametrize("stream", [False, True])
async def test_a_cli_gone_after_start_up_is_a_503(
        open_app: OpenApp, tmp_path: Path, stream: bool) -> None:
    cli = StandIn(tmp_path / "cli", FAULTS["crash"])
    async with open_app(cli.command, start_retries=1) as app:
        cli.command.unlink()
        response = await post(app, stream)
        assert response.status == 503, response.body
        assert error_of(response)["code"] == "cli_unavailable"
        assert response.header("x-should-retry") is not None
        listed = await request(app, "GET", "/v1/conversations")
        assert listed.json()["data"] == []  # the refused first turn left no conversation


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize(("fault", "code", "words"), [
    ("crash", "cli_exited", ["exited with code 3", "panic: the CLI broke"]),
    ("signal", "cli_exited", ["SIGSEGV"]),
    ("garbage", "cli_exited", ["without a result"]),
    ("stderr flood then exit", "cli_exited", ["exited with code 1", "LAST WORDS"]),
])
async def test_a_cli_that_dies_without_a_result_is_a_502_after_its_start_retries(
        open_app: OpenApp, tmp_path: Path, fault: str, code: str, words: list[str],
        stream: bool) -> None:
    cli = StandIn(tmp_path / "cli", FAULTS[fault])
    async with open_app(cli.command, start_retries=2) as app:
        response = await post(app, stream)
        assert response.status == 502, response.body
        error = error_of(response)
        assert error["code"] == code
        assert all(word in error["message"] for word in words), error["message"]
        # Bounded: a flood on stderr reaches the client as its last line, not megabytes.
        assert len(response.body) < 2048
        # Died before any output: a new process could do better, so it was started again.
        assert len(cli.pids()) == 3
        await assert_reaped(cli.pids())
        listed = await request(app, "GET", "/v1/conversations")
        assert listed.json()["data"] == []


@pytest.mark.parametrize("stream", [False, True])
async def test_a_line_over_max_line_bytes_is_a_502_and_the_cli_is_stopped(
        open_app: OpenApp, tmp_path: Path, stream: bool) -> None:
    cli = StandIn(tmp_path / "cli", FAULTS["huge line"])
    async with open_app(cli.command, max_line_bytes=65536, start_retries=0) as app:
        response = await post(app, stream)
        assert response.status == 502, response.body
        error = error_of(response)
        assert error["code"] == "cli_output_too_large" and "65536" in error["message"]
        assert len(response.body) < 2048
        await assert_reaped(cli.pids())  # it would have slept for an hour


@pytest.mark.parametrize("stream", [False, True])
async def test_a_stderr_flood_does_not_block_a_good_answer(
        open_app: OpenApp, tmp_path: Path, stream: bool) -> None:
    cli = StandIn(tmp_path / "cli", FAULTS["stderr flood then answer"])
    async with open_app(cli.command, stderr_tail_bytes=4096) as app:
        response = await post(app, stream)
        assert response.status == 200, response.body
        if stream:
            data = [json.loads(d) for _, d in sse_events(response.body) if d != "[DONE]"]
            text = "".join(c["choices"][0]["delta"].get("content") or "" for c in data)
        else:
            text = response.json()["choices"][0]["message"]["content"]
        assert text == ANSWER


@pytest.mark.parametrize("stream", [False, True])
async def test_a_silent_cli_is_a_504_and_is_stopped(
        open_app: OpenApp, tmp_path: Path, stream: bool) -> None:
    cli = StandIn(tmp_path / "cli", FAULTS["silent"])
    async with open_app(cli.command) as app:
        response = await post(app, stream)
        assert response.status == 504, response.body
        error = error_of(response)
        assert error["code"] == "timeout" and response.header("x-should-retry") == "true"
        assert len(cli.pids()) == 1  # a timeout is never re-run by the server
        await assert_reaped(cli.pids())


async def test_a_cli_silent_after_its_first_text(open_app: OpenApp, tmp_path: Path) -> None:
    cli = StandIn(tmp_path / "cli", FAULTS["silent after text"])
    async with open_app(cli.command) as app:
        # Streamed: the text came, then a final error event and [DONE], never a finish.
        streamed = await post(app, True)
        assert streamed.status == 200
        *events, done = [data for _, data in sse_events(streamed.body)]
        assert done == "[DONE]"
        *chunks, last = [json.loads(e) for e in events]
        assert "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks) \
            == FIRST_DELTA
        assert all(c["choices"][0]["finish_reason"] is None for c in chunks)
        assert last["error"]["code"] == "timeout"
        # Not streamed: nothing was sent yet, so the timeout is the status.
        whole = await post(app, False)
        assert whole.status == 504 and error_of(whole)["code"] == "timeout"
        await assert_reaped(cli.pids())

