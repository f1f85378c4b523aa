from __future__ import annotations

import json
from pathlib import Path
from typing import Any, get_args

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ccproto import (
    NEED_DATA,
    AssistantMessage,
    CLIError,
    CLIStream,
    ControlRequest,
    ControlResponse,
    Exit,
    NonJSONLine,
    ReasoningDelta,
    Record,
    Result,
    StreamEvent,
    SystemEvent,
    SystemInit,
    TextDelta,
    TokenUsage,
    ToolCall,
    ToolCallDelta,
    ToolCallsRequested,
    ToolCallStart,
    Turn,
    TurnEvent,
    TurnFailed,
    TurnFinished,
    TurnState,
    UnknownRecord,
    UserMessage,
    parse_record,
)
from ccproto.turn_state import FAILING_RESULT, INPUTS, PROTOCOL_ERRORS, TRANSITIONS, TurnInput
from tests.support import records as r


def run(lines: list[dict[str, Any]], *, returncode: int = 0, stderr: str = "") -> tuple[Turn, list[TurnEvent]]:
    turn = Turn()
    out: list[TurnEvent] = []
    for obj in lines:
        out += turn.feed(parse_record(obj))
    out += turn.feed(Exit(returncode=returncode, stderr_tail=stderr))
    return turn, out


def texts(events: list[TurnEvent]) -> list[str]:
    return [e.text for e in events if isinstance(e, TextDelta)]


def test_each_upstream_delta_is_one_event_and_the_result_finishes() -> None:
    turn, events = run([r.init(), *r.streamed_message("m1", "Hel", "lo", " there"), r.result()])
    assert texts(events) == ["Hel", "lo", " there"]
    done = events[-1]
    assert isinstance(done, TurnFinished)
    assert done.usage.prompt_tokens == 16 and done.usage.output_tokens == 4
    assert turn.session_id == r.SID and turn.state is TurnState.ENDED


def test_later_messages_of_the_turn_are_set_off_by_a_blank_line() -> None:
    tool_use = {"type": "tool_use", "id": "t1", "name": "Bash", "input": {"command": "ls"}}
    _, events = run([
        r.init(), *r.streamed_message("m1", "Let me look.")[:-3],
        r.assistant("m1", tool_use), r.message_delta("tool_use"),
        {"type": "user", "message": {"content": [{"type": "tool_result", "tool_use_id": "t1"}]}},
        *r.streamed_message("m2", "Found ", "it."), r.result(),
    ])
    assert texts(events) == ["Let me look.", "\n\nFound ", "it."]


def test_a_max_tokens_continuation_joins_without_a_separator() -> None:
    _, events = run([r.init(), *r.streamed_message("m1", "half a sen", stop="max_tokens"),
                     *r.streamed_message("m2", "tence."), r.result()])
    assert "".join(texts(events)) == "half a sentence."


def test_fallback_after_a_broken_stream_sends_only_the_missing_text() -> None:
    # reference §3.3: deltas, connection drop, then one non-streamed assistant line.
    _, events = run([r.init(), r.message_start("m1"), r.block_start(), r.text_delta("partial "),
                     r.text_delta("words "), r.assistant("m2", r.text_block("partial words and more")),
                     r.result()])
    assert texts(events) == ["partial ", "words ", "and more"]


def test_a_streamed_retry_does_not_repeat_what_the_client_has() -> None:
    _, events = run([r.init(), r.message_start("m1"), r.block_start(), r.text_delta("abc "),
                     r.api_retry(), *r.streamed_message("m2", "abc ", "def"), r.result()])
    assert "".join(texts(events)) == "abc def"


def test_a_retry_that_says_something_else_follows_after_a_blank_line() -> None:
    _, events = run([r.init(), r.message_start("m1"), r.block_start(), r.text_delta("first try"),
                     r.assistant("m2", r.text_block("second answer")), r.result()])
    assert texts(events) == ["first try", "\n\nsecond answer"]


def test_subagent_lines_and_synthetic_error_text_are_not_content() -> None:
    _, events = run([
        r.init(), r.text_delta("sub says", parent="toolu_1"),
        r.assistant("s1", r.text_block("sub text"), parent="toolu_1"),
        r.assistant("x", r.text_block("API Error: 529"), model="<synthetic>"),
        *r.streamed_message("m1", "parent"), r.result(),
    ])
    assert texts(events) == ["parent"]


def test_thinking_is_reasoning_not_content() -> None:
    _, events = run([r.init(), r.message_start("m1"), r.thinking_delta("hmm"),
                     *r.streamed_message("m1", "answer")[1:], r.result()])
    assert [type(e) for e in events[:2]] == [ReasoningDelta, TextDelta]


@pytest.mark.parametrize(
    ("result", "status", "code"),
    [
        (r.result(is_error=True, status=401, text="Invalid API key"), 401, "upstream_authentication_failed"),
        (r.result(is_error=True, status=403, text="forbidden"), 403, "upstream_permission_denied"),
        (r.result(is_error=True, status=404, text="There's an issue with the selected model"), 404, "model_not_found"),
        (r.result(is_error=True, status=429, text="API Error: Request rejected (429)"), 429, "rate_limit_exceeded"),
        (r.result(is_error=True, status=500, text="API Error: 500"), 502, "upstream_error"),
        (r.result(is_error=True, status=529, text="API Error: 529"), 503, "upstream_overloaded"),
        (r.result(is_error=True, status=400, text="prompt is too long"), 400, "upstream_bad_request"),
        (r.result(is_error=True, text="Request timed out", stop_reason="stop_sequence"), 504, "upstream_timeout"),
        (r.result(is_error=True, text="Not logged in · Please run /login"), 401, "cli_not_logged_in"),
        (r.result(is_error=True, subtype="error_max_turns", stop_reason="tool_use"), 422, "max_turns_exceeded"),
        (r.result(is_error=True, subtype="error_during_execution", stop_reason=None), 502, "cli_error"),
        # The misleading case the reference warns of: subtype success, yet a failure.
        (r.result(is_error=True, subtype="success", status=500), 502, "upstream_error"),
    ],
)
def test_failures_are_judged_by_is_error_and_mapped(result: dict[str, Any], status: int, code: str) -> None:
    turn, events = run([r.init(), result], returncode=1)
    assert isinstance(events[-1], TurnFailed)
    assert (events[-1].error.status_hint, events[-1].error.code) == (status, code)
    assert turn.state is TurnState.FAILED


def test_the_upstream_retry_after_reaches_the_error_through_the_cli_retry_line() -> None:
    # The CLI shows the upstream's retry-after only as the delay of its own retry.
    retry = r.api_retry(429) | {"retry_delay_ms": 3000}
    _, events = run([r.init(), retry, r.result(is_error=True, status=429, text="API Error: 429")],
                    returncode=1)
    assert isinstance(events[-1], TurnFailed) and events[-1].error.retry_after == 3.0


def test_a_refusal_is_a_content_filter_finish_not_an_error() -> None:
    _, events = run([r.init(), r.result(is_error=True, stop_reason="refusal")], returncode=1)
    assert isinstance(events[-1], TurnFinished) and events[-1].refused


@pytest.mark.parametrize(
    ("returncode", "stderr", "fragment"),
    [(0, "", "without a result"), (1, "boom\nError: bad flag", "code 1: Error: bad flag"),
     (-15, "", "SIGTERM"), (143, "", "SIGTERM"), (-9, "", "SIGKILL")],
)
def test_an_exit_without_a_result_fails(returncode: int, stderr: str, fragment: str) -> None:
    _, events = run([r.init(), r.text_delta("part")], returncode=returncode, stderr=stderr)
    assert isinstance(events[-1], TurnFailed)
    assert fragment in events[-1].error.message
    assert events[-1].error.status_hint == 502


def test_nothing_after_the_outcome_counts() -> None:
    turn, events = run([r.init(), r.result(), *r.streamed_message("m9", "late")], returncode=1)
    assert texts(events) == [] and isinstance(events[-1], TurnFinished)
    assert turn.state is TurnState.ENDED


def test_has_output_waits_for_the_model() -> None:
    turn = Turn()
    turn.feed(parse_record(r.init()))
    turn.feed(parse_record(r.api_retry()))
    assert not turn.has_output
    turn.feed(parse_record(r.message_start("m1")))
    assert turn.has_output


def test_stream_and_turn_together() -> None:
    stream = CLIStream()
    stream.receive_data(b"".join(r.line(o) for o in [r.init(), *r.streamed_message("m", "x"), r.result()]))
    stream.receive_data(b"")
    stream.receive_exit(0)
    turn, out = Turn(), []
    while (event := stream.next_event()) is not NEED_DATA:
        out += turn.feed(event)  # type: ignore[arg-type]
        if isinstance(event, Exit):
            break
    assert texts(out) == ["x"] and turn.state is TurnState.ENDED


# ---- the state machine, exhaustively (after h2's tests/test_state_machines.py) -----------

# One record per table input, subagent and retry lines included: (input, record).
SAMPLES: list[tuple[TurnInput, Record | Exit]] = [
    (SystemInit, parse_record(r.init())),
    (SystemEvent, parse_record(r.api_retry())),
    (SystemEvent, parse_record({**r.api_retry(), "parent_tool_use_id": "toolu_1"})),
    (StreamEvent, parse_record(r.message_start("m1"))),
    (StreamEvent, parse_record(r.text_delta("x"))),
    (StreamEvent, parse_record(r.text_delta("sub", parent="toolu_1"))),
    (AssistantMessage, parse_record(r.assistant("m1", r.text_block("x")))),
    (AssistantMessage, parse_record(r.assistant("x", r.text_block("API Error"), model="<synthetic>"))),
    (UserMessage, parse_record({"type": "user", "message": {"content": [{"type": "tool_result"}]}})),
    (ControlResponse, parse_record({"type": "control_response", "response": {"subtype": "success"}})),
    (ControlRequest, parse_record({"type": "control_request", "request_id": "r1",
                                   "request": {"subtype": "mcp_message"}})),
    (UnknownRecord, parse_record({"type": "something_new"})),
    (NonJSONLine, NonJSONLine(text="not json")),
    (Result, parse_record(r.result())),
    (Result, parse_record(r.result(is_error=True, stop_reason="refusal"))),
    (FAILING_RESULT, parse_record(r.result(is_error=True, status=529))),
    (Exit, Exit(returncode=0, stderr_tail="")),
    (Exit, Exit(returncode=1, stderr_tail="Error: boom")),
]

# A real run that leaves the interpreter in each state.
REACH: dict[TurnState, list[Record | Exit]] = {
    TurnState.STARTING: [],
    TurnState.RUNNING: [parse_record(r.init())],
    TurnState.DONE: [parse_record(r.init()), parse_record(r.result())],
    TurnState.ENDED: [parse_record(r.init()), parse_record(r.result()), Exit(returncode=0, stderr_tail="")],
    TurnState.FAILED: [parse_record(r.init()), Exit(returncode=1, stderr_tail="")],
}

LIVE = (TurnState.STARTING, TurnState.RUNNING)


def reach(state: TurnState) -> Turn:
    turn = Turn()
    for record in REACH[state]:
        turn.feed(record)
    assert turn.state is state
    return turn


def test_the_samples_cover_every_input_and_every_state_is_reached() -> None:
    assert {what for what, _ in SAMPLES} == set(INPUTS)
    assert set(REACH) == set(TurnState)


@given(st.sampled_from(TurnState), st.sampled_from(SAMPLES))
def test_every_input_in_every_state_is_a_legal_move_or_a_protocol_error(
    state: TurnState, sample: tuple[TurnInput, Record | Exit]
) -> None:
    what, record = sample
    turn = reach(state)
    settled = turn.outcome
    expected = TRANSITIONS[state].get(what)
    if expected is None:
        with pytest.raises(CLIError):
            turn.feed(record)
        assert turn.state is TurnState.FAILED
        return
    events = turn.feed(record)
    assert turn.state is expected
    # One outcome per turn: produced exactly when the table settles a live turn.
    outcomes = [e for e in events if isinstance(e, TurnFinished | TurnFailed)]
    if state in LIVE and expected in (TurnState.DONE, TurnState.FAILED):
        assert outcomes == [turn.outcome]
        assert isinstance(turn.outcome, TurnFailed) == (expected is TurnState.FAILED)
    else:
        assert outcomes == [] and turn.outcome is settled
    if state not in LIVE:
        assert events == []  # a settled turn ignores everything


def test_the_table_decides_every_pair() -> None:
    # Every kind of record the stream yields is an input, as is the exit and a failing result.
    assert set(INPUTS) == {*get_args(Record), Exit, FAILING_RESULT}
    assert set(TRANSITIONS) == set(TurnState)
    defined = {(state, what) for state, row in TRANSITIONS.items() for what in row}
    everything = {(state, what) for state in TurnState for what in INPUTS}
    # A pair is in the table or a documented protocol error, never both, never neither.
    assert not defined & PROTOCOL_ERRORS
    assert defined | PROTOCOL_ERRORS == everything


def test_input_after_the_exit_is_a_protocol_error() -> None:
    turn, _ = run([r.init(), r.result()])
    with pytest.raises(CLIError) as info:
        turn.feed(parse_record(r.init()))
    assert info.value.status_hint == 502 and "state=ended" in info.value.message
    assert turn.state is TurnState.FAILED
    assert turn.feed(Exit(returncode=0, stderr_tail="")) == []  # and stays there


# ---- client tools (client-tools reference §2, §12) and structured output (§9) --------------

DATA = Path(__file__).parents[1] / "data" / "tools"
CLIENT = frozenset({"get_weather", "get_time"})


def sample(name: str) -> list[bytes]:
    """A measured CLI stdout (the real 2.1.197 with the fake upstream), one line each."""
    return (DATA / name).read_bytes().splitlines(keepends=True)


def feed_all(turn: Turn, lines: list[dict[str, Any]]) -> list[TurnEvent]:
    return [e for obj in lines for e in turn.feed(parse_record(obj))]


def through_stream(turn: Turn, chunks: list[bytes], *, exit_: bool = True) -> list[TurnEvent]:
    """Feed raw stdout bytes, cut into ``chunks``, through CLIStream into ``turn``."""
    stream, out = CLIStream(), []

    def drain() -> None:
        while (event := stream.next_event()) is not NEED_DATA:
            out.extend(turn.feed(event))  # type: ignore[arg-type]
            if isinstance(event, Exit):
                return

    for chunk in chunks:
        stream.receive_data(chunk)
        drain()
    if exit_:
        stream.receive_data(b"")
        stream.receive_exit(0)
        drain()
    return out


def split_at(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({min(max(c, 0), len(data)) for c in cuts})
    pieces = [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]
    return [p for p in pieces if p]  # b"" would mean EOF


def kinds(events: list[TurnEvent]) -> list[str]:
    return [type(e).__name__ for e in events]


def test_the_measured_two_round_flow() -> None:
    # Text, a call, the client's result, a second call in the same CLI turn, the result,
    # the final text (reference §2.4) [flow_sdk_two_rounds].
    turn = Turn(client_tools=CLIENT)
    events = through_stream(turn, sample("flow_sdk_two_rounds.stdout.jsonl"))
    assert kinds(events) == [
        "TextDelta", "TextDelta", "TextDelta", "ToolCallStart", "ToolCallDelta",
        "ToolCallsRequested", "ToolCallStart", "ToolCallDelta", "ToolCallsRequested",
        *["TextDelta"] * 7, "TurnFinished"]
    assert texts(events[:3]) == ["Let ", "me ", "check."]
    first, second = (e for e in events if isinstance(e, ToolCallsRequested))
    assert first.calls == (ToolCall(call_id="toolu_F1", name="get_weather",
                                    arguments='{"city": "Paris"}'),)
    assert events[3] == ToolCallStart(index=0, call_id="toolu_F1", name="get_weather")
    # Each response numbers its calls from 0.
    assert events[6] == ToolCallStart(index=0, call_id="toolu_F2", name="get_time")
    assert second.calls[0].call_id == "toolu_F2"
    # Usage: message_start's input, message_delta's output, per response.
    assert first.usage == second.usage == TokenUsage(input_tokens=10, output_tokens=5)
    # The continuation starts its own response: no blank line in front.
    assert "".join(texts(events[9:])) == "Paris is sunny and it is 09:00."
    done = events[-1]
    assert isinstance(done, TurnFinished) and done.stop_reason == "end_turn"
    # The result counts all three API calls (30/15); the responses before had 20/10.
    assert done.usage == TokenUsage(input_tokens=10, output_tokens=5)
    assert not done.used_tools and turn.state is TurnState.ENDED


@given(st.lists(st.integers(min_value=0, max_value=15_000), max_size=40))
def test_any_split_of_the_bytes_gives_the_same_events(cuts: list[int]) -> None:
    data = b"".join(sample("flow_sdk_two_rounds.stdout.jsonl"))
    expected = through_stream(Turn(client_tools=CLIENT), [data])
    assert through_stream(Turn(client_tools=CLIENT), split_at(data, cuts)) == expected


def test_byte_by_byte_gives_the_same_events() -> None:
    data = b"".join(sample("flow_sdk_two_rounds.stdout.jsonl"))
    expected = through_stream(Turn(client_tools=CLIENT), [data])
    assert through_stream(Turn(client_tools=CLIENT),
                          [data[i:i + 1] for i in range(len(data))]) == expected


def test_argument_fragments_join_into_the_calls_arguments() -> None:
    turn = Turn(client_tools=CLIENT)
    events = feed_all(turn, [
        r.init(), r.usage_start("m1", input_tokens=12), r.block_start(), r.text_delta("Checking."),
        r.block_stop(0), r.tool_start(1, "toolu_1", "get_weather"),
        r.input_delta(1, '{"ci'), r.input_delta(1, 'ty": "Par'), r.input_delta(1, 'is"}'),
        r.assistant("m1", r.tool_block("toolu_1", "get_weather", {"city": "Paris"})),
        r.tools_call("get_weather", {"city": "Paris"}, "toolu_1"),
        r.block_stop(1), r.message_delta("tool_use"), r.ev({"type": "message_stop"}),
    ])
    assert kinds(events) == ["TextDelta", "ToolCallStart", *["ToolCallDelta"] * 3,
                             "ToolCallsRequested"]
    assert [e.arguments for e in events if isinstance(e, ToolCallDelta)] == [
        '{"ci', 'ty": "Par', 'is"}']
    (call,) = events[-1].calls  # type: ignore[union-attr]
    assert json.loads(call.arguments) == {"city": "Paris"}
    assert events[-1].usage == TokenUsage(input_tokens=12, output_tokens=3)  # type: ignore[union-attr]
    assert turn.outcome is None and turn.state is TurnState.RUNNING  # waiting for results


def test_parallel_calls_of_one_message() -> None:
    turn = Turn(client_tools=CLIENT)
    events = feed_all(turn, [
        r.init(), r.usage_start("m1"),
        r.tool_start(0, "toolu_A", "get_weather"), r.input_delta(0, '{"city":"Paris"}'),
        r.assistant("m1", r.tool_block("toolu_A", "get_weather", {"city": "Paris"})),
        r.tools_call("get_weather", {"city": "Paris"}, "toolu_A"), r.block_stop(0),
        r.tool_start(1, "toolu_B", "get_time"), r.input_delta(1, '{"city":'),
        r.input_delta(1, '"Oslo"}'),
        r.assistant("m1", r.tool_block("toolu_B", "get_time", {"city": "Oslo"})),
        r.tools_call("get_time", {"city": "Oslo"}, "toolu_B", rpc_id=3), r.block_stop(1),
        r.message_delta("tool_use"),
    ])
    assert [e for e in events if isinstance(e, ToolCallStart)] == [
        ToolCallStart(index=0, call_id="toolu_A", name="get_weather"),
        ToolCallStart(index=1, call_id="toolu_B", name="get_time")]
    assert [(d.index, d.arguments) for d in events if isinstance(d, ToolCallDelta)] == [
        (0, '{"city":"Paris"}'), (1, '{"city":'), (1, '"Oslo"}')]
    assert events[-1] == ToolCallsRequested(calls=(
        ToolCall(call_id="toolu_A", name="get_weather", arguments='{"city":"Paris"}'),
        ToolCall(call_id="toolu_B", name="get_time", arguments='{"city":"Oslo"}')),
        usage=TokenUsage(input_tokens=10, output_tokens=3))


def test_results_in_completion_order_then_the_answer() -> None:
    turn = Turn(client_tools=CLIENT)
    feed_all(turn, [r.init(), r.usage_start("m1"), r.tool_start(0, "toolu_A", "get_weather"),
                    r.tool_start(1, "toolu_B", "get_time"), r.message_delta("tool_use")])
    events = feed_all(turn, [r.tool_result_user("toolu_B", "noon"),
                             r.tool_result_user("toolu_A", "sunny"),
                             *r.streamed_message("m2", "Sunny", " at noon."),
                             r.result(usage={"input_tokens": 30, "output_tokens": 9})])
    assert texts(events) == ["Sunny", " at noon."]
    assert events[-1] == TurnFinished(stop_reason="end_turn", session_id=r.SID, cost_usd=0.01,
                                      result_text="ok", usage=TokenUsage(input_tokens=20,
                                                                         output_tokens=6))


def test_a_call_without_input_streams_an_empty_object() -> None:
    turn = Turn(client_tools=frozenset({"now"}))
    events = feed_all(turn, [r.init(), r.usage_start("m1"), r.tool_start(0, "toolu_N", "now"),
                             r.block_stop(0), r.message_delta("tool_use")])
    assert kinds(events) == ["ToolCallStart", "ToolCallDelta", "ToolCallsRequested"]
    assert events[1] == ToolCallDelta(index=0, arguments="{}")
    assert events[2].calls[0].arguments == "{}"  # type: ignore[union-attr]


@pytest.mark.parametrize("name", ["Bash", "StructuredOutput", "get_weather_v2"])
def test_other_tools_are_not_client_calls(name: str) -> None:
    turn = Turn(client_tools=CLIENT)
    events = feed_all(turn, [
        r.init(), *r.streamed_message("m1", "Let me look.")[:-3],
        r.tool_start(1, "toolu_X", name), r.input_delta(1, "{}"),
        r.assistant("m1", r.tool_block("toolu_X", name, {})),
        r.message_delta("tool_use"), r.tool_result_user("toolu_X", "done"),
        *r.streamed_message("m2", "Done."), r.result()])
    assert kinds(events) == ["TextDelta", "TextDelta", "TurnFinished"]
    assert texts(events) == ["Let me look.", "\n\nDone."]
    assert events[-1].used_tools  # type: ignore[union-attr]


def test_calls_known_only_from_assistant_lines_end_at_the_first_tools_call() -> None:
    # No stream events at all (the CLI's non-streaming fallback): the complete blocks are
    # the calls; the tools/call that follows ends the response.
    turn = Turn(client_tools=CLIENT)
    events = feed_all(turn, [
        r.init(), r.assistant("m1", r.text_block("Checking.")),
        r.assistant("m1", r.tool_block("toolu_A", "get_weather", {"city": "Paris"})),
    ])
    assert kinds(events) == ["TextDelta", "ToolCallStart", "ToolCallDelta"]
    assert events[2] == ToolCallDelta(index=0, arguments='{"city":"Paris"}')
    events = feed_all(turn, [r.tools_call("get_weather", {"city": "Paris"}, "toolu_A")])
    assert kinds(events) == ["ToolCallsRequested"]


def test_the_measured_fallback_calls_without_tool_use_ids() -> None:
    # Measured: the stream dropped after "Let me "; the CLI fetched the message again
    # without streaming, printed it as assistant lines (no message_delta) and sent each
    # tools/call without _meta["claudecode/toolUseId"].
    turn = Turn(client_tools=CLIENT)
    lines = sample("fallback_without_tool_use_ids.stdout.jsonl")
    events, resolved = [], []
    for raw in lines:
        record = parse_record(json.loads(raw))
        if isinstance(record, ControlRequest) and record.request["message"]["method"] == \
                "tools/call":
            params = record.request["message"]["params"]
            assert "claudecode/toolUseId" not in params["_meta"]
            resolved.append(turn.calls.call_id_for(params["name"], params["arguments"]))
        events += turn.feed(record)
    assert kinds(events) == ["TextDelta", "TextDelta", "ToolCallStart", "ToolCallDelta",
                             "ToolCallStart", "ToolCallDelta", "ToolCallsRequested"]
    assert "".join(texts(events)) == "Let me check the weather."
    requested = events[-1]
    assert isinstance(requested, ToolCallsRequested)
    assert [(c.call_id, c.name, json.loads(c.arguments)) for c in requested.calls] == [
        ("toolu_A", "get_weather", {"city": "Paris"}), ("toolu_B", "get_time", {"city": "Paris"})]
    assert resolved == ["toolu_A", "toolu_B"]


def test_call_id_for_claims_each_call_once_by_name_and_arguments() -> None:
    turn = Turn(client_tools=CLIENT)
    feed_all(turn, [
        r.init(),
        r.assistant("m1", r.tool_block("t1", "get_weather", {"city": "Paris"})),
        r.assistant("m1", r.tool_block("t2", "get_weather", {"city": "Oslo"})),
        r.assistant("m1", r.tool_block("t3", "get_weather", {"city": "Paris"})),
    ])
    assert turn.calls.call_id_for("get_time", {"city": "Paris"}) is None
    assert turn.calls.call_id_for("get_weather", {"city": "Oslo"}) == "t2"
    assert turn.calls.call_id_for("get_weather", {"city": "Paris"}) == "t1"
    assert turn.calls.call_id_for("get_weather", {"city": "Paris"}) == "t3"
    assert turn.calls.call_id_for("get_weather", {"city": "Paris"}) is None


def test_a_tools_call_with_its_id_is_no_longer_claimable() -> None:
    turn = Turn(client_tools=CLIENT)
    feed_all(turn, [r.init(), r.assistant("m1", r.tool_block("t1", "get_time", {})),
                    r.tools_call("get_time", {}, "t1")])
    assert turn.calls.call_id_for("get_time", {}) is None


# Structured output: the CLI's StructuredOutput tool [js_flag_2].

def structured_run(result: dict[str, Any]) -> tuple[Turn, list[TurnEvent]]:
    turn = Turn(structured=True)
    events = feed_all(turn, [
        r.init(), *r.streamed_message("m1", "Here you ", "go.")[:-3],
        r.tool_start(1, "toolu_S", "StructuredOutput"), r.input_delta(1, '{"name":"Bob","age":4}'),
        r.assistant("m1", r.tool_block("toolu_S", "StructuredOutput", {"name": "Bob", "age": 4})),
        r.message_delta("tool_use"),
        {"type": "user", "message": {"role": "user", "content": [
            {"tool_use_id": "toolu_S", "type": "tool_result",
             "content": "Structured output provided successfully"}]}},
        result])
    return turn, [*events, *turn.feed(Exit(returncode=0, stderr_tail=""))]


def test_structured_output_is_the_content_sent_whole_at_the_end() -> None:
    ok = r.result(text='{"name":"Bob","age":4}', stop_reason="tool_use") | {
        "structured_output": {"name": "Bob", "age": 4, "note": "é"}}
    turn, events = structured_run(ok)
    assert kinds(events) == ["TextDelta", "TurnFinished"]  # the model's text is no content
    assert events[0] == TextDelta('{"name":"Bob","age":4,"note":"é"}')
    done = events[1]
    assert isinstance(done, TurnFinished) and done.stop_reason == "end_turn"
    assert not done.used_tools  # StructuredOutput is the answer, not a tool run
    assert turn.state is TurnState.ENDED


def test_a_structured_turn_without_the_object_fails() -> None:
    # A model that answers in text twice ends "success" without structured_output (§9).
    _, events = structured_run(r.result(text="Sorry, here is prose."))
    failed = events[-1]
    assert isinstance(failed, TurnFailed)
    assert (failed.error.status_hint, failed.error.code) == (502, "structured_output_failed")
    assert failed.error.error_type == "server_error"


def test_a_structured_turn_that_ran_out_of_retries_fails_the_same_way() -> None:
    gave_up = {"type": "result", "subtype": "error_max_structured_output_retries",
               "is_error": True, "num_turns": 6, "stop_reason": "tool_use", "session_id": r.SID,
               "total_cost_usd": 0.0007, "usage": {"input_tokens": 40, "output_tokens": 20},
               "errors": ["Failed to provide valid structured output after 5 attempts"]}
    _, events = structured_run(gave_up)
    failed = events[-1]
    assert isinstance(failed, TurnFailed)
    assert (failed.error.status_hint, failed.error.code) == (502, "structured_output_failed")
    assert "after 5 attempts" in failed.error.message and not failed.error.retryable


def test_each_response_marks_the_transcript_line_that_completes_it() -> None:
    # The CLI writes its transcript a little after it answers; the uuid of a response's
    # last assistant line is how a reader of the file knows the response is in it.
    events = through_stream(Turn(client_tools=CLIENT), sample("flow_sdk_two_rounds.stdout.jsonl"))
    first, second = (e for e in events if isinstance(e, ToolCallsRequested))
    done = events[-1]
    assert isinstance(done, TurnFinished)
    assert [first.transcript_mark, second.transcript_mark, done.transcript_mark] == [
        "0f56aa7c-b366-4271-926e-9dd97223edbc", "b41745f3-5982-4a91-8a49-d54682b6c686",
        "d937f88b-95e7-429e-af43-8f8127377489"]
