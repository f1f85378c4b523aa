from __future__ import annotations

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
    Turn,
    TurnEvent,
    TurnFailed,
    TurnFinished,
    TurnState,
    UnknownRecord,
    UserMessage,
    parse_record,
)
from ccproto.turn import FAILING_RESULT, INPUTS, PROTOCOL_ERRORS, TRANSITIONS, TurnInput
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
