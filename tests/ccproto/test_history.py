"""ccproto.history: fingerprints, which histories can be seeded, the transcript format."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from ccproto import (
    HistoryMessage,
    fingerprint,
    munge_cwd,
    request_history,
    seed_transcript,
    seedable,
    structure_request,
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
