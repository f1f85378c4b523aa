"""Upstream faults inside a turn, through the real gateway, CLI and fake upstream: an error
mid-stream, a connection dropped mid-stream, a hang before and after the first token.

What the client may see is fixed by the README ("Reliability"): the whole answer exactly
once, or an error; never a truncated answer with ``finish_reason: stop``. A hang gets the
gateway's idle timeout: a 504 before any text, a final error event and ``[DONE]`` after it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from tests.support.asgi_client import sse_events
from tests.support.e2e import client, directive, gateway_env
from tests.support.fakeapi import FakeAPI, running_fakeapi
from tests.support.gateway import Gateway, process_tree, running_gateway, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.reliability]

TEXT = "alpha beta gamma delta epsilon zeta eta theta"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[FakeAPI, Gateway]]:
    tmp = tmp_path_factory.mktemp("faults")
    with running_fakeapi(tmp) as fake:
        # A short idle timeout, so a hang ends in the gateway's own words; no keep-alive,
        # no process kept after its turn, so "no process left" means just that.
        env = gateway_env(fake, tmp, claude__idle_timeout_seconds="4",
                          server__sse_keepalive_seconds="600", pool__size="0",
                          pool__idle_seconds="0")
        with running_gateway(env) as gw:
            yield fake, gw


def stream_chat(gw: Gateway, content: str) -> tuple[int, list[Any]]:
    """Status and the SSE data payloads of one streamed chat completion (``[DONE]`` kept)."""
    with httpx.Client(base_url=gw.v1, timeout=60) as h:
        r = h.post("/chat/completions", json={
            "model": "sonnet", "stream": True,
            "messages": [{"role": "user", "content": content}]})
    if not r.headers.get("content-type", "").startswith("text/event-stream"):
        return r.status_code, [r.json()]
    return r.status_code, [d if d == "[DONE]" else json.loads(d)
                           for _, d in sse_events(r.content)]


def text_of(chunks: list[Any]) -> str:
    return "".join(c["choices"][0]["delta"].get("content") or ""
                   for c in chunks if isinstance(c, dict) and c.get("choices"))


def no_process_left(gw: Gateway) -> None:
    assert wait_until(lambda: not process_tree(gw.proc.pid), timeout=15), process_tree(gw.proc.pid)


@pytest.mark.parametrize("fault", [
    {"midstream_error": {"after": 2, "type": "overloaded_error", "message": "Overloaded"}},
    {"drop_after": 2},
], ids=["midstream_error", "dropped_connection"])
def test_a_broken_upstream_stream_gives_the_whole_answer_once_or_an_error(
        stack: tuple[FakeAPI, Gateway], fault: dict[str, Any]) -> None:
    # The CLI recovers from a broken stream by asking again without streaming; the two
    # deltas it already printed are not retracted.
    _, gw = stack
    status, data = stream_chat(gw, "go " + directive(text=TEXT, **fault))
    assert status == 200 and data[-1] == "[DONE]"
    *chunks, _ = data
    last = chunks[-1]
    if "error" in last:
        assert last["error"]["message"], last
        assert all(c["choices"][0]["finish_reason"] is None for c in chunks[:-1])
    else:
        assert text_of(chunks) == TEXT
        assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    done = client(gw).chat.completions.create(
        model="sonnet", messages=[{"role": "user", "content": "go " + directive(text=TEXT, **fault)}])
    assert done.choices[0].message.content == TEXT
    no_process_left(gw)


def test_an_upstream_error_after_text_ends_the_stream_with_an_error_event(
        stack: tuple[FakeAPI, Gateway]) -> None:
    # Text and a tool call, then the next upstream call fails: the turn fails after content.
    _, gw = stack
    steps = [{"text": "Working on it.", "tool_use": {"name": "Bash", "input": {"command": "true"}}},
             {"error": {"status": 500}}]
    status, data = stream_chat(gw, "mid " + directive(steps=steps))
    assert status == 200 and data[-1] == "[DONE]"
    *chunks, error = data[:-1]
    assert "Working on it." in text_of(chunks)
    assert all(c["choices"][0]["finish_reason"] is None for c in chunks)
    assert error["error"]["type"] == "server_error" and error["error"]["message"]
    with pytest.raises(openai.InternalServerError) as info:
        client(gw).chat.completions.create(
            model="sonnet", messages=[{"role": "user", "content": "mid " + directive(steps=steps)}])
    assert info.value.status_code == 502
    no_process_left(gw)


@pytest.mark.parametrize("stream", [False, True])
def test_a_hang_before_the_first_token_is_a_504(stack: tuple[FakeAPI, Gateway], stream: bool) -> None:
    _, gw = stack
    with pytest.raises(openai.APIStatusError) as info:
        result = client(gw).chat.completions.create(
            model="sonnet", stream=stream,
            messages=[{"role": "user", "content": "wait " + directive(text=TEXT, hang="after_message_start")}])
        if stream:
            list(result)  # type: ignore[arg-type]
    assert info.value.status_code == 504
    assert info.value.response.headers["x-should-retry"] == "true"
    no_process_left(gw)


def test_a_hang_after_the_first_token(stack: tuple[FakeAPI, Gateway]) -> None:
    _, gw = stack
    content = "wait " + directive(chunks=["first ", "second "], hang="after_chunks")
    status, data = stream_chat(gw, content)
    assert status == 200 and data[-1] == "[DONE]"
    *chunks, error = data[:-1]
    assert text_of(chunks) == "first second "
    assert all(c["choices"][0]["finish_reason"] is None for c in chunks)
    assert error["error"]["code"] == "timeout"
    with pytest.raises(openai.APIStatusError) as info:
        client(gw).chat.completions.create(
            model="sonnet", messages=[{"role": "user", "content": content}])
    assert info.value.status_code == 504
    no_process_left(gw)
