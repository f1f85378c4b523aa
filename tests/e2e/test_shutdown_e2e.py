"""A graceful shutdown whose grace runs out with streams open, through the real gateway,
the real CLI and the fake upstream: every open stream ends in its own words.

The upstream sends one chunk and then hangs, so each stream is still open when the grace
ends, however slow the machine; the grace starts only once all of them are streaming.
"""

from __future__ import annotations

import json
import signal
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from tests.support.e2e import gateway_env
from tests.support.fakeapi import running_fakeapi
from tests.support.gateway import running_gateway

pytestmark = [pytest.mark.reliability]

__all__: list[str] = []

HANG = {"chunks": ["first "], "hang": "after_chunks"}


def hanging(prompt: str) -> str:
    return f"{prompt} [[fake {json.dumps(HANG)}]]"


def data_lines(lines: Iterator[str], until: str) -> list[str]:
    """SSE ``data:`` payloads read until one contains ``until`` (included)."""
    out = []
    for line in lines:
        if line.startswith("data: "):
            out.append(line[6:])
            if until in line:
                return out
    raise AssertionError(f"stream ended before {until!r}: {out}")


def test_streams_open_when_the_grace_runs_out_end_cleanly(tmp_path: Path) -> None:
    with running_fakeapi(tmp_path) as fake, ExitStack() as stack:
        env = gateway_env(fake, tmp_path, server__graceful_timeout_seconds="2",
                          server__sse_keepalive_seconds="600", pool__size="0",
                          pool__idle_seconds="0")
        gw = stack.enter_context(running_gateway(env))
        http = stack.enter_context(httpx.Client(timeout=60))
        chat = stack.enter_context(http.stream("POST", f"{gw.v1}/chat/completions", json={
            "model": "sonnet", "stream": True,
            "messages": [{"role": "user", "content": hanging("chat")}]}))
        assert chat.status_code == 200
        chat_lines = chat.iter_lines()
        data_lines(chat_lines, '"first "')
        responses = stack.enter_context(http.stream("POST", f"{gw.v1}/responses", json={
            "model": "sonnet", "stream": True, "input": hanging("responses")}))
        assert responses.status_code == 200
        responses_lines = responses.iter_lines()
        data_lines(responses_lines, "response.output_text.delta")
        ws = stack.enter_context(connect(gw.base_url.replace("http://", "ws://") + "/v1/ws"))
        ws.send(json.dumps({"type": "chat.completions.create", "id": "r1", "request": {
            "model": "sonnet", "messages": [{"role": "user", "content": hanging("ws")}]}}))
        while json.loads(ws.recv(timeout=60))["type"] != "chunk":
            pass

        gw.proc.send_signal(signal.SIGTERM)

        # Chat: an error event, then [DONE], then the body's clean end (httpx raises on a
        # chunked body cut short).
        tail = data_lines(chat_lines, "[DONE]")
        assert tail[-1] == "[DONE]"
        error = json.loads(tail[-2])["error"]
        assert error["code"] == "server_shutting_down"
        assert [line for line in chat_lines if line] == []
        # Responses: the terminal response.failed event, then the clean end.
        tail = data_lines(responses_lines, "response.failed")
        failed = json.loads(tail[-1])
        assert failed["type"] == "response.failed"
        # The Responses API has its own error codes; the message says why.
        assert "shutting down" in failed["response"]["error"]["message"]
        assert [line for line in responses_lines if line] == []
        # WebSocket: a close frame saying "going away", not a dropped connection.
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                ws.recv(timeout=60)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1001
        assert gw.proc.wait(timeout=60) == 0
