"""Client tools and structured output on the Responses API, end to end: the openai SDK (and
raw HTTP and WebSocket frames where the exact wire matters), the real gateway, the real CLI
and the fake upstream scripted to call the client's tools.

A response that calls tools ends there; the CLI turn waits, and the next request's
``function_call_output`` items answer the held calls, found by ``previous_response_id`` or,
with ``store: false`` and the whole history resent (Codex), by the history fingerprint.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.sync.client import connect

from tests.support.e2e import client, directive, gateway_env
from tests.support.fakeapi import FakeAPI, running_fakeapi
from tests.support.gateway import Gateway, running_gateway
from tests.support.openai_schema import validate

WEATHER = {"type": "function", "name": "get_weather", "description": "The weather in a city.",
           "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                          "required": ["city"]}, "strict": True}
TIME = {"type": "function", "name": "get_time", "description": "The time in a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        "strict": False}
PATCH = {"type": "custom", "name": "apply_patch", "description": "Apply a patch.",
         "format": {"type": "grammar", "syntax": "lark", "definition": "start: /.+/"}}
CODEX = Path(__file__).resolve().parents[1] / "data" / "codex"
HOSTED = [{"type": "web_search", "external_web_access": False},
          {"type": "namespace", "name": "multi_agent_v1", "description": "agents",
           "tools": [{"type": "function", "name": "spawn_agent", "parameters": {}}]}]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[FakeAPI, Gateway]]:
    tmp = tmp_path_factory.mktemp("responses-tools")
    with running_fakeapi(tmp) as fake:
        env = gateway_env(fake, tmp, server__sse_keepalive_seconds="600", pool__size="0")
        with running_gateway(env) as gw:
            yield fake, gw


def weather(prompt: str) -> str:
    return prompt + " " + directive(steps=[
        {"text": "Let me check.", "tool_use": {"name": "get_weather", "input": {"city": "Paris"}}},
        {"text": "It is sunny in Paris."}])


def tool_results(fake: FakeAPI) -> list[dict[str, Any]]:
    """The tool_result blocks of the last upstream request."""
    request = fake.messages_requests()[-1]
    return [b for m in request["body"]["messages"] if isinstance(m["content"], list)
            for b in m["content"] if b.get("type") == "tool_result"]


def sse_events(response: httpx.Response) -> list[dict[str, Any]]:
    events = []
    for block in response.text.split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        if "data" in lines:
            event = json.loads(lines["data"])
            assert lines.get("event") == event["type"]
            events.append(event)
    return events


def check_stream(events: list[dict[str, Any]]) -> None:
    """Every event and the final response match OpenAI's schemas, in sequence."""
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    for event in events:
        validate(event, "ResponseStreamEvent")
    validate(events[-1]["response"], "Response")


def test_function_tool_loop_via_previous_response_id(stack: tuple[FakeAPI, Gateway]) -> None:
    fake, gw = stack
    api = client(gw)
    raw = api.responses.with_raw_response.create(model="sonnet", tools=[WEATHER],  # type: ignore[list-item]
                                                 input=weather("PREV-ID weather?"))
    validate(json.loads(raw.http_response.content), "Response")
    first = raw.parse()
    assert first.status == "completed" and first.output_text == "Let me check."
    message, call = first.output
    assert message.type == "message" and call.type == "function_call"
    assert call.id.startswith("fc_") and call.status == "completed"  # type: ignore[union-attr]
    assert call.name == "get_weather" and json.loads(call.arguments) == {"city": "Paris"}
    assert first.usage is not None and first.usage.output_tokens > 0
    assert first.tools[0].name == "get_weather"  # type: ignore[union-attr]
    second = api.responses.create(model="sonnet", tools=[WEATHER],  # type: ignore[list-item]
                                  previous_response_id=first.id, input=[{
                                      "type": "function_call_output", "call_id": call.call_id,
                                      "output": "sunny, 21C"}])
    assert second.status == "completed" and second.output_text == "It is sunny in Paris."
    assert second.conversation_id == first.conversation_id  # type: ignore[attr-defined]
    # Upstream: the genuine pair, in the same CLI turn, the result as the client sent it.
    (result,) = tool_results(fake)
    assert result["tool_use_id"] == call.call_id and "sunny, 21C" in json.dumps(result)


def test_store_false_full_history_streamed(stack: tuple[FakeAPI, Gateway]) -> None:
    """What Codex does: no ids, every request resends all input plus the call and result
    items; streamed, each event checked against OpenAI's schemas."""
    fake, gw = stack
    body: dict[str, Any] = {
        "model": "sonnet", "stream": True, "store": False, "tools": [WEATHER, *HOSTED],
        "tool_choice": "auto", "parallel_tool_calls": True, "reasoning": {"summary": "auto"},
        "include": ["reasoning.encrypted_content"], "prompt_cache_key": "k",
        "input": [{"type": "message", "role": "developer",
                   "content": [{"type": "input_text", "text": "You are a coding agent."}]},
                  {"type": "message", "role": "user",
                   "content": [{"type": "input_text", "text": weather("FULL-HISTORY")}]}]}
    with httpx.Client(base_url=gw.v1, timeout=60) as h:
        first = h.post("/responses", json=body)
        assert first.status_code == 200
        assert first.headers["x-ccserver-dropped-tools"] == "web_search,namespace:multi_agent_v1"
        events = sse_events(first)
        check_stream(events)
        kinds = [e["type"] for e in events]
        at = kinds.index("response.output_item.added", kinds.index("response.output_text.done"))
        assert kinds[at:] == [
            "response.output_item.added", *["response.function_call_arguments.delta"] *
            kinds.count("response.function_call_arguments.delta"),
            "response.function_call_arguments.done", "response.output_item.done",
            "response.completed"]
        added = events[at]["item"]
        assert added["type"] == "function_call" and added["arguments"] == ""
        deltas = "".join(e["delta"] for e in events
                         if e["type"] == "response.function_call_arguments.delta")
        final = events[-1]["response"]
        assert final["status"] == "completed" and final["usage"]["total_tokens"] > 0
        message, call = final["output"]
        assert message["content"][0]["text"] == "Let me check."
        assert json.loads(deltas) == json.loads(call["arguments"]) == {"city": "Paris"}
        conversation = first.headers["x-conversation-id"]
        # The next request: everything again, plus the output items and the result.
        body["input"] = [*body["input"], message, call, {
            "type": "function_call_output", "call_id": call["call_id"], "output": "sunny"}]
        second = h.post("/responses", json=body)
        assert second.status_code == 200
        assert second.headers["x-conversation-id"] == conversation
        events = sse_events(second)
        check_stream(events)
        assert events[-1]["response"]["output"][0]["content"][0]["text"] == \
            "It is sunny in Paris."
    (result,) = tool_results(fake)
    assert result["tool_use_id"] == call["call_id"]


def test_parallel_calls_answered_in_one_request(stack: tuple[FakeAPI, Gateway]) -> None:
    fake, gw = stack
    api = client(gw)
    script = directive(steps=[
        {"tool_uses": [{"name": "get_weather", "input": {"city": "Paris"}},
                       {"name": "get_time", "input": {"city": "Paris"}}]},
        {"text": "Sunny, and it is noon."}])
    events = list(api.responses.create(model="sonnet", stream=True, tools=[WEATHER, TIME],  # type: ignore[list-item]
                                       input="PARALLEL both? " + script))
    first = events[-1].response  # type: ignore[union-attr]
    calls = [item for item in first.output if item.type == "function_call"]
    assert [c.name for c in calls] == ["get_weather", "get_time"]
    assert [i.type for i in first.output] == ["function_call", "function_call"]
    second = api.responses.create(model="sonnet", tools=[WEATHER, TIME],  # type: ignore[list-item]
                                  previous_response_id=first.id, input=[
                                      {"type": "function_call_output", "call_id": c.call_id,
                                       "output": f"result of {c.name}"}
                                      for c in reversed(calls)])
    assert second.output_text == "Sunny, and it is noon."
    assert sorted(r["tool_use_id"] for r in tool_results(fake)) == sorted(c.call_id for c in calls)


def test_custom_tool_call_and_its_output(stack: tuple[FakeAPI, Gateway]) -> None:
    _, gw = stack
    api = client(gw)
    script = directive(steps=[
        {"tool_use": {"name": "apply_patch", "input": {"input": "*** Begin Patch"}}},
        {"text": "Patched."}])
    first = api.responses.create(model="sonnet", tools=[PATCH], store=False,  # type: ignore[list-item]
                                 input="CUSTOM patch it " + script)
    (call,) = first.output
    assert call.type == "custom_tool_call" and call.input == "*** Begin Patch"
    assert call.id.startswith("ctc_")  # type: ignore[union-attr]
    second = api.responses.create(model="sonnet", tools=[PATCH], store=False,  # type: ignore[list-item]
                                  input=[{"role": "user", "content": "CUSTOM patch it " + script},
                                         call.model_dump(exclude_none=True),  # type: ignore[list-item]
                                         {"type": "custom_tool_call_output",
                                          "call_id": call.call_id, "output": "ok"}])
    assert second.output_text == "Patched."
    assert second.conversation_id == first.conversation_id  # type: ignore[attr-defined]


def test_hosted_tools_are_dropped_and_named_in_a_header(stack: tuple[FakeAPI, Gateway]) -> None:
    _, gw = stack
    raw = client(gw).responses.with_raw_response.create(
        model="sonnet", tools=[*HOSTED, {"type": "file_search", "vector_store_ids": ["vs"]}],  # type: ignore[list-item]
        tool_choice={"type": "file_search"},  # type: ignore[arg-type]
        input="DROPPED hi " + directive(text="Hello."))
    assert raw.headers["x-ccserver-dropped-tools"] == \
        "web_search,namespace:multi_agent_v1,file_search"
    response = raw.parse()
    assert response.output_text == "Hello." and response.tools == []


def test_text_format_json_schema_returns_the_object(stack: tuple[FakeAPI, Gateway]) -> None:
    fake, gw = stack
    schema = {"type": "object", "properties": {"name": {"type": "string"},
                                               "age": {"type": "integer", "minimum": 0}},
              "required": ["name", "age"], "additionalProperties": False}
    script = directive(steps=[
        {"tool_use": {"name": "StructuredOutput", "input": {"name": "Bob", "age": 3}}}])
    response = client(gw).responses.create(
        model="sonnet", input="STRUCTURED who? " + script,
        text={"format": {"type": "json_schema", "name": "person", "schema": schema,
                         "strict": True}})
    assert response.status == "completed"
    assert json.loads(response.output_text) == {"name": "Bob", "age": 3}
    assert response.text.format.type == "json_schema"  # type: ignore[union-attr]
    tools = fake.messages_requests()[-1]["body"]["tools"]
    assert any(t["name"] == "StructuredOutput" for t in tools)


def test_websocket_mode_tool_loop(stack: tuple[FakeAPI, Gateway]) -> None:
    fake, gw = stack
    url = gw.base_url.replace("http://", "ws://") + "/v1/responses"

    def until_done(ws: Any) -> list[dict[str, Any]]:
        events = []
        while True:
            events.append(json.loads(ws.recv(timeout=60)))
            if events[-1]["type"] in ("response.completed", "response.failed", "error"):
                return events

    with connect(url) as ws:
        ws.send(json.dumps({"type": "response.create", "model": "sonnet", "store": False,
                            "tools": [WEATHER, *HOSTED], "input": weather("WS-TOOLS")}))
        events = until_done(ws)
        check_stream(events)
        call = events[-1]["response"]["output"][-1]
        assert call["type"] == "function_call" and call["name"] == "get_weather"
        # store=false: continued on this connection by previous_response_id.
        ws.send(json.dumps({"type": "response.create", "model": "sonnet", "tools": [WEATHER],
                            "previous_response_id": events[-1]["response"]["id"],
                            "input": [{"type": "function_call_output",
                                       "call_id": call["call_id"], "output": "sunny"}]}))
        events = until_done(ws)
        check_stream(events)
        assert events[-1]["response"]["output"][0]["content"][0]["text"] == \
            "It is sunny in Paris."
    (result,) = tool_results(fake)
    assert result["tool_use_id"] == call["call_id"]


def test_codex_cli_requests(stack: tuple[FakeAPI, Gateway]) -> None:
    """Codex CLI's own first request (recorded: developer prompt, its eight function tools,
    a namespace and web_search, store=false, streamed), then its second as Codex builds it:
    the same input plus the call and its output. Same conversation, same CLI turn."""
    fake, gw = stack
    body = json.loads((CODEX / "first_request.json").read_text())
    body["model"] = "sonnet"
    user = body["input"][-1]["content"][0]
    user["text"] += " " + directive(steps=[
        {"tool_use": {"name": "exec_command", "input": {"cmd": "echo hi"}}},
        {"text": "It printed hi."}])
    with httpx.Client(base_url=gw.v1, timeout=60) as h:
        first = h.post("/responses", json=body)
        assert first.status_code == 200, first.text
        assert first.headers["x-ccserver-dropped-tools"] == "namespace:multi_agent_v1,web_search"
        events = sse_events(first)
        check_stream(events)
        (call,) = events[-1]["response"]["output"]
        assert call["name"] == "exec_command" and json.loads(call["arguments"]) == {
            "cmd": "echo hi"}
        offered = {t["name"] for t in fake.messages_requests()[-1]["body"]["tools"]}
        assert {"exec_command", "write_stdin", "view_image"} <= offered
        assert "spawn_agent" not in offered
        body["input"] += [call, {"type": "function_call_output", "call_id": call["call_id"],
                                 "output": "Process exited with code 0\nOutput:\nhi\n"}]
        second = h.post("/responses", json=body)
        assert second.status_code == 200, second.text
        assert second.headers["x-conversation-id"] == first.headers["x-conversation-id"]
        events = sse_events(second)
        check_stream(events)
        assert events[-1]["response"]["output"][0]["content"][0]["text"] == "It printed hi."
    (result,) = tool_results(fake)
    assert result["tool_use_id"] == call["call_id"]
