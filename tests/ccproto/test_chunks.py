from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from ccproto import ChunkBuilder, TextDelta, TokenUsage, TurnFailed, TurnFinished, collect, dumps
from ccproto.errors import CLIError
from ccproto.events import (
    ReasoningDelta,
    ToolCall,
    ToolCallDelta,
    ToolCallsRequested,
    ToolCallStart,
    TurnEvent,
)

FINISHED = TurnFinished(stop_reason="end_turn", session_id="s", cost_usd=0.0, result_text="",
                        usage=TokenUsage(input_tokens=3, output_tokens=2, cache_read_input_tokens=4))


def builder(**kw: object) -> ChunkBuilder:
    return ChunkBuilder(completion_id="chatcmpl-1", created=11, model="sonnet", **kw)  # type: ignore[arg-type]


def wire(chunks: list[object]) -> list[dict[str, object]]:
    return [json.loads(dumps(c)) for c in chunks]


def test_stream_shape() -> None:
    b = builder()
    out = wire([b.start(), *b.feed(TextDelta("Hi")), *b.feed(TextDelta("!")), *b.feed(FINISHED)])
    assert out[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert [c["choices"][0]["delta"] for c in out[1:3]] == [{"content": "Hi"}, {"content": "!"}]
    assert out[3]["choices"][0] == {"index": 0, "delta": {}, "logprobs": None, "finish_reason": "stop"}
    assert {c["id"] for c in out} == {"chatcmpl-1"} and {c["created"] for c in out} == {11}
    assert all(c["object"] == "chat.completion.chunk" and c["model"] == "sonnet" for c in out)
    assert all("role" not in c["choices"][0]["delta"] for c in out[1:])


def test_usage_chunk_only_when_asked() -> None:
    assert len(builder().feed(FINISHED)) == 1
    finish, usage = wire(builder(include_usage=True).feed(FINISHED))
    assert finish["choices"][0]["finish_reason"] == "stop"
    assert usage["choices"] == []
    assert usage["usage"]["prompt_tokens"] == 7 and usage["usage"]["completion_tokens"] == 2
    assert usage["usage"]["total_tokens"] == 9
    assert usage["usage"]["prompt_tokens_details"] == {"cached_tokens": 4}


def test_reasoning_only_when_enabled() -> None:
    assert builder().feed(ReasoningDelta("hm")) == []
    (chunk,) = wire(builder(include_reasoning=True).feed(ReasoningDelta("hm")))
    assert chunk["choices"][0]["delta"] == {"reasoning_content": "hm"}


def test_conversation_id_rides_on_first_and_last_chunks() -> None:
    b = builder(conversation_id="conv_1", include_usage=True)
    first, mid, *last = wire([b.start(), *b.feed(TextDelta("x")), *b.feed(FINISHED)])
    assert first["conversation_id"] == "conv_1" and last[-1]["conversation_id"] == "conv_1"
    assert "conversation_id" not in mid


@given(st.lists(st.text(min_size=1), max_size=20))
def test_collect_equals_the_joined_deltas(pieces: list[str]) -> None:
    events = [TextDelta(p) for p in pieces] + [FINISHED]
    b = builder()
    streamed = "".join(
        c.choices[0].delta.content or "" for e in events for c in b.feed(e) if c.choices
    )
    completion = collect(events, completion_id="c", created=1, model="m")
    assert not isinstance(completion, TurnFailed)
    assert completion.choices[0].message.content == streamed == "".join(pieces)


def test_collect_reports_failure_and_refusal() -> None:
    failed = TurnFailed(error=CLIError("x"))
    assert collect([TextDelta("a"), failed], completion_id="c", created=1, model="m") is failed
    refused = TurnFinished(stop_reason="refusal", usage=TokenUsage(), session_id=None,
                           cost_usd=None, result_text=None, refused=True)
    done = collect([refused], completion_id="c", created=1, model="m")
    assert not isinstance(done, TurnFailed)
    assert done.choices[0].finish_reason == "content_filter"
    body = json.loads(dumps(done))
    assert body["object"] == "chat.completion" and body["choices"][0]["message"]["refusal"] is None


# ---- tool calls ----------------------------------------------------------------------------

CALLS = (ToolCall(call_id="toolu_A", name="get_weather", arguments='{"city": "Paris"}'),
         ToolCall(call_id="toolu_B", name="get_time", arguments="{}"))


def call_events(fragments: list[list[str]], text: list[str]) -> list[TurnEvent]:
    events: list[TurnEvent] = [TextDelta(t) for t in text]
    for index, (call, parts) in enumerate(zip(CALLS, fragments, strict=True)):
        events.append(ToolCallStart(index=index, call_id=call.call_id, name=call.name))
        events += [ToolCallDelta(index=index, arguments=p) for p in parts]
    events.append(ToolCallsRequested(calls=CALLS, usage=TokenUsage(input_tokens=5, output_tokens=2)))
    return events


def fragmentations(s: str) -> st.SearchStrategy[list[str]]:
    return st.lists(st.integers(0, len(s)), max_size=6).map(
        lambda cuts: [s[a:b] for a, b in zip([0, *sorted(cuts)], [*sorted(cuts), len(s)], strict=True)
                      if s[a:b]])


@given(fragmentations(CALLS[0].arguments), fragmentations(CALLS[1].arguments),
       st.lists(st.text(min_size=1), max_size=3))
def test_streamed_tool_calls_join_into_the_collected_ones(
        a: list[str], b: list[str], text: list[str]) -> None:
    events = call_events([a, b], text)
    b_ = builder()
    chunks = wire([c for e in events for c in b_.feed(e)])
    joined: dict[int, dict[str, str]] = {}
    for chunk in chunks:
        for piece in chunk["choices"][0]["delta"].get("tool_calls", []):
            slot = joined.setdefault(piece["index"], {"arguments": ""})
            if "id" in piece:
                assert piece["type"] == "function"
                slot["id"], slot["name"] = piece["id"], piece["function"]["name"]
            slot["arguments"] += piece["function"].get("arguments", "")
    completion = collect(events, completion_id="c", created=1, model="m")
    assert not isinstance(completion, TurnFailed)
    message = json.loads(dumps(completion))["choices"][0]["message"]
    assert [{"id": c["id"], "name": c["function"]["name"], "arguments": c["function"]["arguments"]}
            for c in message["tool_calls"]] == [joined[0], joined[1]]
    assert all(c["type"] == "function" for c in message["tool_calls"])
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"
    assert completion.choices[0].finish_reason == "tool_calls"
    assert message["content"] == ("".join(text) if text else None)


def test_a_message_that_only_calls_tools_has_null_content() -> None:
    completion = collect(call_events([['{"city": "Paris"}'], ["{}"]], []),
                         completion_id="c", created=1, model="m")
    body = json.loads(dumps(completion))
    assert body["choices"][0]["message"]["content"] is None
    assert body["choices"][0]["finish_reason"] == "tool_calls"
    assert body["usage"]["prompt_tokens"] == 5 and body["usage"]["completion_tokens"] == 2


def test_the_usage_chunk_follows_the_tool_calls_finish() -> None:
    b = builder(include_usage=True)
    chunks = wire([c for e in call_events([["{}"], ["{}"]], ["x"]) for c in b.feed(e)])
    finish, usage = chunks[-2:]
    assert finish["choices"][0] == {"index": 0, "delta": {}, "logprobs": None,
                                    "finish_reason": "tool_calls"}
    assert usage["choices"] == [] and usage["usage"]["total_tokens"] == 7
    pieces = [c["choices"][0]["delta"]["tool_calls"] for c in chunks
              if c["choices"] and "tool_calls" in c["choices"][0]["delta"]]
    # The first piece of a call names it; the rest carry arguments only, no nulls
    # (openai-wire.md: what OpenAI leaves out is left out).
    assert pieces == [
        [{"index": 0, "id": "toolu_A", "type": "function",
          "function": {"name": "get_weather", "arguments": ""}}],
        [{"index": 0, "function": {"arguments": "{}"}}],
        [{"index": 1, "id": "toolu_B", "type": "function",
          "function": {"name": "get_time", "arguments": ""}}],
        [{"index": 1, "function": {"arguments": "{}"}}],
    ]
