"""Structured output end to end: ``response_format`` becomes the CLI's ``--json-schema``, the
fake upstream is scripted to call the ``StructuredOutput`` tool the CLI adds, and the openai
SDK reads the JSON as the message content (client-tools reference §9)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import openai
import pytest
from pydantic import BaseModel

from tests.support.e2e import client, directive, gateway_env
from tests.support.fakeapi import FakeAPI, running_fakeapi
from tests.support.gateway import Gateway, running_gateway

PERSON = {"type": "object", "properties": {
    "name": {"type": "string"}, "age": {"type": "integer", "minimum": 0}},
    "required": ["name", "age"], "additionalProperties": False}


def person_format(schema: dict[str, Any] = PERSON) -> Any:
    return {"type": "json_schema", "json_schema": {"name": "person", "schema": schema}}


class Person(BaseModel):
    name: str
    age: int


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[FakeAPI, Gateway]]:
    tmp = tmp_path_factory.mktemp("structured")
    with running_fakeapi(tmp) as fake:
        env = gateway_env(fake, tmp, server__sse_keepalive_seconds="600", pool__size="0")
        with running_gateway(env) as gw:
            yield fake, gw


def structured(value: dict[str, Any]) -> dict[str, Any]:
    return {"tool_use": {"name": "StructuredOutput", "input": value}}


def last_tools(fake: FakeAPI) -> list[dict[str, Any]]:
    return fake.messages_requests()[-1]["body"].get("tools", [])  # type: ignore[no-any-return]


def test_json_schema_gives_the_object_as_content(stack: tuple[FakeAPI, Gateway]) -> None:
    fake, gw = stack
    script = directive(**structured({"name": "Bob", "age": 3}))
    done = client(gw).chat.completions.create(
        model="sonnet", messages=[{"role": "user", "content": "Bob, 3. " + script}],
        response_format=person_format())
    choice = done.choices[0]
    assert choice.finish_reason == "stop" and not choice.message.tool_calls
    assert json.loads(choice.message.content or "") == {"name": "Bob", "age": 3}
    # Upstream: the CLI's StructuredOutput tool carries the schema verbatim.
    (tool,) = [t for t in last_tools(fake) if t["name"] == "StructuredOutput"]
    assert tool["input_schema"] == PERSON


def test_the_sdks_parse_helper_works(stack: tuple[FakeAPI, Gateway]) -> None:
    _, gw = stack
    script = directive(**structured({"name": "Ann", "age": 41}))
    done = client(gw).chat.completions.parse(
        model="sonnet", messages=[{"role": "user", "content": "Ann, 41. " + script}],
        response_format=Person)
    assert done.choices[0].message.parsed == Person(name="Ann", age=41)


def test_a_schema_violation_is_retried_by_the_cli(stack: tuple[FakeAPI, Gateway]) -> None:
    fake, gw = stack
    script = directive(steps=[structured({"name": "Bob", "age": -1}),
                              structured({"name": "Bob", "age": 4})])
    done = client(gw).chat.completions.create(
        model="sonnet", messages=[{"role": "user", "content": "retry " + script}],
        response_format=person_format())
    assert json.loads(done.choices[0].message.content or "") == {"name": "Bob", "age": 4}
    # The model saw the CLI's validation error for the first attempt.
    results = [b for m in fake.messages_requests()[-1]["body"]["messages"]
               if isinstance(m["content"], list) for b in m["content"]
               if b.get("type") == "tool_result"]
    assert results and results[0].get("is_error") is True
    assert "does not match required schema" in json.dumps(results[0]["content"])


@pytest.mark.parametrize("script", [
    directive(text="I would rather talk."),
    directive(**structured({"name": "Bob"})),  # always invalid: the CLI gives up after 5
], ids=["always_text", "always_invalid"])
def test_no_object_is_an_openai_error_not_a_200(stack: tuple[FakeAPI, Gateway],
                                                script: str) -> None:
    _, gw = stack
    with pytest.raises(openai.APIStatusError) as info:
        client(gw).chat.completions.create(
            model="sonnet", messages=[{"role": "user", "content": "no " + script}],
            response_format=person_format())
    assert info.value.status_code == 502
    body = info.value.body
    assert isinstance(body, dict)
    assert body["code"] == "structured_output_failed" and body["type"] == "server_error"
    assert "schema" in body["message"]


def test_streaming_yields_the_json_as_content(stack: tuple[FakeAPI, Gateway]) -> None:
    _, gw = stack
    script = directive(steps=[{"text": "Thinking out loud.", **structured({"name": "Eve",
                                                                          "age": 7})}])
    chunks = list(client(gw).chat.completions.create(
        model="sonnet", messages=[{"role": "user", "content": "Eve " + script}],
        response_format=person_format(), stream=True))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert json.loads(text) == {"name": "Eve", "age": 7}  # the model's prose is not content
    assert chunks[-1].choices[0].finish_reason == "stop"


def test_json_object(stack: tuple[FakeAPI, Gateway]) -> None:
    fake, gw = stack
    script = directive(**structured({"anything": ["goes", 1]}))
    done = client(gw).chat.completions.create(
        model="sonnet", messages=[{"role": "user", "content": "any " + script}],
        response_format={"type": "json_object"})
    assert json.loads(done.choices[0].message.content or "") == {"anything": ["goes", 1]}
    (tool,) = [t for t in last_tools(fake) if t["name"] == "StructuredOutput"]
    assert tool["input_schema"] == {"type": "object"}


def test_a_new_schema_in_the_same_conversation(stack: tuple[FakeAPI, Gateway]) -> None:
    fake, gw = stack
    api = client(gw)
    first_script = directive(**structured({"name": "Bob", "age": 3}))
    messages: list[Any] = [{"role": "user", "content": "Bob. " + first_script}]
    first = api.chat.completions.create(model="sonnet", messages=messages,
                                        response_format=person_format())
    messages += [{"role": "assistant", "content": first.choices[0].message.content}]
    city = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    messages += [{"role": "user", "content": "Where? " + directive(**structured({"city": "Oslo"}))}]
    second = api.chat.completions.create(model="sonnet", messages=messages,
                                         response_format=person_format(city))
    assert json.loads(second.choices[0].message.content or "") == {"city": "Oslo"}
    assert second.conversation_id == first.conversation_id  # type: ignore[attr-defined]
    request = fake.messages_requests()[-1]["body"]
    (tool,) = [t for t in request["tools"] if t["name"] == "StructuredOutput"]
    assert tool["input_schema"] == city
    # The new process resumed the session: the first turn is in its history.
    assert "Bob. " in json.dumps(request["messages"])
