"""The real Claude Code CLI against the fake Anthropic API.

These tests prove the fake is good enough for the CLI: every directive feature is driven through
a real ``claude -p --input-format stream-json`` run and checked on the CLI's stdout records and
on the fake's request log. One fake serves the whole module; each run's requests are told apart
by the CLI's ``x-claude-code-session-id`` header. ``CLAUDE_CODE_MAX_RETRIES=0`` (from
``cli_env``) keeps failures to a single request, so nothing waits for retry backoff.
"""

from __future__ import annotations

import json
import socket
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.fakeapi import FakeAPI, run_claude, running_fakeapi

pytestmark = [
    pytest.mark.e2e,
]


class Run:
    """One finished CLI run: its stdout records and the fake's requests for its session."""

    def __init__(self, fake: FakeAPI, rc: int, stdout: bytes, stderr: bytes) -> None:
        self.rc = rc
        self.stderr = stderr.decode(errors="replace")
        self.records = [json.loads(line) for line in stdout.splitlines() if line.strip()]
        results = [r for r in self.records if r["type"] == "result"]
        assert len(results) == 1, (self.records, self.stderr)
        self.result: dict[str, Any] = results[0]
        session = self.result["session_id"]
        self.requests = [
            r
            for r in fake.messages_requests()
            if r["headers"].get("x-claude-code-session-id") == session
        ]

    def events(self, kind: str) -> list[dict[str, Any]]:
        return [
            r["event"]
            for r in self.records
            if r["type"] == "stream_event" and r["event"]["type"] == kind
        ]

    def deltas(self, delta_type: str) -> list[dict[str, Any]]:
        return [
            e["delta"]
            for e in self.events("content_block_delta")
            if e["delta"]["type"] == delta_type
        ]

    def assistant_blocks(self, block_type: str) -> list[dict[str, Any]]:
        return [
            block
            for r in self.records
            if r["type"] == "assistant"
            for block in r["message"]["content"]
            if block["type"] == block_type
        ]


@pytest.fixture(scope="module")
def fake(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeAPI]:
    with running_fakeapi(tmp_path_factory.mktemp("fakeapi")) as api:
        yield api


def claude(
    fake: FakeAPI,
    tmp_path: Path,
    prompt: str,
    *flags: str,
    env: dict[str, str] | None = None,
    timeout: float = 30.0,
) -> Run:
    proc = run_claude(fake, tmp_path, prompt, "--model", "sonnet", *flags, env=env, timeout=timeout)
    return Run(fake, proc.returncode, proc.stdout, proc.stderr)


def _blocks(request: dict[str, Any]) -> list[dict[str, Any]]:
    """All content blocks of the request's user messages."""
    return [
        block
        for message in request["body"]["messages"]
        if message["role"] == "user" and isinstance(message["content"], list)
        for block in message["content"]
    ]


def directive(**step: Any) -> str:
    return f"[[fake {json.dumps(step)}]]"


def test_text_streams_as_several_deltas(fake: FakeAPI, tmp_path: Path) -> None:
    text = "The quick brown fox jumps over the lazy dog."
    run = claude(fake, tmp_path, "Tell me something. " + directive(text=text))

    assert run.rc == 0, run.stderr
    deltas = [d["text"] for d in run.deltas("text_delta")]
    assert len(deltas) >= 3
    assert "".join(deltas) == text
    assert run.result["is_error"] is False
    assert run.result["subtype"] == "success"
    assert run.result["result"] == text
    assert run.result["stop_reason"] == "end_turn"
    (request,) = run.requests
    assert request["body"]["stream"] is True
    # message.model echoes the model the CLI asked for (the alias arrives resolved).
    assistant = next(r for r in run.records if r["type"] == "assistant")
    assert assistant["message"]["model"] == request["body"]["model"]
    assert request["headers"]["x-api-key"] == "sk-t***"


def test_exact_chunks_and_no_directive_default(fake: FakeAPI, tmp_path: Path) -> None:
    run = claude(fake, tmp_path / "a", "hi " + directive(chunks=["Hel", "lo", ", world"]))
    assert [d["text"] for d in run.deltas("text_delta")] == ["Hel", "lo", ", world"]

    run = claude(fake, tmp_path / "b", "a prompt with no directive")
    assert run.result["is_error"] is False
    assert run.result["result"] == "Hello from the fake Anthropic API."


def test_thinking_block_precedes_text(fake: FakeAPI, tmp_path: Path) -> None:
    run = claude(fake, tmp_path, directive(thinking="Let me think it over.", text="Done thinking."))

    assert run.rc == 0, run.stderr
    assert "".join(d["thinking"] for d in run.deltas("thinking_delta")) == "Let me think it over."
    assert len(run.deltas("signature_delta")) == 1
    (thinking,) = run.assistant_blocks("thinking")
    assert thinking["thinking"] == "Let me think it over."
    kinds = [r["message"]["content"][0]["type"] for r in run.records if r["type"] == "assistant"]
    assert kinds == ["thinking", "text"]
    assert run.result["result"] == "Done thinking."


def test_bash_tool_round_trip(fake: FakeAPI, tmp_path: Path) -> None:
    steps = [
        {"text": "Running it.", "tool_use": {"name": "Bash", "input": {"command": "echo hi"}}},
        {"text": "The command printed hi."},
    ]
    run = claude(fake, tmp_path, "run echo " + directive(steps=steps), "--allowedTools", "Bash")

    assert run.rc == 0, run.stderr
    (tool_use,) = run.assistant_blocks("tool_use")
    assert tool_use["name"] == "Bash"
    assert tool_use["input"] == {"command": "echo hi"}
    partial = "".join(d["partial_json"] for d in run.deltas("input_json_delta"))
    assert json.loads(partial) == {"command": "echo hi"}
    stops = [e["delta"]["stop_reason"] for e in run.events("message_delta")]
    assert stops == ["tool_use", "end_turn"]
    assert run.result["result"] == "The command printed hi."
    assert run.result["num_turns"] == 2

    first, second = run.requests
    assert not any(block.get("type") == "tool_result" for block in _blocks(first))
    tool_results = [block for block in _blocks(second) if block.get("type") == "tool_result"]
    assert [b["tool_use_id"] for b in tool_results] == [tool_use["id"]]
    assert "hi" in json.dumps(tool_results[0]["content"])


@pytest.mark.parametrize(
    ("status", "needle"),
    [
        (401, "Invalid API key"),
        (429, "429"),
        (500, "500"),
        (529, "529"),
    ],
)
def test_http_error_is_error_result(
    fake: FakeAPI, tmp_path: Path, status: int, needle: str
) -> None:
    run = claude(fake, tmp_path, directive(error={"status": status}))

    assert run.rc == 1
    assert run.result["is_error"] is True
    assert run.result["api_error_status"] == status
    assert needle in run.result["result"]
    assert len(run.requests) == 1  # CLAUDE_CODE_MAX_RETRIES=0
    synthetic = [r for r in run.records if r["type"] == "assistant"]
    assert synthetic[-1]["message"]["model"] == "<synthetic>"


def test_error_times_then_success_after_retry(fake: FakeAPI, tmp_path: Path) -> None:
    step = {"text": "Recovered.", "error": {"status": 529, "times": 1}}
    run = claude(fake, tmp_path, directive(**step), env={"CLAUDE_CODE_MAX_RETRIES": "1"})

    assert run.rc == 0, run.stderr
    retries = [r for r in run.records if r.get("subtype") == "api_retry"]
    assert [r["error_status"] for r in retries] == [529]
    assert run.result["result"] == "Recovered."
    assert len(run.requests) == 2


@pytest.mark.parametrize(
    "fault",
    [
        {"midstream_error": {"after": 2, "type": "overloaded_error", "message": "Overloaded"}},
        {"drop_after": 2},
    ],
    ids=["midstream_error", "drop_after"],
)
def test_broken_stream_falls_back_to_non_streaming(
    fake: FakeAPI, tmp_path: Path, fault: dict[str, Any]
) -> None:
    text = "alpha beta gamma delta epsilon zeta eta theta"
    run = claude(fake, tmp_path, directive(text=text, **fault))

    assert run.rc == 0, run.stderr
    # Two deltas made it out before the break; they are not retracted.
    assert [d["text"] for d in run.deltas("text_delta")] == ["alpha beta ", "gamma delta "]
    assert run.events("message_stop") == []
    (text_block,) = run.assistant_blocks("text")
    assert text_block["text"] == text
    assert run.result["result"] == text
    streamed, fallback = run.requests
    assert streamed["body"]["stream"] is True
    assert "stream" not in fallback["body"]
    assert fallback["headers"]["x-stainless-timeout"] == "300"


def test_hang_before_headers_times_out(fake: FakeAPI, tmp_path: Path) -> None:
    run = claude(fake, tmp_path, directive(hang="before_headers"), env={"API_TIMEOUT_MS": "2000"})

    assert run.rc == 1
    assert run.result["is_error"] is True
    assert run.result["api_error_status"] is None
    assert run.result["result"] == "Request timed out"
    assert len(run.requests) == 1


def test_system_prompt_reaches_the_api(fake: FakeAPI, tmp_path: Path) -> None:
    marker = "You are FAKE-SYSTEM-PROMPT-7."
    run = claude(fake, tmp_path, directive(text="ok"), "--system-prompt", marker)

    assert run.rc == 0, run.stderr
    (request,) = run.requests
    system = request["body"]["system"]
    texts = [system] if isinstance(system, str) else [block["text"] for block in system]
    assert marker in texts


def test_a_peer_reset_mid_reply_ends_its_connection_not_the_fake(fake: FakeAPI) -> None:
    host, port = fake.base_url.removeprefix("http://").split(":")
    body = json.dumps({"model": "sonnet", "max_tokens": 10, "stream": True, "messages": [
        {"role": "user", "content": "flood [[fake " + json.dumps({"text": "a " * 60000}) + "]]"}]})
    for _ in range(20):
        sock = socket.create_connection((host, int(port)))
        # A tiny window, then an RST (SO_LINGER 0) once the reply is flowing.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.sendall(f"POST /v1/messages HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
                     f"content-length: {len(body)}\r\n\r\n{body}".encode())
        assert sock.recv(1024).startswith(b"HTTP/1.1 200")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()
    # Still serving.
    with socket.create_connection((host, int(port))) as sock:
        sock.sendall(b"HEAD / HTTP/1.1\r\nhost: x\r\n\r\n")
        assert sock.recv(1024).startswith(b"HTTP/1.1")
