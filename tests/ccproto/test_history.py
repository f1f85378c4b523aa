"""ccproto.history: fingerprints, which histories can be seeded, the transcript format."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from ccproto import (
    Fingerprint,
    HistoryMessage,
    fingerprint,
    munge_cwd,
    new_turn_start,
    request_history,
    seed_transcript,
    seedable,
    structure_request,
    tool_calls_part,
    tool_results,
)


def history(*messages: dict[str, Any]) -> tuple[str | None, tuple[HistoryMessage, ...]]:
    return request_history(structure_request(json.dumps({"messages": list(messages)}).encode()))


def test_string_and_text_parts_are_the_same_content() -> None:
    a = history({"role": "user", "content": "a\nb"})
    b = history({"role": "user", "content": [{"type": "text", "text": "a"},
                                             {"type": "text", "text": "b"}]})
    assert fingerprint(*a) == fingerprint(*b)


def test_system_and_developer_messages_join_the_system_prompt() -> None:
    system, turns = history({"role": "system", "content": "S1"}, {"role": "user", "content": "u"},
                            {"role": "developer", "content": "S2"})
    assert system == "S1\n\nS2" and [t.role for t in turns] == ["user"]


def test_fingerprints_differ_by_role_text_order_and_system() -> None:
    base = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]
    variants = [
        base,
        [{"role": "user", "content": "hi"}, {"role": "user", "content": "yo"}],
        [{"role": "user", "content": "hi "}, {"role": "assistant", "content": "yo"}],
        list(reversed(base)),
        [{"role": "system", "content": "x"}, *base],
        [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo",
                                             "tool_calls": [{"id": "1"}]}],
    ]
    assert len({fingerprint(*history(*v)) for v in variants}) == len(variants)


@given(st.lists(st.tuples(st.sampled_from(["user", "assistant"]), st.text()), max_size=6),
       st.lists(st.tuples(st.sampled_from(["user", "assistant"]), st.text()), max_size=6))
def test_equal_fingerprints_only_for_equal_histories(
        a: list[tuple[str, str]], b: list[tuple[str, str]]) -> None:
    ta = tuple(HistoryMessage(r, (("text", t),)) for r, t in a)
    tb = tuple(HistoryMessage(r, (("text", t),)) for r, t in b)
    assert (fingerprint(None, ta) == fingerprint(None, tb)) == (ta == tb)


_MESSAGES = st.lists(st.builds(
    HistoryMessage, st.sampled_from(["user", "assistant", "tool"]),
    st.lists(st.tuples(st.sampled_from(["text", "image", "tool_calls"]), st.text()),
             max_size=3).map(tuple)), max_size=6)


@given(st.one_of(st.none(), st.text()), _MESSAGES, _MESSAGES)
def test_a_fingerprint_built_turn_by_turn_is_the_fingerprint_of_the_whole(
        system: str | None, earlier: list[HistoryMessage], later: list[HistoryMessage]) -> None:
    # The digests stored by earlier releases must still match: the whole document's
    # sha256, as the first release computed it.
    doc = [system, [[m.role, [list(p) for p in m.parts]] for m in earlier + later]]
    whole = hashlib.sha256(json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode())
    digest = Fingerprint(system)
    digest.add(earlier)
    before = digest.copy()
    digest.add(later)
    assert digest.hexdigest() == fingerprint(system, earlier + later) == whole.hexdigest()
    assert before.hexdigest() == fingerprint(system, earlier)  # a copy goes its own way


def test_seedable_merges_roles_and_refuses_what_a_transcript_cannot_hold() -> None:
    _, turns = history({"role": "user", "content": "a"}, {"role": "user", "content": "b"},
                       {"role": "assistant", "content": "c"},
                       {"role": "tool", "content": "d", "tool_call_id": "t"})
    assert seedable(turns) == [("user", "a\n\nb"), ("assistant", "c"), ("user", "d")]
    _, opens_with_assistant = history({"role": "assistant", "content": "x"},
                                      {"role": "user", "content": "y"})
    assert seedable(opens_with_assistant) is None
    _, image = history({"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AA=="}}]})
    assert seedable(image) is None


def test_seed_transcript_is_a_chain_of_cli_session_lines() -> None:
    ids = iter(["u1", "u2"])
    data = seed_transcript([("user", "My name is Bob."), ("assistant", "Hi Bob.")],
                           session_id="S", cwd="/w", version="2.1.197", model="m",
                           timestamp="2026-01-01T00:00:00.000Z", uuids=ids)
    first, second = (json.loads(line) for line in data.decode().splitlines())
    assert first["parentUuid"] is None and first["type"] == "user"
    assert first["message"] == {"role": "user", "content": "My name is Bob."}
    assert second["parentUuid"] == "u1" and second["type"] == "assistant"
    assert second["message"]["content"] == [{"type": "text", "text": "Hi Bob."}]
    assert {first["sessionId"], second["sessionId"]} == {"S"} and second["cwd"] == "/w"
    assert data.endswith(b"\n")


def test_munge_cwd_matches_the_cli() -> None:
    # Example measured in protocol reference §5.1.
    assert munge_cwd("/srv/work/a.b_c d") == "-srv-work-a-b-c-d"


# ---- tool calls in the history ---------------------------------------------------------------

def calling(arguments: str, content: Any = None, call_id: str = "call_1") -> dict[str, Any]:
    return {"role": "assistant", "content": content, "tool_calls": [
        {"id": call_id, "type": "function",
         "function": {"name": "get_weather", "arguments": arguments}}]}


def tool(text: str, call_id: str = "call_1") -> dict[str, Any]:
    return {"role": "tool", "tool_call_id": call_id, "content": text}


ASK = {"role": "user", "content": "Weather in Paris?"}


def test_reserialised_arguments_keep_the_fingerprint() -> None:
    # LangChain parses the arguments and sends them back with its own whitespace and order.
    ours = history(ASK, calling('{"city": "Paris", "unit": "c", "days": [1, 2]}'),
                   tool("sunny"))
    theirs = history(ASK, calling('{"days":[1,2],"unit":"c","city":"Paris"}'), tool("sunny"))
    assert fingerprint(*ours) == fingerprint(*theirs)
    other = history(ASK, calling('{"city": "Oslo", "unit": "c", "days": [1, 2]}'), tool("sunny"))
    assert fingerprint(*ours) != fingerprint(*other)


def test_arguments_that_are_not_json_are_compared_as_text() -> None:
    a = history(ASK, calling("{not json"), tool("x"))
    assert fingerprint(*a) == fingerprint(*history(ASK, calling("{not json"), tool("x")))
    assert fingerprint(*a) != fingerprint(*history(ASK, calling("{not  json"), tool("x")))


def test_null_and_empty_content_of_a_calling_message_are_the_same() -> None:
    fingerprints = {fingerprint(*history(ASK, calling("{}", content), tool("x")))
                    for content in (None, "", [])}
    assert len(fingerprints) == 1
    with_text = history(ASK, calling("{}", "Let me check."), tool("x"))
    assert fingerprint(*with_text) not in fingerprints


def test_the_tool_call_id_is_part_of_the_fingerprint() -> None:
    a = history(ASK, calling("{}", call_id="call_1"), tool("x", "call_1"))
    b = history(ASK, calling("{}", call_id="call_1"), tool("x", "call_2"))
    c = history(ASK, calling("{}", call_id="call_2"), tool("x", "call_1"))
    assert len({fingerprint(*a), fingerprint(*b), fingerprint(*c)}) == 3


def test_tool_calls_part_is_canonical_json() -> None:
    assert tool_calls_part([("c1", "f", '{"b": 1, "a": [1, 2]}'), ("c2", "g", "raw")]) == \
        '[["c1","f",{"a":[1,2],"b":1}],["c2","g","raw"]]'


def test_several_trailing_tool_messages_are_one_new_turn() -> None:
    body = {"messages": [ASK, calling("{}"), tool("first"),
                         {"role": "user", "content": "and?"},
                         {"role": "assistant", "content": None, "tool_calls": [
                             {"id": "a", "type": "function",
                              "function": {"name": "f", "arguments": "{}"}},
                             {"id": "b", "type": "function",
                              "function": {"name": "g", "arguments": "{}"}}]},
                         tool("result b", "b"),
                         {"role": "tool", "tool_call_id": "a",
                          "content": [{"type": "text", "text": "result"},
                                      {"type": "text", "text": "a"}]}]}
    request = structure_request(json.dumps(body).encode())
    assert tool_results(request) == {"b": "result b", "a": "result\na"}
    _, turns = request_history(request)
    assert new_turn_start([t.role for t in turns]) == 5
    assert [t.role for t in turns[5:]] == ["tool", "tool"]


def test_results_then_a_user_message_are_one_new_turn() -> None:
    # An agent framework that ended its run on a call sends the result and its next
    # question together.
    request = structure_request(json.dumps({"messages": [ASK, calling("{}"), tool("x"),
                                                         {"role": "user", "content": "ok"}]}).encode())
    assert tool_results(request) == {"call_1": "x"}
    _, turns = request_history(request)
    assert new_turn_start([t.role for t in turns]) == 2


def test_without_tool_messages_the_new_turn_is_the_last_message() -> None:
    request = structure_request(json.dumps({"messages": [
        ASK, {"role": "assistant", "content": "hi"}, {"role": "user", "content": "ok"}]}).encode())
    assert tool_results(request) is None
    assert new_turn_start(["user", "assistant", "user"]) == 2
    assert new_turn_start(()) == 0
    assert new_turn_start(["tool"]) == 0
