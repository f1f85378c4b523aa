"""Agent frameworks on the gateway, end to end: pydantic-ai and the OpenAI Agents SDK, each on
its Chat Completions model, the real gateway, the real CLI and the fake upstream scripted to
call the tools the framework offers.

Each framework runs its own asyncio loop (``asyncio.run``) in a sync test, with an
``AsyncOpenAI`` client opened and closed inside that loop. The frameworks decide what they
send (``strict`` schemas, ``tool_choice``, ``stream_options``, assistant messages with null
content and tool calls, handoff tools): the tests only script the model's side and check
what the framework got back and what reached the upstream.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, Literal, TypeVar

import agents as oa
import httpx
import pydantic
import pydantic_ai as pa
import pytest
from openai import AsyncOpenAI
from pydantic_ai.models.openai import OpenAIChatModel
from pydantic_ai.providers.openai import OpenAIProvider

from tests.support.e2e import directive, gateway_env
from tests.support.fakeapi import FakeAPI, running_fakeapi
from tests.support.gateway import Gateway, process_tree, running_gateway

pytestmark = pytest.mark.e2e

T = TypeVar("T")


class City(pydantic.BaseModel):
    name: str
    country: str
    population: int


PARIS = {"name": "Paris", "country": "France", "population": 2_100_000}


class Address(pydantic.BaseModel):
    street: str
    zip: str | None = None


class Person(pydantic.BaseModel):
    """Nested models: ``$defs`` and ``$ref`` in the schema, nullable fields, an enum."""

    name: str
    kind: Literal["tenant", "owner"]
    home: Address
    others: list[Address] = []


ANN = {"name": "Ann", "kind": "owner", "home": {"street": "Main St", "zip": None},
       "others": [{"street": "Side St", "zip": "75001"}]}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[FakeAPI, Gateway]]:
    oa.set_tracing_disabled(True)
    tmp = tmp_path_factory.mktemp("agents")
    with running_fakeapi(tmp) as fake:
        env = gateway_env(fake, tmp, server__sse_keepalive_seconds="600", pool__size="0")
        with running_gateway(env) as gw:
            yield fake, gw


def run(gw: Gateway, body: Callable[[AsyncOpenAI], Awaitable[T]]) -> T:
    """``body(client)`` in a loop of its own, with a client on ``gw`` that lives in it."""
    async def main() -> T:
        async with AsyncOpenAI(base_url=gw.v1, api_key="unused", max_retries=0,
                               timeout=60) as client:
            return await body(client)

    return asyncio.run(main())


def tag() -> str:
    """A token that tells this test's upstream requests from the others'."""
    return uuid.uuid4().hex[:10]


def tool_results(fake: FakeAPI, token: str) -> list[dict[str, Any]]:
    """The tool_result blocks of the last upstream request holding ``token`` anywhere."""
    for request in reversed(fake.messages_requests()):
        if token in json.dumps(request["body"]["messages"]):
            return [b for m in request["body"]["messages"] if isinstance(m["content"], list)
                    for b in m["content"] if b.get("type") == "tool_result"]
    raise AssertionError(f"no upstream request carries {token!r}")


def tool_uses(fake: FakeAPI, token: str) -> list[dict[str, Any]]:
    """The tool_use blocks of the last upstream request holding ``token`` anywhere."""
    for request in reversed(fake.messages_requests()):
        if token in json.dumps(request["body"]["messages"]):
            return [b for m in request["body"]["messages"] if isinstance(m["content"], list)
                    for b in m["content"] if b.get("type") == "tool_use"]
    raise AssertionError(f"no upstream request carries {token!r}")


def result_text(block: dict[str, Any]) -> str:
    content = block["content"]
    if isinstance(content, str):
        return content
    return "".join(part.get("text", "") for part in content)


# --- pydantic-ai ----------------------------------------------------------------------------


def pai_model(client: AsyncOpenAI) -> OpenAIChatModel:
    return OpenAIChatModel("sonnet", provider=OpenAIProvider(openai_client=client))


def weather_agent(client: AsyncOpenAI, token: str, calls: list[str], **kwargs: Any
                  ) -> pa.Agent[None, Any]:
    agent: pa.Agent[None, Any] = pa.Agent(pai_model(client), **kwargs)

    @agent.tool_plain
    def get_weather(city: str) -> str:
        """The weather in a city."""
        calls.append(f"weather:{city}")
        return f"sunny, 21C in {city} ({token})"

    @agent.tool_plain
    def get_time(city: str) -> str:
        """The time in a city."""
        calls.append(f"time:{city}")
        return f"noon in {city} ({token})"

    return agent


def test_pydantic_ai_tool_loop(stack: tuple[FakeAPI, Gateway]) -> None:
    fake, gw = stack
    token, calls = tag(), list[str]()
    script = directive(steps=[
        {"text": "Let me check.", "tool_use": {"name": "get_weather", "input": {"city": "Paris"}}},
        {"text": "It is sunny in Paris."}])

    async def body(client: AsyncOpenAI) -> str:
        agent = weather_agent(client, token, calls, instructions="Be brief.")
        result = await agent.run("Weather in Paris? " + script)
        return str(result.output)

    assert run(gw, body) == "It is sunny in Paris."
    assert calls == ["weather:Paris"]
    (result,) = tool_results(fake, token)
    assert result_text(result) == f"sunny, 21C in Paris ({token})"
    (use,) = tool_uses(fake, token)
    assert (use["id"], use["name"], use["input"]) == \
        (result["tool_use_id"], "get_weather", {"city": "Paris"})


def test_pydantic_ai_parallel_tools_streaming(stack: tuple[FakeAPI, Gateway]) -> None:
    fake, gw = stack
    token, calls = tag(), list[str]()
    script = directive(steps=[
        {"tool_uses": [{"name": "get_weather", "input": {"city": "Paris"}},
                       {"name": "get_time", "input": {"city": "Paris"}}]},
        {"text": "Sunny, and it is noon."}])

    async def body(client: AsyncOpenAI) -> list[str]:
        agent = weather_agent(client, token, calls)
        async with agent.run_stream("Both? " + script) as result:
            return [piece async for piece in result.stream_text(delta=True)]

    assert "".join(run(gw, body)) == "Sunny, and it is noon."
    assert sorted(calls) == ["time:Paris", "weather:Paris"]
    results = {result_text(r) for r in tool_results(fake, token)}
    assert results == {f"sunny, 21C in Paris ({token})", f"noon in Paris ({token})"}


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_pydantic_ai_tool_output(stack: tuple[FakeAPI, Gateway], stream: bool) -> None:
    """The default output mode: a ``final_result`` tool the model must call, after a call
    to a function tool."""
    fake, gw = stack
    token, calls = tag(), list[str]()
    script = directive(steps=[
        {"tool_use": {"name": "get_weather", "input": {"city": "Paris"}}},
        {"tool_use": {"name": "final_result", "input": PARIS}}])

    async def body(client: AsyncOpenAI) -> City:
        agent = weather_agent(client, token, calls, output_type=City)
        if stream:
            async with agent.run_stream("City? " + script) as result:
                return await result.get_output()  # type: ignore[no-any-return]
        return (await agent.run("City? " + script)).output  # type: ignore[no-any-return]

    assert run(gw, body) == City(**PARIS)
    assert calls == ["weather:Paris"]
    (result,) = tool_results(fake, token)
    assert result_text(result) == f"sunny, 21C in Paris ({token})"


def test_pydantic_ai_output_retry(stack: tuple[FakeAPI, Gateway]) -> None:
    """An invalid ``final_result`` goes back to the model as a tool result naming the
    errors, and the corrected call ends the run."""
    fake, gw = stack
    token = tag()
    script = directive(steps=[
        {"tool_use": {"name": "final_result", "input": {"name": "Paris"}}},
        {"tool_use": {"name": "final_result", "input": PARIS}}])

    async def body(client: AsyncOpenAI) -> City:
        agent = pa.Agent(pai_model(client), output_type=City)
        return (await agent.run(f"City? {token} " + script)).output

    assert run(gw, body) == City(**PARIS)
    (result,) = tool_results(fake, token)
    assert "country" in result_text(result)
    assert "population" in result_text(result)


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
@pytest.mark.parametrize("mode", ["native", "prompted"])
def test_pydantic_ai_response_format_output(stack: tuple[FakeAPI, Gateway], mode: str,
                                            stream: bool) -> None:
    """NativeOutput sends ``response_format: json_schema`` and PromptedOutput
    ``json_object``: both run the CLI with ``--json-schema``."""
    fake, gw = stack
    token = tag()
    script = directive(tool_use={"name": "StructuredOutput", "input": PARIS})
    output = pa.NativeOutput(City) if mode == "native" else pa.PromptedOutput(City)

    async def body(client: AsyncOpenAI) -> City:
        agent = pa.Agent(pai_model(client), output_type=output)
        if stream:
            async with agent.run_stream(f"City? {token} " + script) as result:
                return await result.get_output()
        return (await agent.run(f"City? {token} " + script)).output

    assert run(gw, body) == City(**PARIS)
    (request,) = [r for r in fake.messages_requests() if token in json.dumps(r["body"])]
    names = [t["name"] for t in request["body"].get("tools", [])]
    assert "StructuredOutput" in names


def test_pydantic_ai_union_output(stack: tuple[FakeAPI, Gateway]) -> None:
    """A union output_type is one output tool per member (``final_result_City``), with
    nested schemas (``$defs``)."""
    _, gw = stack
    script = directive(tool_use={"name": "final_result_City", "input": PARIS})

    async def body(client: AsyncOpenAI) -> Person | City:
        agent = pa.Agent(pai_model(client), output_type=[Person, City])
        return (await agent.run("Who or where? " + script)).output

    assert run(gw, body) == City(**PARIS)


def test_pydantic_ai_message_history(stack: tuple[FakeAPI, Gateway]) -> None:
    """A second run continues the first from its messages (tool calls and results among
    them, resent with null content)."""
    fake, gw = stack
    token, calls = tag(), list[str]()
    first = directive(steps=[
        {"tool_use": {"name": "get_weather", "input": {"city": "Paris"}}},
        {"text": "It is sunny in Paris."}])
    second = directive(steps=[
        {"tool_use": {"name": "get_weather", "input": {"city": "Lyon"}}},
        {"text": "Lyon is sunny too."}])

    async def body(client: AsyncOpenAI) -> tuple[str, str]:
        agent = weather_agent(client, token, calls, instructions="Be brief.")
        one = await agent.run("Paris? " + first)
        two = await agent.run("And Lyon? " + second, message_history=one.all_messages())
        return str(one.output), str(two.output)

    assert run(gw, body) == ("It is sunny in Paris.", "Lyon is sunny too.")
    assert calls == ["weather:Paris", "weather:Lyon"]
    # The second run continued the first's conversation: both results are genuine
    # tool_result blocks upstream, not quoted history.
    results = [result_text(r) for r in tool_results(fake, f"Lyon ({token})")]
    assert results == [f"sunny, 21C in Paris ({token})", f"sunny, 21C in Lyon ({token})"]


def test_pydantic_ai_output_runs_stay_under_the_process_cap(
        tmp_path_factory: pytest.TempPathFactory) -> None:
    """A run that ends on ``final_result`` never sends that call's result, so each leaves
    its CLI held for the call: the cap must still bound them (the oldest is killed to
    make room), and the conversation goes on from its session when it comes back."""
    tmp = tmp_path_factory.mktemp("agents-cap")
    with running_fakeapi(tmp) as fake:
        env = gateway_env(fake, tmp, server__sse_keepalive_seconds="600", pool__size="0",
                          claude__max_concurrent_sessions="2")
        with running_gateway(env) as gw:
            async def body(client: AsyncOpenAI) -> tuple[list[City], City]:
                agent = pa.Agent(pai_model(client), output_type=City)
                runs = [await agent.run(f"City {i}? " + directive(
                    tool_use={"name": "final_result", "input": {**PARIS, "population": i}}))
                    for i in range(4)]
                again = await agent.run("Again? " + directive(
                    tool_use={"name": "final_result", "input": PARIS}),
                    message_history=runs[0].all_messages())
                return [r.output for r in runs], again.output

            outputs, again = run(gw, body)
            assert outputs == [City(**{**PARIS, "population": i}) for i in range(4)]
            assert again == City(**PARIS)
            pool = httpx.get(gw.base_url + "/stats").json()["pool"]
            assert pool["warm"] + pool["bound"] + pool["held"] <= 2
            assert pool["killed"] >= 3
            clis = [cmd for cmd in process_tree(gw.proc.pid).values() if "claude" in cmd]
            assert len(clis) <= 2, clis


# --- OpenAI Agents SDK ----------------------------------------------------------------------


def sdk_model(client: AsyncOpenAI) -> oa.OpenAIChatCompletionsModel:
    return oa.OpenAIChatCompletionsModel(model="sonnet", openai_client=client)


def sdk_tools(token: str, calls: list[str]) -> list[oa.FunctionTool]:
    @oa.function_tool
    def get_weather(city: str) -> str:
        """The weather in a city."""
        calls.append(f"weather:{city}")
        return f"sunny, 21C in {city} ({token})"

    @oa.function_tool
    def get_time(city: str) -> str:
        """The time in a city."""
        calls.append(f"time:{city}")
        return f"noon in {city} ({token})"

    return [get_weather, get_time]


async def sdk_run(agent: oa.Agent[Any], prompt: str | list[Any], stream: bool
                  ) -> oa.RunResult | oa.RunResultStreaming:
    if not stream:
        return await oa.Runner.run(agent, prompt, max_turns=5)
    result = oa.Runner.run_streamed(agent, prompt, max_turns=5)
    async for _ in result.stream_events():
        pass
    return result


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_agents_sdk_tool_loop(stack: tuple[FakeAPI, Gateway], stream: bool) -> None:
    fake, gw = stack
    token, calls = tag(), list[str]()
    script = directive(steps=[
        {"text": "Let me check.", "tool_use": {"name": "get_weather", "input": {"city": "Paris"}}},
        {"text": "It is sunny in Paris."}])

    async def body(client: AsyncOpenAI) -> Any:
        agent = oa.Agent(name="weather", instructions="Be brief.", model=sdk_model(client),
                         tools=sdk_tools(token, calls))
        return (await sdk_run(agent, "Weather in Paris? " + script, stream)).final_output

    assert run(gw, body) == "It is sunny in Paris."
    assert calls == ["weather:Paris"]
    (result,) = tool_results(fake, token)
    assert result_text(result) == f"sunny, 21C in Paris ({token})"
    (use,) = tool_uses(fake, token)
    assert (use["id"], use["name"]) == (result["tool_use_id"], "get_weather")


def test_agents_sdk_parallel_tools_and_settings(stack: tuple[FakeAPI, Gateway]) -> None:
    """tool_choice required, parallel_tool_calls, include_usage (stream_options),
    temperature and max_tokens all pass; both calls are answered in one request."""
    fake, gw = stack
    token, calls = tag(), list[str]()
    script = directive(steps=[
        {"tool_uses": [{"name": "get_weather", "input": {"city": "Paris"}},
                       {"name": "get_time", "input": {"city": "Paris"}}]},
        {"text": "Sunny, and it is noon."}])
    settings = oa.ModelSettings(tool_choice="required", parallel_tool_calls=True,
                                include_usage=True, temperature=0.2, max_tokens=500)

    async def body(client: AsyncOpenAI) -> Any:
        # tool_choice "required" would loop forever in the SDK; reset after the first call.
        agent = oa.Agent(name="weather", model=sdk_model(client), tools=sdk_tools(token, calls),
                         model_settings=settings, reset_tool_choice=True)
        return (await sdk_run(agent, "Both? " + script, stream=True)).final_output

    assert run(gw, body) == "Sunny, and it is noon."
    assert sorted(calls) == ["time:Paris", "weather:Paris"]
    results = {result_text(r) for r in tool_results(fake, token)}
    assert results == {f"sunny, 21C in Paris ({token})", f"noon in Paris ({token})"}


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_agents_sdk_structured_output(stack: tuple[FakeAPI, Gateway], stream: bool) -> None:
    """``output_type`` sends ``response_format: json_schema`` (strict), alongside a tool
    the model calls first."""
    fake, gw = stack
    token, calls = tag(), list[str]()
    script = directive(steps=[
        {"tool_use": {"name": "get_weather", "input": {"city": "Paris"}}},
        {"tool_use": {"name": "StructuredOutput", "input": PARIS}}])

    async def body(client: AsyncOpenAI) -> Any:
        agent = oa.Agent(name="cities", model=sdk_model(client), tools=sdk_tools(token, calls),
                         output_type=City)
        return (await sdk_run(agent, "City? " + script, stream)).final_output

    assert run(gw, body) == City(**PARIS)
    assert calls == ["weather:Paris"]
    (result,) = tool_results(fake, token)
    assert result_text(result) == f"sunny, 21C in Paris ({token})"


def test_agents_sdk_nested_schemas(stack: tuple[FakeAPI, Gateway]) -> None:
    """Strict schemas with ``$defs``/``$ref`` and nullable fields, in a tool's parameters
    and in ``output_type``."""
    _, gw = stack
    saved: list[Person] = []

    @oa.function_tool
    def save(person: Person, note: str | None) -> str:
        """Save a person."""
        saved.append(person)
        return "saved"

    script = directive(steps=[
        {"tool_use": {"name": "save", "input": {"person": ANN, "note": None}}},
        {"tool_use": {"name": "StructuredOutput", "input": ANN}}])

    async def body(client: AsyncOpenAI) -> Any:
        agent = oa.Agent(name="people", model=sdk_model(client), tools=[save],
                         output_type=Person)
        return (await sdk_run(agent, "Save Ann. " + script, stream=False)).final_output

    assert run(gw, body) == Person(**ANN)
    assert saved == [Person(**ANN)]


def test_agents_sdk_handoff(stack: tuple[FakeAPI, Gateway]) -> None:
    """A handoff is a ``transfer_to_…`` tool; the next agent has other instructions and
    tools, and sees the handoff's call and result in its history."""
    fake, gw = stack
    token, calls = tag(), list[str]()
    script = directive(steps=[
        {"tool_use": {"name": "transfer_to_weather", "input": {}}},
        {"tool_use": {"name": "get_weather", "input": {"city": "Paris"}}},
        {"text": "It is sunny in Paris."}])

    async def body(client: AsyncOpenAI) -> tuple[str, Any]:
        weather = oa.Agent(name="weather", instructions="You answer weather questions.",
                           model=sdk_model(client), tools=sdk_tools(token, calls))
        triage = oa.Agent(name="triage", instructions="Hand off to the right agent.",
                          model=sdk_model(client), handoffs=[weather])
        result = await sdk_run(triage, "Weather in Paris? " + script, stream=False)
        return result.last_agent.name, result.final_output

    assert run(gw, body) == ("weather", "It is sunny in Paris.")
    assert calls == ["weather:Paris"]
    uses = tool_uses(fake, token)
    assert [u["name"] for u in uses] == ["transfer_to_weather", "get_weather"]
    results = tool_results(fake, token)
    assert [r["tool_use_id"] for r in results] == [u["id"] for u in uses]
    assert result_text(results[-1]) == f"sunny, 21C in Paris ({token})"


def test_agents_sdk_multi_turn(stack: tuple[FakeAPI, Gateway]) -> None:
    """A second run from ``to_input_list()``: the first turn's tool call and result are
    resent as history."""
    fake, gw = stack
    token, calls = tag(), list[str]()
    first = directive(steps=[
        {"tool_use": {"name": "get_weather", "input": {"city": "Paris"}}},
        {"text": "It is sunny in Paris."}])
    second = directive(text="It rains tomorrow.")

    async def body(client: AsyncOpenAI) -> tuple[Any, Any]:
        agent = oa.Agent(name="weather", instructions="Be brief.", model=sdk_model(client),
                         tools=sdk_tools(token, calls))
        one = await sdk_run(agent, "Weather? " + first, stream=False)
        follow = [*one.to_input_list(), {"role": "user", "content": f"Tomorrow? {token} " + second}]
        two = await sdk_run(agent, follow, stream=True)
        return one.final_output, two.final_output

    assert run(gw, body) == ("It is sunny in Paris.", "It rains tomorrow.")
    assert calls == ["weather:Paris"]
    (result,) = tool_results(fake, f"Tomorrow? {token}")
    assert result_text(result) == f"sunny, 21C in Paris ({token})"


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_agents_sdk_responses_model(stack: tuple[FakeAPI, Gateway], stream: bool) -> None:
    """The Agents SDK's default model speaks the Responses API: function tools, then a
    structured output through ``text.format``."""
    fake, gw = stack
    token, calls = tag(), list[str]()
    script = directive(steps=[
        {"tool_use": {"name": "get_weather", "input": {"city": "Paris"}}},
        {"tool_use": {"name": "StructuredOutput", "input": PARIS}}])

    async def body(client: AsyncOpenAI) -> Any:
        model = oa.OpenAIResponsesModel(model="sonnet", openai_client=client)
        agent = oa.Agent(name="weather", instructions="Be brief.", model=model,
                         tools=sdk_tools(token, calls), output_type=City)
        return (await sdk_run(agent, "Weather in Paris? " + script, stream)).final_output

    out = run(gw, body)
    assert out == City(**PARIS)
    assert calls == ["weather:Paris"]
    (result,) = tool_results(fake, token)
    assert result_text(result) == f"sunny, 21C in Paris ({token})"
