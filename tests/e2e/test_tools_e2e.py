"""Client function tools and structured output, end to end: the openai SDK, the real gateway,
the real CLI and the fake upstream scripted to call the client's tools."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.e2e import client, directive, gateway_env
from tests.support.fakeapi import FakeAPI, running_fakeapi
from tests.support.gateway import Gateway, running_gateway

WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "The weather in a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                   "required": ["city"]}}}
TIME = {"type": "function", "function": {
    "name": "get_time", "description": "The time in a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[FakeAPI, Gateway]]:
    tmp = tmp_path_factory.mktemp("tools")
    with running_fakeapi(tmp) as fake:
        env = gateway_env(fake, tmp, server__sse_keepalive_seconds="600", pool__size="0")
        with running_gateway(env) as gw:
            yield fake, gw


def _weather_script(**extra: Any) -> str:
    return directive(steps=[
        {"text": "Let me check.", "tool_use": {"name": "get_weather", "input": {"city": "Paris"}}},
        {"text": "It is sunny in Paris."}], **extra)


def _tool_results(request: dict[str, Any]) -> list[dict[str, Any]]:
    return [b for m in request["body"]["messages"] if isinstance(m["content"], list)
            for b in m["content"] if b.get("type") == "tool_result"]


def test_two_step_tool_loop_non_streaming(stack: tuple[FakeAPI, Gateway]) -> None:
    fake, gw = stack
    api = client(gw)
    messages: list[Any] = [{"role": "user", "content": "Weather? " + _weather_script()}]
    first = api.chat.completions.create(model="sonnet", messages=messages, tools=[WEATHER])
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content == "Let me check."
    (call,) = choice.message.tool_calls or []
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "Paris"}
    messages += [choice.message, {"role": "tool", "tool_call_id": call.id, "content": "sunny, 21C"}]
    second = api.chat.completions.create(model="sonnet", messages=messages, tools=[WEATHER])
    assert second.choices[0].finish_reason == "stop"
    assert second.choices[0].message.content == "It is sunny in Paris."
    # Upstream: the genuine pair, in the same turn, the result as the client sent it.
    last = fake.messages_requests()[-1]
    (result,) = _tool_results(last)
    assert result["tool_use_id"] == call.id
    assert "sunny, 21C" in json.dumps(result["content"])
    tools = [t["name"] for t in last["body"]["tools"]]
    assert tools == ["get_weather"]


def test_two_step_tool_loop_streaming(stack: tuple[FakeAPI, Gateway]) -> None:
    _, gw = stack
    api = client(gw)
    messages: list[Any] = [{"role": "user", "content": "Weather? " + _weather_script()}]
    chunks = list(api.chat.completions.create(model="sonnet", messages=messages, tools=[WEATHER],
                                              stream=True))
    pieces = [tc for c in chunks if c.choices for tc in (c.choices[0].delta.tool_calls or [])]
    assert pieces[0].id and pieces[0].function and pieces[0].function.name == "get_weather"
    arguments = "".join(p.function.arguments or "" for p in pieces if p.function)
    assert json.loads(arguments) == {"city": "Paris"}
    assert chunks[-1].choices[0].finish_reason == "tool_calls"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    messages += [{"role": "assistant", "content": text, "tool_calls": [
        {"id": pieces[0].id, "type": "function",
         "function": {"name": "get_weather", "arguments": arguments}}]},
        {"role": "tool", "tool_call_id": pieces[0].id, "content": "sunny"}]
    rest = list(api.chat.completions.create(model="sonnet", messages=messages, tools=[WEATHER],
                                            stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in rest if c.choices) == \
        "It is sunny in Paris."
    assert rest[-1].choices[0].finish_reason == "stop"


def test_parallel_calls_answered_in_one_request(stack: tuple[FakeAPI, Gateway]) -> None:
    fake, gw = stack
    api = client(gw)
    script = directive(steps=[
        {"tool_uses": [{"name": "get_weather", "input": {"city": "Paris"}},
                       {"name": "get_time", "input": {"city": "Paris"}}]},
        {"text": "Sunny, and it is noon."}])
    messages: list[Any] = [{"role": "user", "content": "Both? " + script}]
    first = api.chat.completions.create(model="sonnet", messages=messages, tools=[WEATHER, TIME])
    calls = first.choices[0].message.tool_calls or []
    assert [c.function.name for c in calls] == ["get_weather", "get_time"]
    messages.append(first.choices[0].message)
    messages += [{"role": "tool", "tool_call_id": c.id, "content": f"result of {c.function.name}"}
                 for c in reversed(calls)]
    second = api.chat.completions.create(model="sonnet", messages=messages, tools=[WEATHER, TIME])
    assert second.choices[0].message.content == "Sunny, and it is noon."
    results = _tool_results(fake.messages_requests()[-1])
    assert sorted(r["tool_use_id"] for r in results) == sorted(c.id for c in calls)


def test_calls_after_a_broken_stream_are_the_clients(stack: tuple[FakeAPI, Gateway]) -> None:
    # The stream drops; the CLI fetches the message again without streaming, prints it as
    # assistant lines (no message_delta) and calls the tools without their tool use ids.
    fake, gw = stack
    api = client(gw)
    script = directive(steps=[
        {"text": "Let me check the weather.", "drop_after": 1, "times": 1,
         "tool_uses": [{"name": "get_weather", "input": {"city": "Paris"}},
                       {"name": "get_time", "input": {"city": "Paris"}}]},
        {"text": "Sunny, and it is noon."}])
    messages: list[Any] = [{"role": "user", "content": "Both? " + script}]
    first = api.chat.completions.create(model="sonnet", messages=messages, tools=[WEATHER, TIME])
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content == "Let me check the weather."
    calls = choice.message.tool_calls or []
    assert [(c.function.name, json.loads(c.function.arguments)) for c in calls] == [
        ("get_weather", {"city": "Paris"}), ("get_time", {"city": "Paris"})]
    messages.append(choice.message)
    messages += [{"role": "tool", "tool_call_id": c.id, "content": f"result of {c.function.name}"}
                 for c in calls]
    second = api.chat.completions.create(model="sonnet", messages=messages, tools=[WEATHER, TIME])
    assert second.choices[0].message.content == "Sunny, and it is noon."
    results = _tool_results(fake.messages_requests()[-1])
    assert {r["tool_use_id"]: json.dumps(r["content"]) for r in results}.keys() == \
        {c.id for c in calls}
    assert all("result of" in json.dumps(r["content"]) for r in results)
