"""The Responses API in ccproto: requests structured and converted, events and objects built,
and what is built checked against OpenAI's own schemas."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ccproto import (
    ChatCompletionRequest,
    CLIError,
    HistoryMessage,
    InvalidRequestError,
    PlanOptions,
    ReasoningDelta,
    ResponseBuilder,
    ResponsesRequest,
    SessionPlan,
    TextDelta,
    TokenUsage,
    ToolCall,
    ToolCallDelta,
    ToolCallsRequested,
    ToolCallStart,
    TurnFailed,
    TurnFinished,
    chat_request,
    dumps,
    encode_event,
    fingerprint,
    new_turn_start,
    plan_invocation,
    request_history,
    request_tools,
    structure_responses_request,
    tool_calls_part,
    tool_results,
    ws_error,
)
from ccproto.openai_types import ImagePart, ImageURL, Message, TextPart
from ccproto.tools import output_format
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
    ({"input": [{"type": "item_reference", "id": "x"}]}, "input[0].type", "item_reference"),
    ({"input": [{"type": "function_call", "name": "f", "arguments": "{}"}]}, "input[0].call_id", "call_id"),
    ({"input": [{"type": "function_call", "call_id": "c", "name": "f"}]}, "input[0].arguments", "arguments"),
    ({"input": [{"type": "custom_tool_call", "call_id": "c", "name": "f", "input": 3}]}, "input[0].input", "input"),
    ({"input": [{"type": "function_call_output", "call_id": "c", "output": 5}]}, "input[0].output", "list of content parts"),
    ({"input": [{"type": "function_call_output", "call_id": "c", "output": [{"type": "input_audio"}]}]}, "input[0].output[0].type", "input_audio"),
    ({"input": "x", "tools": {"type": "function"}}, "tools", "array"),
    ({"input": "x", "tools": ["web_search"]}, "tools[0]", "object"),
    ({"input": "x", "tools": [{"type": "web_search"}, {"type": "function", "name": "a b"}]}, "tools[1].name", "'tools[1].name'"),
    ({"input": "x", "tools": [{"type": "function", "name": "f"}, {"type": "function", "name": "f"}]}, "tools[1].name", "Duplicate"),
    ({"input": "x", "tools": [{"type": "function", "name": "f"}], "tool_choice": {"type": "function", "name": "g"}}, "tool_choice", "not among"),
    ({"input": "x", "tool_choice": "sometimes"}, "tool_choice", "sometimes"),
    ({"input": "x", "parallel_tool_calls": "yes"}, "parallel_tool_calls", "boolean"),
    ({"input": "x", "text": "json"}, "text", "object"),
    ({"input": "x", "text": {"format": {"type": "xml"}}}, "text.format.type", "xml"),
    ({"input": "x", "text": {"format": {"type": "json_schema", "name": "n"}}}, "text.format.schema", "schema"),
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


def test_client_tools_pass_through_and_hosted_ones_are_dropped() -> None:
    fn = {"type": "function", "name": "f", "description": "d", "strict": True,
          "parameters": {"type": "object", "properties": {"x": {"type": "string"}}}}
    custom = {"type": "custom", "name": "apply_patch", "description": "Patch files.",
              "format": {"type": "grammar", "syntax": "lark", "definition": "start: /.+/"}}
    namespace = {"type": "namespace", "name": "multi_agent_v1", "description": "agents",
                 "tools": [{"type": "function", "name": "spawn_agent", "parameters": {}}]}
    req = request(tools=[{"type": "web_search", "external_web_access": False}, fn,
                         {"type": "mcp", "server_label": "deepwiki", "server_url": "u"},
                         namespace, custom, {"type": "image_generation"}],
                  tool_choice={"type": "function", "name": "f"}, parallel_tool_calls=False)
    assert req.tools == (fn, custom)
    assert req.dropped_tools == ("web_search", "mcp:deepwiki", "namespace:multi_agent_v1",
                                 "image_generation")
    chat = chat_request(req)
    assert chat.tools == (fn, custom) and chat.parallel_tool_calls is False
    assert chat.tool_choice == {"type": "function", "name": "f"}
    tools = request_tools(chat)
    assert tools is not None and tools.choice == "f" and not tools.parallel
    assert [(t.name, t.kind) for t in tools.tools] == [("f", "function"), ("apply_patch", "custom")]
    assert "lark grammar" in tools.tools[1].parameters["properties"]["input"]["description"]
    assert chat_request(request(tools=[])).tools is None
    assert request(reasoning={"effort": "none"}).reasoning_effort is None


@pytest.mark.parametrize("choice", [
    {"type": "web_search_preview"}, {"type": "file_search"},
    {"type": "mcp", "server_label": "deepwiki"}, {"type": "function", "name": "spawn_agent"}])
def test_a_tool_choice_of_a_dropped_tool_is_dropped(choice: dict[str, Any]) -> None:
    namespace = {"type": "namespace", "name": "multi_agent_v1",
                 "tools": [{"type": "function", "name": "spawn_agent"}]}
    req = request(tools=[{"type": "web_search"}, namespace], tool_choice=choice)
    assert req.tool_choice is None and req.tools == ()
    assert request_tools(chat_request(req)) is None


def test_text_format_becomes_the_response_format() -> None:
    schema = {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}
    req = request(text={"format": {"type": "json_schema", "name": "person", "schema": schema,
                                   "strict": True}, "verbosity": "low"})
    fmt = output_format(chat_request(req).response_format)
    assert fmt is not None and fmt.name == "person" and fmt.schema["required"] == ["name"]
    assert request(text={"format": {"type": "json_object"}}).text_format == {"type": "json_object"}
    assert request(text={"format": {"type": "text"}}).text_format is None
    assert request(text={"verbosity": "low"}).text_format is None
    unnamed = request(text={"format": {"type": "json_schema", "schema": schema}})
    assert unnamed.text_format is not None and unnamed.text_format["name"] == "response"


def test_ignored_fields_codex_sends() -> None:
    req = request(include=["reasoning.encrypted_content"], reasoning={"summary": "auto"},
                  prompt_cache_key="k", client_metadata={"a": "b"}, store=False,
                  text={"verbosity": "medium"})
    assert req.store is False and req.reasoning_effort is None and req.text_format is None


def test_function_call_items_join_the_assistant_message_and_outputs_become_tool_messages(
        ) -> None:
    req = request(input=[
        {"role": "user", "content": "weather?"},
        {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": "x"},
        {"type": "message", "role": "assistant", "content": [
            {"type": "output_text", "text": "Let me check.", "annotations": []}]},
        {"type": "reasoning", "id": "rs_2", "summary": []},
        {"type": "function_call", "id": "fc_1", "call_id": "toolu_1", "name": "get_weather",
         "arguments": '{"city":"Paris"}', "status": "completed"},
        {"type": "custom_tool_call", "id": "ctc_2", "call_id": "toolu_2", "name": "apply_patch",
         "input": "*** Begin Patch"},
        {"type": "function_call_output", "call_id": "toolu_1", "output": "sunny"},
        {"type": "custom_tool_call_output", "call_id": "toolu_2",
         "output": [{"type": "input_text", "text": "Done"}, {"type": "input_text", "text": "!"}]},
        {"type": "function_call", "call_id": "toolu_3", "name": "get_time", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "toolu_3", "output": "noon"},
    ])
    user, assistant, out1, out2, calls_only, out3 = chat_request(req).messages
    assert user.role == "user"
    assert assistant.role == "assistant" and assistant.content == (TextPart(text="Let me check."),)
    assert assistant.tool_calls == (
        {"id": "toolu_1", "type": "function",
         "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}},
        {"id": "toolu_2", "type": "function",
         "function": {"name": "apply_patch", "arguments": '{"input": "*** Begin Patch"}'}})
    assert (out1.role, out1.tool_call_id, out1.content) == ("tool", "toolu_1", "sunny")
    assert (out2.tool_call_id, out2.content) == (
        "toolu_2", (TextPart(text="Done"), TextPart(text="!")))
    assert calls_only.role == "assistant" and calls_only.content is None
    assert calls_only.tool_calls is not None and calls_only.tool_calls[0]["id"] == "toolu_3"
    assert out3.tool_call_id == "toolu_3"
    assert tool_results(chat_request(req)) == {"toolu_3": "noon"}


def test_continuing_with_tool_results_sends_them_all() -> None:
    outputs = [{"type": "function_call_output", "call_id": f"toolu_{i}", "output": str(i)}
               for i in range(2)]
    req = request(previous_response_id="resp_1", input=outputs)
    chat = chat_request(req)
    assert [m.role for m in chat.messages] == ["tool", "tool"]
    assert tool_results(chat) == {"toolu_0": "0", "toolu_1": "1"}
    with pytest.raises(InvalidRequestError):
        chat_request(request(previous_response_id="resp_1",
                             input=[*outputs, {"role": "user", "content": "and?"}]))


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


WEATHER = {"type": "function", "name": "get_weather", "description": None,
           "parameters": {"type": "object"}, "strict": True}
PATCH = {"type": "custom", "name": "apply_patch", "description": "Patch files."}


def calls_requested(*calls: tuple[str, str, str]) -> ToolCallsRequested:
    return ToolCallsRequested(calls=tuple(ToolCall(call_id=c, name=n, arguments=a)
                                          for c, n, a in calls), usage=USAGE)


def test_function_calls_after_the_text_end_the_response_completed() -> None:
    b = builder(request(tools=[WEATHER]))
    out = run(b, TextDelta("Let me check."),
              ToolCallStart(index=0, call_id="toolu_1", name="get_weather"),
              ToolCallDelta(index=0, arguments='{"city":'), ToolCallDelta(index=0, arguments='"Paris"}'),
              ToolCallStart(index=1, call_id="toolu_2", name="get_weather"),
              calls_requested(("toolu_1", "get_weather", '{"city":"Paris"}'),
                              ("toolu_2", "get_weather", "{}")))
    assert [e["type"] for e in out][2:] == [
        "response.output_item.added", "response.content_part.added", "response.output_text.delta",
        "response.output_text.done", "response.content_part.done", "response.output_item.done",
        "response.output_item.added", "response.function_call_arguments.delta",
        "response.function_call_arguments.delta", "response.output_item.added",
        "response.function_call_arguments.done", "response.output_item.done",
        "response.function_call_arguments.done", "response.output_item.done",
        "response.completed"]
    assert out[8]["item"] == {"type": "function_call", "id": "fc_abc_1", "call_id": "toolu_1",
                              "name": "get_weather", "arguments": "", "status": "in_progress"}
    assert [(e["item_id"], e["output_index"], e["delta"]) for e in out[9:11]] == [
        ("fc_abc_1", 1, '{"city":'), ("fc_abc_1", 1, '"Paris"}')]
    assert out[12]["arguments"] == '{"city":"Paris"}' and out[12]["name"] == "get_weather"
    assert out[14]["arguments"] == "{}" and out[14]["output_index"] == 2
    final = out[-1]["response"]
    assert final["status"] == "completed" and final["usage"]["output_tokens"] == 5
    assert [i["type"] for i in final["output"]] == ["message", "function_call", "function_call"]
    assert final["output"][0]["content"][0]["text"] == "Let me check."
    assert final["output"][1] == {"type": "function_call", "id": "fc_abc_1", "call_id": "toolu_1",
                                  "name": "get_weather", "arguments": '{"city":"Paris"}',
                                  "status": "completed"}
    assert final["tools"] == [WEATHER] and final["tool_choice"] == "auto"
    assert b.done and b.feed(TextDelta("late"), now=0) == []


def test_a_custom_tool_call_carries_its_input_string() -> None:
    b = builder(request(tools=[PATCH]))
    out = run(b, ToolCallStart(index=0, call_id="toolu_9", name="apply_patch"),
              ToolCallDelta(index=0, arguments='{"input": "*** Begin'),
              ToolCallDelta(index=0, arguments=' Patch"}'),
              calls_requested(("toolu_9", "apply_patch", '{"input": "*** Begin Patch"}')))
    assert [e["type"] for e in out][2:] == [
        "response.output_item.added", "response.custom_tool_call_input.delta",
        "response.custom_tool_call_input.done", "response.output_item.done", "response.completed"]
    assert out[2]["item"]["input"] == "" and out[3]["delta"] == "*** Begin Patch"
    assert b.response()["output"] == [{"type": "custom_tool_call", "id": "ctc_abc_0",
                                       "call_id": "toolu_9", "name": "apply_patch",
                                       "input": "*** Begin Patch"}]


def test_a_call_cut_by_a_failure_is_incomplete() -> None:
    b = builder(request(tools=[WEATHER]))
    run(b, ToolCallStart(index=0, call_id="t", name="get_weather"),
        TurnFailed(error=CLIError("boom", status_hint=502)))
    assert b.response()["output"][0]["status"] == "incomplete"


def test_request_tool_fields_are_echoed() -> None:
    schema = {"type": "object", "properties": {}}
    req = request(tools=[{"type": "web_search"}, WEATHER], parallel_tool_calls=False,
                  tool_choice="required",
                  text={"format": {"type": "json_schema", "name": "n", "schema": schema}})
    final = builder(req).response()
    assert final["tools"] == [WEATHER] and final["tool_choice"] == "required"
    assert final["parallel_tool_calls"] is False
    assert final["text"] == {"format": {"type": "json_schema", "name": "n", "schema": schema}}
    validate(final, "Response")


# ---- Codex CLI: store=false, the whole history every time -------------------------------------

CODEX = Path(__file__).resolve().parents[1] / "data" / "codex"


def recorded_fingerprint(chat: ChatCompletionRequest, reply: str,
                         calls: tuple[ToolCall, ...]) -> str:
    """The fingerprint the server records after ``chat``'s turn paused for ``calls``
    (what `Records.complete` computes): the request's history plus the answer."""
    system, turns = request_history(chat)
    parts: tuple[tuple[str, str], ...] = (("text", reply),) if reply else ()
    parts += (("tool_calls", tool_calls_part([(c.call_id, c.name, c.arguments) for c in calls])),)
    return fingerprint(system, (*turns, HistoryMessage("assistant", parts)))


def continued_fingerprint(chat: ChatCompletionRequest) -> str:
    """The fingerprint a request without an id is matched by: its history minus its new
    turn (`Conversations`)."""
    system, turns = request_history(chat)
    return fingerprint(system, turns[:new_turn_start([t.role for t in turns])])


def plan(chat: ChatCompletionRequest) -> Any:
    options = PlanOptions(executable="claude", cwd="/w", model_map={"fake-model": "sonnet"})
    return plan_invocation(chat, options, inherited_env={},
                           session=SessionPlan(session_id="s", resume=False, cwd="/w"))


def test_codex_requests_convert_and_the_second_continues_the_first() -> None:
    first_body = json.loads((CODEX / "first_request.json").read_text())
    second_body = json.loads((CODEX / "second_request.json").read_text())
    first, second = (structure_responses_request(b) for b in (first_body, second_body))
    assert first.dropped_tools == ("namespace:multi_agent_v1", "web_search")
    assert not first.store and first.stream
    chat1, chat2 = chat_request(first), chat_request(second)
    inv = plan(chat1)
    assert inv.client_tools is not None and "exec_command" in inv.client_tools.names
    assert "--system-prompt" in inv.argv  # Codex's developer messages
    # What the gateway answered, as Codex sent it back: its call, then its result.
    (call_item,) = [i for i in second_body["input"] if i["type"] == "function_call"]
    call = ToolCall(call_id=call_item["call_id"], name=call_item["name"],
                    arguments=call_item["arguments"])
    assert continued_fingerprint(chat2) == recorded_fingerprint(chat1, "", (call,))
    assert tool_results(chat2) == {call.call_id: second_body["input"][-1]["output"]}
    assert plan(chat2).stdin  # a turn of its own when no live CLI holds the call


def test_our_own_output_items_sent_back_continue_the_conversation() -> None:
    """A full-history client resending the builder's items (text, reasoning and calls)
    continues by fingerprint, whatever JSON spacing its arguments come back in."""
    body = {"model": "sonnet", "store": False, "tools": [WEATHER, PATCH],
            "input": [{"role": "developer", "content": [{"type": "input_text", "text": "D"}]},
                      {"role": "user", "content": "weather?"}]}
    first = structure_responses_request(body)
    b = builder(first, include_reasoning=True)
    args, patch = '{"city": "Paris"}', '{"input":"x"}'
    run(b, ReasoningDelta("hm"), TextDelta("Let me"), TextDelta(" check."),
        ToolCallStart(index=0, call_id="toolu_1", name="get_weather"),
        ToolCallDelta(index=0, arguments=args),
        ToolCallStart(index=1, call_id="toolu_2", name="apply_patch"),
        ToolCallDelta(index=1, arguments=patch),
        calls_requested(("toolu_1", "get_weather", args), ("toolu_2", "apply_patch", patch)))
    output = b.response()["output"]
    resent = json.loads(json.dumps(output).replace('{\\"city\\": \\"Paris\\"}',
                                                   '{\\"city\\":\\"Paris\\"}'))
    second = structure_responses_request({**body, "input": [
        *body["input"], *resent,
        {"type": "function_call_output", "call_id": "toolu_1", "output": "sunny"},
        {"type": "custom_tool_call_output", "call_id": "toolu_2", "output": "patched"}]})
    calls = (ToolCall(call_id="toolu_1", name="get_weather", arguments=args),
             ToolCall(call_id="toolu_2", name="apply_patch", arguments=patch))
    assert continued_fingerprint(chat_request(second)) == \
        recorded_fingerprint(chat_request(first), "Let me check.", calls)
    assert tool_results(chat_request(second)) == {"toolu_1": "sunny", "toolu_2": "patched"}


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
    "response.function_call_arguments.delta": "ResponseFunctionCallArgumentsDeltaEvent",
    "response.function_call_arguments.done": "ResponseFunctionCallArgumentsDoneEvent",
    "response.custom_tool_call_input.delta": "ResponseCustomToolCallInputDeltaEvent",
    "response.custom_tool_call_input.done": "ResponseCustomToolCallInputDoneEvent",
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


def test_tool_call_events_and_the_response_match_the_openapi_schemas() -> None:
    b = builder(request(tools=[WEATHER, PATCH], tool_choice="auto"), conversation_id="conv_1")
    out = run(b, TextDelta("Hi"), ToolCallStart(index=0, call_id="toolu_1", name="get_weather"),
              ToolCallDelta(index=0, arguments="{}"),
              ToolCallStart(index=1, call_id="toolu_2", name="apply_patch"),
              ToolCallDelta(index=1, arguments='{"input":"x"}'),
              calls_requested(("toolu_1", "get_weather", "{}"),
                              ("toolu_2", "apply_patch", '{"input":"x"}')))
    assert {e["type"] for e in out} >= set(_EVENT_SCHEMAS) - {
        "response.reasoning_text.delta", "response.reasoning_text.done", "response.failed",
        "response.incomplete"}
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
