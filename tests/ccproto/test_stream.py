"""CLIStream over real CLI transcripts: however the bytes are split, the records are the same."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ccproto import (
    NEED_DATA,
    CLIError,
    CLIStream,
    Exit,
    NonJSONLine,
    Result,
    SystemInit,
    Turn,
    TurnEvent,
    UnknownRecord,
)

TRANSCRIPTS = sorted((Path(__file__).parents[1] / "data" / "transcripts").glob("*.jsonl"))


def drain(stream: CLIStream) -> list[object]:
    out: list[object] = []
    while (event := stream.next_event()) is not NEED_DATA:
        out.append(event)
        if isinstance(event, Exit):
            break
    return out


def feed(pieces: list[bytes], returncode: int = 0) -> list[object]:
    stream = CLIStream()
    out: list[object] = []
    for piece in pieces:
        stream.receive_data(piece)
        out += drain(stream)
    stream.receive_data(b"")
    out += drain(stream)
    stream.receive_exit(returncode, b"tail")
    out += drain(stream)
    return out


def turn_events(records: list[object]) -> list[TurnEvent]:
    turn = Turn()
    return [e for r in records for e in turn.feed(r)]  # type: ignore[arg-type]


def split_at(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    pieces = [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]
    return [p for p in pieces if p]  # b"" would mean EOF


def test_there_are_transcripts() -> None:
    assert len(TRANSCRIPTS) >= 10


@pytest.mark.parametrize("path", TRANSCRIPTS, ids=lambda p: p.stem)
def test_whole_and_byte_by_byte_agree(path: Path) -> None:
    data = path.read_bytes()
    whole = feed([data])
    assert whole == feed([data[i : i + 1] for i in range(len(data))])
    assert isinstance(whole[-1], Exit) and whole[-1].stderr_tail == "tail"
    assert not any(isinstance(r, NonJSONLine) for r in whole)
    assert not any(isinstance(r, UnknownRecord) for r in whole), "a record type ccproto lacks"
    assert turn_events(whole) == turn_events(feed([data]))


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(TRANSCRIPTS) if TRANSCRIPTS else st.nothing(), st.lists(st.integers(0, 10**7)))
def test_random_splits_agree(path: Path, cuts: list[int]) -> None:
    data = path.read_bytes()
    assert feed(split_at(data, cuts)) == feed([data])


def test_exit_comes_only_after_eof_the_last_line_and_the_status() -> None:
    stream = CLIStream()
    stream.receive_data(b'{"type":"system","subtype":"init","session_id":"s"}\n{"type":"res')
    assert isinstance(stream.next_event(), SystemInit)
    assert stream.next_event() is NEED_DATA
    stream.receive_exit(1, b"")
    assert stream.next_event() is NEED_DATA  # stdout not at EOF yet: lines may follow
    stream.receive_data(b'ult","is_error":true}')
    stream.receive_data(b"")
    last = stream.next_event()
    assert isinstance(last, Result) and last.is_error  # unterminated last line still counts
    assert stream.next_event() == Exit(returncode=1, stderr_tail="")
    with pytest.raises(RuntimeError):
        stream.next_event()


def test_odd_lines_are_kept_not_fatal() -> None:
    out = feed([b'\n\nnot json\n{"type":"brand_new","x":1}\n[1,2]\n'])
    assert out[0] == NonJSONLine(text="not json")
    assert isinstance(out[1], UnknownRecord) and out[1].type == "brand_new"
    assert isinstance(out[2], UnknownRecord)
    assert isinstance(out[3], Exit)


def test_a_line_over_the_limit_is_a_protocol_error() -> None:
    stream = CLIStream(max_line_size=16)
    stream.receive_data(b'{"type":"x"}\n' + b"y" * 10)
    assert isinstance(stream.next_event(), UnknownRecord)
    assert stream.next_event() is NEED_DATA
    stream.receive_data(b"y" * 10)
    with pytest.raises(CLIError) as info:
        stream.next_event()
    assert info.value.status_hint == 502
    long_complete = CLIStream(max_line_size=4)
    long_complete.receive_data(b"123456\n")
    with pytest.raises(CLIError):
        long_complete.next_event()
