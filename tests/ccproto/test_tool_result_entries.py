"""`tool_result_entries`: the client's tool results written after the calls a session's
last message made, in the shape the CLI writes itself, or None when they do not fit."""

from __future__ import annotations

import itertools
import json
from typing import Any

from ccproto import tool_result_entries


def _entry(kind: str, uuid: str, parent: str | None, content: Any, message_id: str = "m1"
           ) -> dict[str, Any]:
    message: dict[str, Any] = {"role": kind, "content": content}
    if kind == "assistant":
        message["id"] = message_id
    return {"type": kind, "uuid": uuid, "parentUuid": parent, "message": message}


def _transcript(*entries: dict[str, Any]) -> bytes:
    noise = {"type": "queue-operation", "operation": "enqueue"}
    return b"".join(json.dumps(e).encode() + b"\n" for e in (noise, *entries))


def _call(call_id: str) -> list[dict[str, Any]]:
    return [{"type": "tool_use", "id": call_id, "name": "f", "input": {}}]


HELD = (_entry("user", "u1", None, "go"),
        _entry("assistant", "a1", "u1", [{"type": "text", "text": "Let me check."}]),
        _entry("assistant", "a2", "a1", _call("t1")),
        _entry("assistant", "a3", "a2", _call("t2")))


def _answer(transcript: bytes, results: dict[str, str]) -> list[dict[str, Any]] | None:
    uuids = (f"n{i}" for i in itertools.count())
    lines = tool_result_entries(transcript, results, session_id="s", cwd="/w", version="v",
                                timestamp="T", uuids=uuids)
    return None if lines is None else [json.loads(line) for line in lines.splitlines()]


def test_each_call_gets_its_result_chained_after_the_last_call() -> None:
    out = _answer(_transcript(*HELD), {"t2": "two", "t1": "one"})
    assert out is not None
    assert [(e["uuid"], e["parentUuid"]) for e in out] == [("n0", "a3"), ("n1", "n0")]
    assert [e["message"]["content"][0]["tool_use_id"] for e in out] == ["t1", "t2"]
    assert out[0]["message"]["content"][0]["content"] == [{"type": "text", "text": "one"}]
    assert {e["type"] for e in out} == {"user"} and out[0]["sessionId"] == "s"


def test_results_that_do_not_answer_exactly_the_last_calls_are_refused() -> None:
    assert _answer(_transcript(*HELD), {"t1": "one"}) is None
    assert _answer(_transcript(*HELD), {"t1": "one", "t2": "two", "t3": "?"}) is None


def test_calls_already_answered_or_rejected_wait_for_nothing() -> None:
    rejected = _entry("user", "r1", "a3", [{"type": "tool_result", "tool_use_id": "t2",
                                            "content": "rejected", "is_error": True}])
    assert _answer(_transcript(*HELD, rejected), {"t1": "one", "t2": "two"}) is None
    ended = _entry("assistant", "a4", "r1", [{"type": "text", "text": "done"}], "m2")
    assert _answer(_transcript(*HELD, rejected, ended), {"t1": "one", "t2": "two"}) is None


def test_only_the_last_message_counts_and_junk_lines_are_skipped() -> None:
    earlier = _entry("assistant", "a0", None, _call("t0"), "m0")
    transcript = _transcript(earlier, *HELD) + b"not json\n"
    assert _answer(transcript, {"t0": "zero", "t1": "one", "t2": "two"}) is None
    assert _answer(transcript, {"t1": "one", "t2": "two"}) is not None
    assert _answer(b"", {"t1": "one"}) is None
