"""The Responses API in ccproto: requests structured and converted, events and objects built,
and what is built checked against OpenAI's own schemas."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ccproto import (
    ChatCompletionRequest,
    CLIError,
    InvalidRequestError,
    ReasoningDelta,
    ResponseBuilder,
    ResponsesRequest,
    TextDelta,
    TokenUsage,
    TurnFailed,
    TurnFinished,
    chat_request,
    dumps,
    encode_event,
    structure_responses_request,
    ws_error,
)
from ccproto.openai_types import ImagePart, ImageURL, Message, TextPart
from tests.support.openai_schema import validate

USAGE = TokenUsage(input_tokens=3, output_tokens=5, cache_read_input_tokens=4,
                   cache_creation_input_tokens=2)


def finished(stop_reason: str | None = "end_turn", refused: bool = False) -> TurnFinished:
    return TurnFinished(stop_reason=stop_reason, session_id="s", cost_usd=0.0, result_text="",
                        usage=USAGE, refused=refused)


def request(**fields: Any) -> ResponsesRequest:
    return structure_responses_request({"input": "hi", **fields})


def builder(req: ResponsesRequest | None = None, **kw: Any) -> ResponseBuilder:
    return ResponseBuilder(response_id="resp_abc", created_at=1700000000, model="sonnet",
                           request=req or request(), **kw)


def run(b: ResponseBuilder, *events: Any) -> list[dict[str, Any]]:
    out = b.start()
    for event in events:
        out += b.feed(event, now=1700000009.5)
    # Everything that goes on the wire is plain JSON.
    return [json.loads(dumps(e)) for e in out]


# ---- requests -------------------------------------------------------------------------------


def test_a_string_input_is_one_user_message() -> None:
    req = structure_responses_request(b'{"model": "sonnet", "input": "Hello", "whatever": 1}')
    assert req.input == (Message(role="user", content="Hello"),)
    assert req.model == "sonnet" and req.store is True and req.stream is False
    chat = chat_request(req)
    assert chat == ChatCompletionRequest(messages=req.input, model="sonnet")


def test_message_items_parts_instructions_and_options() -> None:
    req = structure_responses_request({
        "model": "opus", "stream": True, "instructions": "Be terse.", "store": False,
        "metadata": {"k": "v"}, "reasoning": {"effort": "high", "summary": "auto"},
        "input": [
            {"role": "developer", "content": "Use British spelling."},
            {"type": "message", "role": "user", "content": [
                {"type": "input_text", "text": "What is this?"},
                {"type": "input_image", "image_url": "data:image/png;base64,AAAA", "detail": "low"}]},
            {"type": "reasoning", "id": "rs_1", "summary": []},
            {"type": "message", "role": "assistant", "content": [
                {"type": "output_text", "text": "A cat.", "annotations": []}]},
            {"role": "user", "content": "Sure?"},
        ]})
    assert req.metadata == {"k": "v"} and req.reasoning_effort == "high" and not req.store
    chat = chat_request(req)
    assert chat.stream and chat.model == "opus" and chat.reasoning_effort == "high"
    assert [m.role for m in chat.messages] == ["system", "developer", "user", "assistant", "user"]
    assert chat.messages[0].content == "Be terse."
    assert chat.messages[2].content == (
        TextPart(text="What is this?"),
        ImagePart(image_url=ImageURL(url="data:image/png;base64,AAAA", detail="low")))
    assert chat.messages[3].content == (TextPart(text="A cat."),)


@pytest.mark.parametrize(("body", "param", "fragment"), [
    ({}, "input", "required"),
    ({"input": 3}, "input", "string or a non-empty list"),
    ({"input": []}, "input", "non-empty"),
    ({"input": ["x"]}, "input[0]", "input item object"),
    ({"input": [{"role": "robot", "content": "x"}]}, "input[0].role", "must be one of"),
    ({"input": [{"role": "user", "content": 5}]}, "input[0].content", "list of content parts"),
    ({"input": [{"role": "user", "content": [{"type": "input_audio"}]}]}, "input[0].content[0].type", "input_audio"),
    ({"input": [{"role": "user", "content": [{"type": "input_text", "text": 1}]}]}, "input[0].content[0].text", "string"),
    ({"input": [{"role": "user", "content": [{"type": "input_image", "file_id": "f"}]}]}, "input[0].content[0].image_url", "file_id"),
    ({"input": [{"type": "function_call_output", "call_id": "c", "output": "x"}]}, "input[0].type", "function_call_output"),
    ({"input": "x", "model": 4}, "model", "expected a string"),
    ({"input": "x", "stream": "yes"}, "stream", "boolean"),
    ({"input": "x", "store": 1}, "store", "boolean"),
    ({"input": "x", "metadata": {"a": 1}}, "metadata", "string values"),
    ({"input": "x", "conversation": 7}, "conversation", "string"),
    ({"input": "x", "reasoning": "high"}, "reasoning", "object"),
])
def test_bad_requests_name_the_field(body: dict[str, Any], param: str, fragment: str) -> None:
    with pytest.raises(InvalidRequestError) as info:
        structure_responses_request(body)
    assert info.value.param == param and info.value.status_hint == 400
    assert fragment in info.value.message


@pytest.mark.parametrize("body", [b"{nope", b"[1]", "\"x\""])
def test_a_body_that_is_not_an_object(body: bytes | str) -> None:
    with pytest.raises(InvalidRequestError):
        structure_responses_request(body)


def test_continuing_sends_only_the_new_turn() -> None:
    req = request(previous_response_id="resp_1", input=[
        {"role": "system", "content": "s"}, {"role": "user", "content": "new"}])
    assert [m.role for m in chat_request(req).messages] == ["system", "user"]
    for field in ({"previous_response_id": "resp_1"}, {"conversation": {"id": "conv_1"}}):
        two = request(**field, input=[{"role": "user", "content": "a"},
                                      {"role": "assistant", "content": "b"},
                                      {"role": "user", "content": "c"}])
        with pytest.raises(InvalidRequestError) as info:
            chat_request(two)
        assert info.value.param == "input" and "3 messages" in info.value.message
    with pytest.raises(InvalidRequestError) as info:
        chat_request(request(previous_response_id="resp_1", conversation="conv_1"))
    assert info.value.param == "previous_response_id"


def test_tools_pass_through_to_be_refused_by_the_plan() -> None:
    tool = {"type": "function", "name": "f", "parameters": {}}
    assert chat_request(request(tools=[tool])).tools == (tool,)
    assert chat_request(request(tools=[])).tools is None
    assert request(reasoning={"effort": "none"}).reasoning_effort is None


# ---- events -----------------------------------------------------------------------------------


def test_text_turn_event_sequence() -> None:
    out = run(builder(), TextDelta("Hel"), TextDelta("lo"), finished())
    assert [e["type"] for e in out] == [
        "response.created", "response.in_progress", "response.output_item.added",
        "response.content_part.added", "response.output_text.delta", "response.output_text.delta",
        "response.output_text.done", "response.content_part.done", "response.output_item.done",
        "response.completed"]
    assert [e["sequence_number"] for e in out] == list(range(len(out)))
    assert out[0]["response"]["status"] == "in_progress" and out[0]["response"]["output"] == []
    added = out[2]["item"]
    assert added == {"type": "message", "id": "msg_abc_0", "status": "in_progress",
                     "role": "assistant", "content": []}
    assert [e["delta"] for e in out[4:6]] == ["Hel", "lo"]
    assert {e["item_id"] for e in out[3:8]} == {"msg_abc_0"}
    assert out[6]["text"] == "Hello" and out[7]["part"]["text"] == "Hello"
    final = out[-1]["response"]
    assert final["status"] == "completed" and final["completed_at"] == 1700000009
    assert final["output"] == [out[8]["item"]]
    assert final["output"][0]["content"][0]["text"] == "Hello"
    assert final["usage"] == {"input_tokens": 9, "output_tokens": 5, "total_tokens": 14,
                              "input_tokens_details": {"cached_tokens": 4, "cache_write_tokens": 2},
                              "output_tokens_details": {"reasoning_tokens": 0}}


@given(st.lists(st.text(min_size=1), max_size=15))
def test_output_text_is_exactly_the_joined_deltas(pieces: list[str]) -> None:
    b = builder()
    out = run(b, *[TextDelta(p) for p in pieces], finished())
    deltas = [e["delta"] for e in out if e["type"] == "response.output_text.delta"]
    assert deltas == pieces
    assert b.response()["output"][0]["content"][0]["text"] == "".join(pieces)
    assert b.done and b.feed(TextDelta("late"), now=0) == []


def test_an_empty_answer_is_still_a_message() -> None:
    out = run(builder(), finished())
    assert out[-1]["response"]["output"][0]["content"][0]["text"] == ""
    assert [e["type"] for e in out][2:] == [
        "response.output_item.added", "response.content_part.added", "response.output_text.done",
        "response.content_part.done", "response.output_item.done", "response.completed"]


@pytest.mark.parametrize(("done", "reason"), [
    (finished("max_tokens"), "max_output_tokens"), (finished("refusal", refused=True), "content_filter")])
def test_truncated_or_refused_is_incomplete(done: TurnFinished, reason: str) -> None:
    out = run(builder(), TextDelta("par"), done)
    assert out[-1]["type"] == "response.incomplete"
    final = out[-1]["response"]
    assert final["status"] == "incomplete" and final["incomplete_details"] == {"reason": reason}
    assert final["completed_at"] is None and final["output"][0]["status"] == "incomplete"


@pytest.mark.parametrize(("status", "code"), [(429, "rate_limit_exceeded"), (504, "server_error"),
                                              (400, "invalid_prompt")])
def test_failure_ends_with_response_failed(status: int, code: str) -> None:
    failed = TurnFailed(error=CLIError("upstream said no", status_hint=status))
    out = run(builder(), TextDelta("par"), failed)
    assert out[-1]["type"] == "response.failed"
    final = out[-1]["response"]
    assert final["status"] == "failed" and final["error"] == {"code": code, "message": "upstream said no"}
    assert final["output"][0]["status"] == "incomplete" and "usage" not in final


def test_cancel_and_keepalive() -> None:
    b = builder()
    out = run(b, TextDelta("x"))
    keep = b.keepalive()
    assert keep == {"type": "keepalive", "sequence_number": len(out)}
    (last,) = b.cancel()
    assert last["type"] == "response.failed" and last["response"]["status"] == "cancelled"
    assert last["response"]["error"] is None and b.done


def test_reasoning_items_only_when_enabled() -> None:
    assert run(builder(), ReasoningDelta("hm"))[2:] == []
    out = run(builder(include_reasoning=True), ReasoningDelta("hm"), TextDelta("Hi"),
              ReasoningDelta("more"), finished())
    items = out[-1]["response"]["output"]
    assert [(i["type"], i["id"]) for i in items] == [
        ("reasoning", "rs_abc_0"), ("message", "msg_abc_1"), ("reasoning", "rs_abc_2")]
    assert items[0]["content"] == [{"type": "reasoning_text", "text": "hm"}]
    assert items[1]["content"][0]["text"] == "Hi"
    assert [e["output_index"] for e in out if e["type"].endswith(".delta")] == [0, 1, 2]


def test_request_fields_are_echoed() -> None:
    req = request(instructions="I", metadata={"a": "b"}, previous_response_id="resp_0",
                  store=False, stream_id="lane-1", reasoning={"effort": "low"})
    b = builder(req, conversation_id="conv_9")
    out = run(b, TextDelta("x"), finished())
    assert {e["stream_id"] for e in out} == {"lane-1"}
    final = b.response()
    assert final["instructions"] == "I" and final["metadata"] == {"a": "b"}
    assert final["previous_response_id"] == "resp_0" and final["store"] is False
    assert final["reasoning"]["effort"] == "low" and final["conversation_id"] == "conv_9"
    assert "conversation" not in final
    assert builder(request(conversation="conv_9")).response()["conversation"] == {"id": "conv_9"}


def test_sse_framing_names_each_event() -> None:
    assert encode_event("response.created", b'{"a":1}') == \
        b'event: response.created\ndata: {"a":1}\n\n'


# ---- against OpenAI's schemas -------------------------------------------------------------------

_EVENT_SCHEMAS = {
    "response.created": "ResponseCreatedEvent", "response.in_progress": "ResponseInProgressEvent",
    "response.output_item.added": "ResponseOutputItemAddedEvent",
    "response.output_item.done": "ResponseOutputItemDoneEvent",
    "response.content_part.added": "ResponseContentPartAddedEvent",
    "response.content_part.done": "ResponseContentPartDoneEvent",
    "response.output_text.delta": "ResponseTextDeltaEvent",
    "response.output_text.done": "ResponseTextDoneEvent",
    "response.reasoning_text.delta": "ResponseReasoningTextDeltaEvent",
    "response.reasoning_text.done": "ResponseReasoningTextDoneEvent",
    "response.completed": "ResponseCompletedEvent", "response.incomplete": "ResponseIncompleteEvent",
    "response.failed": "ResponseFailedEvent",
}


@pytest.mark.parametrize("ending", ["completed", "incomplete", "failed", "cancelled"])
def test_every_event_and_the_response_match_the_openapi_schemas(ending: str) -> None:
    b = builder(request(instructions="I", metadata={"a": "b"}), conversation_id="conv_1",
                include_reasoning=True)
    events: list[Any] = [ReasoningDelta("think"), TextDelta("Hi"), TextDelta(" there")]
    if ending == "completed":
        events.append(finished())
    elif ending == "incomplete":
        events.append(finished("max_tokens"))
    elif ending == "failed":
        events.append(TurnFailed(error=CLIError("boom", status_hint=502)))
    out = run(b, *events)
    if ending == "cancelled":
        out += b.cancel()
    for event in out:
        validate(event, _EVENT_SCHEMAS[event["type"]])
        validate(event, "ResponseStreamEvent")
    validate(b.response(), "Response")


def test_error_shapes_match_the_openapi_schemas() -> None:
    error = InvalidRequestError("bad", param="input", code="invalid_value")
    frame = ws_error(error.to_body(), 400, stream_id="lane")
    assert frame == {"type": "error", "status": 400, "stream_id": "lane",
                     "error": {"message": "bad", "type": "invalid_request_error",
                               "param": "input", "code": "invalid_value"}}
    validate(frame, "ResponseWsError")
