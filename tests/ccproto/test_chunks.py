from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from ccproto import ChunkBuilder, TextDelta, TokenUsage, TurnFailed, TurnFinished, collect, dumps
from ccproto.errors import CLIError
from ccproto.turn import ReasoningDelta

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
