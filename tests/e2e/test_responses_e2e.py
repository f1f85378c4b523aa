"""POST/GET /v1/responses through the real gateway, the real CLI and the fake upstream, driven
by the official openai SDK (and raw httpx where the exact wire matters)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from tests.support.e2e import gateway_env, upstream_turns
from tests.support.fakeapi import FakeAPI, running_fakeapi
from tests.support.gateway import Gateway, process_tree, running_gateway, wait_until
from tests.support.openai_schema import validate


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[FakeAPI, Gateway]]:
    tmp = tmp_path_factory.mktemp("responses")
    with running_fakeapi(tmp) as fake:
        # No process outlives its turn, so "no process left" means just that. The
        # keep-alive never fires here: a cold CLI on a slow machine takes longer than any
        # short one, and an early keep-alive commits the 200 before an upstream error.
        env = gateway_env(fake, tmp, server__sse_keepalive_seconds="600", pool__size="0",
                          pool__idle_seconds="0")
        with running_gateway(env) as gw:
            yield fake, gw


@pytest.fixture(scope="module")
def sdk(stack: tuple[FakeAPI, Gateway]) -> Iterator[openai.OpenAI]:
    # Closed before the gateway stops: an open keep-alive connection slows its shutdown.
    with openai.OpenAI(base_url=stack[1].v1, api_key="unused", max_retries=0,
                       timeout=60) as c:
        yield c


def say(prompt: str, **script: object) -> str:
    return f"{prompt} [[fake {json.dumps(script)}]]"


def sse_events(response: httpx.Response) -> list[tuple[str, dict[str, Any]]]:
    """(event name, data) of every SSE event of a streamed body."""
    events = []
    for block in response.text.split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        if "data" in lines:
            events.append((lines.get("event", ""), json.loads(lines["data"])))
    return events


def test_non_streaming(stack: tuple[FakeAPI, Gateway], sdk: openai.OpenAI) -> None:
    fake, _ = stack
    raw = sdk.responses.with_raw_response.create(
        model="sonnet", instructions="INSTRUCTIONS-MARKER-5",
        input=say("hi", text="Hello there, world"), metadata={"k": "v"})
    r = raw.parse()
    assert r.output_text == "Hello there, world" and r.status == "completed"
    assert r.id.startswith("resp_") and r.output[0].id.startswith("msg_")
    assert r.usage is not None and r.usage.output_tokens > 0 and r.usage.total_tokens == \
        r.usage.input_tokens + r.usage.output_tokens
    assert r.instructions == "INSTRUCTIONS-MARKER-5" and r.metadata == {"k": "v"}
    assert raw.headers["x-conversation-id"] == r.conversation_id  # type: ignore[attr-defined]
    validate(json.loads(raw.http_response.content), "Response")
    systems = [json.dumps(q["body"].get("system")) for q in fake.messages_requests()]
    assert any("INSTRUCTIONS-MARKER-5" in s for s in systems)


def test_streaming_with_the_sdk(sdk: openai.OpenAI) -> None:
    events = list(sdk.responses.create(
        model="sonnet", stream=True, input=[{"role": "user", "content": [
            {"type": "input_text", "text": say("go", chunks=["one ", "two ", "three"])}]}]))
    types = [e.type for e in events]
    assert types[:4] == ["response.created", "response.in_progress", "response.output_item.added",
                         "response.content_part.added"]
    assert types[-4:] == ["response.output_text.done", "response.content_part.done",
                          "response.output_item.done", "response.completed"]
    deltas = [e.delta for e in events if e.type == "response.output_text.delta"]  # type: ignore[union-attr]
    assert deltas == ["one ", "two ", "three"]
    assert [e.sequence_number for e in events] == list(range(len(events)))
    final = events[-1].response  # type: ignore[union-attr]
    assert final.output_text == "one two three" and final.usage is not None


def test_streaming_wire_matches_the_schemas(stack: tuple[FakeAPI, Gateway]) -> None:
    _, gw = stack
    body = {"model": "sonnet", "stream": True, "input": say("wire", chunks=["a", "b"])}
    with httpx.Client(base_url=gw.v1, timeout=60) as h:
        response = h.post("/responses", json=body)
    assert response.headers["content-type"].startswith("text/event-stream")
    assert "[DONE]" not in response.text
    events = sse_events(response)
    assert all(name == data["type"] for name, data in events)
    for _, data in events:
        validate(data, "ResponseStreamEvent")
    assert events[-1][1]["type"] == "response.completed"


def test_previous_response_id_continues_the_claude_session(stack: tuple[FakeAPI, Gateway], sdk: openai.OpenAI) -> None:
    fake, _ = stack
    first = sdk.responses.create(model="sonnet", input=say("PREV-ONE", text="Reply one"))
    second = sdk.responses.create(model="sonnet", input=say("PREV-TWO", text="Reply two"),
                                  previous_response_id=first.id, stream=True)
    done = next(e for e in second if e.type == "response.completed").response  # type: ignore[union-attr]
    assert done.output_text == "Reply two" and done.previous_response_id == first.id
    turns = upstream_turns(fake, "PREV-TWO")
    # The first turn is in the session as real messages, not quoted into the prompt.
    assert [r for r, _ in turns] == ["user", "assistant", "user"]
    assert "PREV-ONE" in turns[0][1] and turns[1][1] == "Reply one"
    assert "PREV-ONE" not in turns[2][1]
    third = sdk.responses.create(model="sonnet", input=say("PREV-3", text="Three"),
                                 previous_response_id=done.id)
    assert [r for r, _ in upstream_turns(fake, "PREV-3")] == ["user", "assistant"] * 2 + ["user"]
    assert third.conversation_id == first.conversation_id  # type: ignore[attr-defined]
    # Stored responses come back as they were sent.
    got = sdk.responses.retrieve(first.id)
    assert got.output_text == "Reply one" and got.id == first.id


def test_unknown_ids_are_404_before_any_cli_runs(stack: tuple[FakeAPI, Gateway], sdk: openai.OpenAI) -> None:
    fake, _ = stack
    before = len(fake.messages_requests())
    with pytest.raises(openai.NotFoundError) as info:
        sdk.responses.create(model="sonnet", input="x", previous_response_id="resp_nope")
    assert info.value.body["param"] == "previous_response_id"  # type: ignore[index]
    assert info.value.body["code"] == "previous_response_not_found"  # type: ignore[index]
    with pytest.raises(openai.NotFoundError):
        sdk.responses.retrieve("resp_nope")
    assert len(fake.messages_requests()) == before
    # store=false: answered, never stored.
    unstored = sdk.responses.create(model="sonnet", input=say("nostore", text="ok"),
                                    store=False)
    assert unstored.output_text == "ok" and unstored.store is False
    with pytest.raises(openai.NotFoundError):
        sdk.responses.retrieve(unstored.id)


def test_bad_requests_name_the_field(stack: tuple[FakeAPI, Gateway]) -> None:
    _, gw = stack
    with httpx.Client(base_url=gw.base_url, timeout=30) as h:
        bad = h.post("/responses", json={"input": [{"role": "user", "content": [
            {"type": "input_file", "file_id": "f"}]}]})
        assert bad.status_code == 400
        assert bad.json()["error"]["param"] == "input[0].content[0].type"
        tools = h.post("/v1/responses", json={"input": "x", "tools": [
            {"type": "web_search"}, {"type": "function", "name": "bad name"}]})
        assert tools.status_code == 400 and tools.json()["error"]["param"] == "tools[1].name"
        assert h.post("/v1/responses", content=b"{nope").status_code == 400
        assert h.get("/v1/responses").status_code == 405


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.reliability
def test_upstream_error_before_text_keeps_its_status(sdk: openai.OpenAI, stream: bool) -> None:
    with pytest.raises(openai.RateLimitError):
        result = sdk.responses.create(model="sonnet", stream=stream,
                                      input=say("x", error={"status": 429}))
        if stream:
            list(result)  # type: ignore[call-overload]


@pytest.mark.reliability
def test_failure_after_text_is_response_failed(sdk: openai.OpenAI) -> None:
    # Text, a tool call, then the next upstream call fails: the turn fails after content.
    steps = [{"text": "Working on it.", "tool_use": {"name": "Bash", "input": {"command": "true"}}},
             {"error": {"status": 500}}]
    events = list(sdk.responses.create(model="sonnet", stream=True,
                                       input=say("mid", steps=steps)))
    assert any(e.type == "response.output_text.delta" for e in events)
    last = events[-1]
    assert last.type == "response.failed"
    assert last.response.status == "failed" and last.response.error is not None  # type: ignore[union-attr]


def test_silence_gets_keepalive_data_events(stack: tuple[FakeAPI, Gateway],
                                           tmp_path: Path) -> None:
    fake, _ = stack
    # Its own gateway with a 0.5 s status hold and a 1 s keep-alive; the upstream stays
    # silent for 2.5 s after the CLI asked, which is after the hold started, so the hold
    # runs out and a keep-alive falls due however long the CLI took to start.
    env = gateway_env(fake, tmp_path, server__sse_keepalive_seconds="1",
                      server__status_hold_seconds="0.5", pool__size="0",
                      pool__idle_seconds="0")
    body = {"model": "sonnet", "stream": True,
            "input": say("slow", chunks=["late"], first_delay_ms=2500)}
    with running_gateway(env) as gw, httpx.Client(base_url=gw.v1, timeout=60) as h:
        events = [data for _, data in sse_events(h.post("/responses", json=body))]
    kinds = [e["type"] for e in events]
    assert "keepalive" in kinds and kinds[-1] == "response.completed"
    assert [e["sequence_number"] for e in events] == list(range(len(events)))


@pytest.mark.reliability
def test_disconnect_mid_stream_leaves_no_process(stack: tuple[FakeAPI, Gateway], sdk: openai.OpenAI) -> None:
    _, gw = stack
    stream = sdk.responses.create(model="sonnet", stream=True,
                                  input=say("hang", chunks=["a"], hang="after_chunks"))
    for event in stream:
        if event.type == "response.output_text.delta":
            break
    assert process_tree(gw.proc.pid)
    stream.close()
    assert wait_until(lambda: not process_tree(gw.proc.pid), timeout=15), process_tree(gw.proc.pid)
