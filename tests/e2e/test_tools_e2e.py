"""Client function tools and structured output, end to end: the openai SDK, the real gateway,
the real CLI and the fake upstream scripted to call the client's tools."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from tests.support.e2e import WEATHER, client, directive, gateway_env
from tests.support.fakeapi import FakeAPI, running_fakeapi
from tests.support.gateway import Gateway, running_gateway, wait_until

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


def _assert_genuine_pair(request: dict[str, Any], call_id: str, output: str) -> None:
    """The upstream request ends with Claude's call and the client's result, nothing else."""
    *_, assistant, user = request["body"]["messages"]
    assert [b["id"] for b in assistant["content"] if b["type"] == "tool_use"] == [call_id]
    assert [b["type"] for b in user["content"]] == ["tool_result"]
    assert user["content"][0]["tool_use_id"] == call_id
    assert output in json.dumps(user["content"][0]["content"])


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


def test_a_new_message_instead_of_results_abandons_the_calls(
        stack: tuple[FakeAPI, Gateway]) -> None:
    fake, gw = stack
    api = client(gw)
    messages: list[Any] = [{"role": "user", "content": "Weather? " + _weather_script()}]
    first = api.chat.completions.create(model="sonnet", messages=messages, tools=[WEATHER])
    held = httpx.get(f"{gw.base_url}/stats").json()["pool"]["held"]
    assert held >= 1
    messages += [first.choices[0].message,
                 {"role": "user", "content": "Never mind. " + directive(text="Fine, no weather.")}]
    second = api.chat.completions.create(model="sonnet", messages=messages, tools=[WEATHER])
    assert second.choices[0].message.content == "Fine, no weather."
    assert second.conversation_id == first.conversation_id  # type: ignore[attr-defined]
    # The abandoned call reached upstream as the CLI's own rejected result, then the new turn.
    (result,) = _tool_results(fake.messages_requests()[-1])
    assert result["tool_use_id"] == (first.choices[0].message.tool_calls or [])[0].id
    assert result.get("is_error") is True


def test_results_must_answer_the_pending_calls(stack: tuple[FakeAPI, Gateway]) -> None:
    _, gw = stack
    api = client(gw)
    messages: list[Any] = [{"role": "user", "content": "Weather? " + _weather_script()}]
    first = api.chat.completions.create(model="sonnet", messages=messages, tools=[WEATHER])
    messages.append(first.choices[0].message)
    with pytest.raises(openai.BadRequestError) as info:
        api.chat.completions.create(model="sonnet", tools=[WEATHER], messages=[
            *messages, {"role": "tool", "tool_call_id": "call_nope", "content": "x"}])
    assert "call_nope" in str(info.value)
    # The turn still waits: the right result goes through.
    (call,) = first.choices[0].message.tool_calls or []
    done = api.chat.completions.create(model="sonnet", tools=[WEATHER], messages=[
        *messages, {"role": "tool", "tool_call_id": call.id, "content": "sunny"}])
    assert done.choices[0].message.content == "It is sunny in Paris."


@pytest.fixture(scope="module")
def short_hold(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[FakeAPI, Gateway]]:
    tmp = tmp_path_factory.mktemp("hold")
    with running_fakeapi(tmp) as fake:
        env = gateway_env(fake, tmp, server__sse_keepalive_seconds="600", pool__size="0",
                          client_tools__hold_seconds="1")
        with running_gateway(env) as gw:
            yield fake, gw


def test_results_after_the_hold_deadline_still_continue(
        short_hold: tuple[FakeAPI, Gateway]) -> None:
    fake, gw = short_hold
    api = client(gw)
    messages: list[Any] = [{"role": "user", "content": "Weather? " + _weather_script()}]
    first = api.chat.completions.create(model="sonnet", messages=messages, tools=[WEATHER])
    (call,) = first.choices[0].message.tool_calls or []
    # Past its deadline the held process is stopped: nothing waits for the results any more.
    assert wait_until(lambda: httpx.get(f"{gw.base_url}/stats").json()["pool"]["held"] == 0)
    assert wait_until(lambda: httpx.get(f"{gw.base_url}/stats").json()["processes"]["live"] == 0)
    messages += [first.choices[0].message,
                 {"role": "tool", "tool_call_id": call.id, "content": "sunny, 21C"}]
    second = api.chat.completions.create(model="sonnet", messages=messages, tools=[WEATHER])
    assert second.choices[0].message.content == "It is sunny in Paris."
    assert second.conversation_id == first.conversation_id  # type: ignore[attr-defined]
    last = fake.messages_requests()[-1]
    _assert_genuine_pair(last, call.id, "sunny, 21C")


def test_a_restart_between_the_call_and_its_result(tmp_path: Path) -> None:
    with running_fakeapi(tmp_path) as fake:
        env = gateway_env(fake, tmp_path, server__sse_keepalive_seconds="600", pool__size="0")
        messages: list[Any] = [{"role": "user", "content": "Weather? " + _weather_script()}]
        with running_gateway(env) as gw:
            first = client(gw).chat.completions.create(model="sonnet", messages=messages,
                                                        tools=[WEATHER])
            (call,) = first.choices[0].message.tool_calls or []
            # The CLI writes its transcript a moment after its stdout; a restart before
            # that loses the call from the session (the results then go in as text).
            assert wait_until(lambda: any(call.id in p.read_text()
                                          for p in tmp_path.glob("cfg/projects/*/*.jsonl")))
        # The gateway stopped (its held CLI with it); a new one continues from the store.
        messages += [first.choices[0].message,
                     {"role": "tool", "tool_call_id": call.id, "content": "sunny, 21C"}]
        with running_gateway(env) as gw:
            second = client(gw).chat.completions.create(model="sonnet", messages=messages,
                                                         tools=[WEATHER])
        assert second.choices[0].message.content == "It is sunny in Paris."
        assert second.conversation_id == first.conversation_id  # type: ignore[attr-defined]
        _assert_genuine_pair(fake.messages_requests()[-1], call.id, "sunny, 21C")


def test_two_rounds_of_calls_in_one_turn_and_a_next_turn(stack: tuple[FakeAPI, Gateway]) -> None:
    fake, gw = stack
    api = client(gw)
    script = directive(steps=[
        {"tool_use": {"name": "get_weather", "input": {"city": "Paris"}}},
        {"tool_use": {"name": "get_time", "input": {"city": "Paris"}}},
        {"text": "Sunny at noon."}])
    messages: list[Any] = [{"role": "system", "content": "Be brief."},
                           {"role": "user", "content": "Plan? " + script}]
    for output in ("sunny", "12:00"):
        reply = api.chat.completions.create(model="sonnet", messages=messages,
                                            tools=[WEATHER, TIME])
        (call,) = reply.choices[0].message.tool_calls or []
        messages += [reply.choices[0].message,
                     {"role": "tool", "tool_call_id": call.id, "content": output}]
    final = api.chat.completions.create(model="sonnet", messages=messages, tools=[WEATHER, TIME])
    assert final.choices[0].message.content == "Sunny at noon."
    # One CLI turn: the last upstream request holds both rounds as genuine pairs.
    results = _tool_results(fake.messages_requests()[-1])
    assert [json.dumps(r["content"]) for r in results] == [
        json.dumps([{"type": "text", "text": "sunny"}]),
        json.dumps([{"type": "text", "text": "12:00"}])]
    # The conversation goes on as usual, found by its whole history.
    messages += [final.choices[0].message,
                 {"role": "user", "content": "Thanks " + directive(text="You are welcome.")}]
    after = api.chat.completions.create(model="sonnet", messages=messages, tools=[WEATHER, TIME])
    assert after.choices[0].message.content == "You are welcome."
    assert after.conversation_id == final.conversation_id  # type: ignore[attr-defined]


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


def test_results_and_a_new_question_in_one_request(stack: tuple[FakeAPI, Gateway]) -> None:
    # What agent frameworks send after a run that ended on a call (pydantic-ai's
    # final_result): the result, and the next question after it.
    fake, gw = stack
    api = client(gw)
    messages: list[Any] = [{"role": "user", "content": "Weather? " + _weather_script()}]
    first = api.chat.completions.create(model="sonnet", messages=messages, tools=[WEATHER])
    (call,) = first.choices[0].message.tool_calls or []
    messages += [first.choices[0].message,
                 {"role": "tool", "tool_call_id": call.id, "content": "sunny, 21C"},
                 {"role": "user", "content": "Thanks. " + directive(text="Bye now.")}]
    second = api.chat.completions.create(model="sonnet", messages=messages, tools=[WEATHER])
    assert second.choices[0].message.content == "Bye now."
    assert second.conversation_id == first.conversation_id  # type: ignore[attr-defined]
    # Upstream: the genuine pair, the answer the client never asked to see, the question.
    *_, assistant, result, answer, question = fake.messages_requests()[-1]["body"]["messages"]
    assert [b["id"] for b in assistant["content"] if b["type"] == "tool_use"] == [call.id]
    assert result["content"][0]["tool_use_id"] == call.id
    assert "sunny, 21C" in json.dumps(result["content"][0]["content"])
    assert answer["role"] == "assistant" and question["role"] == "user"
    assert "Thanks." in json.dumps(question["content"])


def test_a_client_gone_mid_continuation_leaves_no_process_and_can_ask_again(
        stack: tuple[FakeAPI, Gateway]) -> None:
    _, gw = stack
    api = client(gw)
    script = directive(steps=[
        {"tool_use": {"name": "get_weather", "input": {"city": "Paris"}}},
        {"chunks": ["It is ", "sunny ", "in ", "Paris."], "delay_ms": 500}])
    messages: list[Any] = [{"role": "user", "content": "Weather? " + script}]
    first = api.chat.completions.create(model="sonnet", messages=messages, tools=[WEATHER])
    (call,) = first.choices[0].message.tool_calls or []
    messages += [first.choices[0].message,
                 {"role": "tool", "tool_call_id": call.id, "content": "sunny"}]
    def killed() -> int:
        return int(httpx.get(f"{gw.base_url}/stats").json()["pool"]["killed"])

    before = killed()
    stream = api.chat.completions.create(model="sonnet", messages=messages, tools=[WEATHER],
                                         stream=True)
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            break
    stream.close()  # gone mid-answer: the turn is cut, its CLI killed
    assert wait_until(lambda: killed() > before)
    again = api.chat.completions.create(model="sonnet", messages=messages, tools=[WEATHER])
    assert again.choices[0].message.content == "It is sunny in Paris."
    assert again.conversation_id == first.conversation_id  # type: ignore[attr-defined]


def test_a_changed_tool_set_between_turns(stack: tuple[FakeAPI, Gateway]) -> None:
    fake, gw = stack
    api = client(gw)
    messages: list[Any] = [{"role": "user", "content": "Hi " + directive(text="Hello.")}]
    first = api.chat.completions.create(model="sonnet", messages=messages, tools=[WEATHER])
    assert first.choices[0].message.content == "Hello."
    # The next turn offers another set: another process, resuming the same session.
    messages += [first.choices[0].message, {"role": "user", "content": "Time? " + directive(
        steps=[{"tool_use": {"name": "get_time", "input": {"city": "Oslo"}}}, {"text": "Noon."}])}]
    second = api.chat.completions.create(model="sonnet", messages=messages, tools=[WEATHER, TIME])
    (call,) = second.choices[0].message.tool_calls or []
    assert call.function.name == "get_time"
    assert second.conversation_id == first.conversation_id  # type: ignore[attr-defined]
    upstream = fake.messages_requests()[-1]["body"]
    assert sorted(t["name"] for t in upstream["tools"]) == ["get_time", "get_weather"]
    assert "Hello." in json.dumps(upstream["messages"])  # the first turn, resumed
