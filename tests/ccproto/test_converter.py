from __future__ import annotations

import json

import pytest

from ccproto import InvalidRequestError, dumps, structure_request
from ccproto.openai_types import (
    ChatCompletionChunk,
    ChunkChoice,
    Delta,
    ImagePart,
    OtherPart,
    TextPart,
)


def req(**fields: object) -> bytes:
    body = {"model": "sonnet", "messages": [{"role": "user", "content": "hi"}], **fields}
    return json.dumps(body).encode()


def test_tolerant_of_what_real_clients_send() -> None:
    r = structure_request(req(
        messages=[
            {"role": "developer", "content": "be brief"},
            {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]},
            {"role": "assistant", "content": None, "tool_calls": [{"id": "1"}]},
            {"role": "tool", "content": "out", "tool_call_id": "1"},
        ],
        max_completion_tokens=5, temperature=0.2, seed=1, user="u", store=False, tools=[],
        parallel_tool_calls=True, stream=True, stream_options={"include_usage": True},
        metadata={"k": "v"}, unknown_future_field={"x": 1},
    ))
    assert [m.role for m in r.messages] == ["developer", "user", "assistant", "tool"]
    assert r.messages[1].content == (TextPart(text="a"), TextPart(text="b"))
    assert r.messages[2].content is None
    assert r.stream and r.stream_options is not None and r.stream_options.include_usage
    assert r.tools == ()


def test_parts_of_every_kind_are_kept_for_the_planner_to_judge() -> None:
    r = structure_request(req(messages=[{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AA=="}},
        {"type": "input_audio", "input_audio": {"data": "x"}},
    ]}]))
    content = r.messages[0].content
    assert isinstance(content, tuple)
    assert isinstance(content[0], ImagePart) and content[0].image_url.url.startswith("data:")
    assert isinstance(content[1], OtherPart) and content[1].type == "input_audio"


@pytest.mark.parametrize(
    ("body", "param", "fragment"),
    [
        (b"{not json", None, "not valid JSON"),
        (b"[]", None, "JSON object"),
        (b"{}", "messages", "required"),
        (req(messages=[{"role": "robot", "content": "x"}]), "messages[0].role", "one of"),
        (req(messages=[{"role": "user", "content": 5}]), "messages[0].content", "content parts"),
        (req(messages=[{"role": "user", "content": [{"type": "text"}]}]),
         "messages[0].content[0].text", "required"),
        (req(stream="false"), "stream", "boolean"),  # never bool("false") == True
        (req(n=1.5), "n", "integer"),
        (req(max_tokens=True), "max_tokens", "integer"),
        (req(stop=[1]), "stop", "list of strings"),
        (req(model=3), "model", "string"),
    ],
)
def test_errors_name_the_field(body: bytes, param: str | None, fragment: str) -> None:
    with pytest.raises(InvalidRequestError) as info:
        structure_request(body)
    assert info.value.param == param
    assert fragment in info.value.message
    assert info.value.status_hint == 400
    assert info.value.to_body()["error"]["type"] == "invalid_request_error"


def test_chunk_json_is_exact() -> None:
    first = ChatCompletionChunk(id="c", created=7, model="m",
                                choices=(ChunkChoice(delta=Delta(role="assistant", content="")),))
    assert json.loads(dumps(first)) == {
        "id": "c", "object": "chat.completion.chunk", "created": 7, "model": "m",
        "system_fingerprint": None, "usage": None,
        "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""},
                     "logprobs": None, "finish_reason": None}],
    }
    later = ChatCompletionChunk(id="c", created=7, model="m",
                                choices=(ChunkChoice(delta=Delta(content="x")),))
    assert json.loads(dumps(later))["choices"][0]["delta"] == {"content": "x"}  # no role
