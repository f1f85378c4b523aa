"""load_object, the one door for client JSON, and the parameter limits behind it."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ccproto import (
    MAX_DEPTH,
    InvalidRequestError,
    excerpt,
    load_object,
    structure_request,
    structure_responses_request,
)
from ccproto.policy import check_model

pytestmark = [pytest.mark.reliability]

# JSON-ish values: every scalar JSON has, strings with lone surrogates among them, nested.
_TEXT = st.text(alphabet=st.characters(codec=None, categories=None))  # surrogates included
_SCALARS = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | _TEXT
_VALUES = st.recursive(_SCALARS, lambda inner: st.lists(inner, max_size=4)
                       | st.dictionaries(_TEXT, inner, max_size=4), max_leaves=20)


def _deep(depth: int, inner: str = "1") -> str:
    return "[" * depth + inner + "]" * depth


def _raw(value: Any) -> str:
    # json.dumps escapes lone surrogates as \udXXX, exactly what a hostile client sends.
    return json.dumps(value)


@given(st.one_of(
    _VALUES.map(_raw),
    st.fixed_dictionaries({"messages": _VALUES, "model": _VALUES}, optional={
        "temperature": _VALUES, "n": _VALUES, "max_tokens": _VALUES, "metadata": _VALUES,
        "input": _VALUES, "top_p": _VALUES}).map(_raw),
    st.integers(0, 3000).map(_deep),
    st.binary(max_size=64),
))
@settings(max_examples=300, deadline=None)
def test_any_body_is_a_request_or_an_invalid_request_error(body: str | bytes) -> None:
    for parse in (load_object, structure_request, structure_responses_request):
        try:
            parse(body)
        except InvalidRequestError as exc:
            assert exc.status_hint == 400
            assert exc.message.encode("utf-8")  # the error itself can always be sent


@pytest.mark.parametrize("body", [
    "[" * 2000 + "]" * 2000,
    '{"metadata": ' + _deep(2000) + ', "messages": []}',
    '{"a": ' + _deep(MAX_DEPTH) + "}",
    '{"a": ' + _deep(900) + "}",  # shallower than json's own limit: the walk refuses it
])
def test_deep_nesting_is_a_400(body: str) -> None:
    with pytest.raises(InvalidRequestError, match="deeper than"):
        load_object(body)


def test_nesting_up_to_the_limit_is_fine() -> None:
    assert load_object('{"a": ' + _deep(MAX_DEPTH - 2) + "}")


@pytest.mark.parametrize(("body", "param"), [
    (r'{"messages": [{"role": "user", "content": "\ud800"}]}', "messages[0].content"),
    (r'{"messages": [{"role": "system", "content": "a\udfffb"}]}', "messages[0].content"),
    (r'{"model": "\ud800"}', "model"),
    (r'{"metadata": {"\ud800": "v"}}', "metadata"),
])
def test_lone_surrogates_are_a_400_naming_where(body: str, param: str) -> None:
    with pytest.raises(InvalidRequestError, match="lone surrogate") as info:
        load_object(body)
    assert info.value.param == param


def test_a_surrogate_pair_is_a_character_not_a_problem() -> None:
    assert load_object(r'{"s": "\ud83d\ude00"}') == {"s": "\U0001f600"}


@pytest.mark.parametrize("body", [b'{"t": NaN}', b'{"t": -Infinity}', b"\xff{}", b'{"a": 1'])
def test_only_strict_json_is_accepted(body: bytes) -> None:
    with pytest.raises(InvalidRequestError, match="not valid JSON"):
        load_object(body)


def test_excerpt_is_short_and_escaped() -> None:
    assert excerpt("gpt-4o") == "'gpt-4o'"
    quoted = excerpt("\ud800\n" + "x" * 1_000_000)
    assert quoted.startswith("'\\ud800\\nxxx") and quoted.endswith("…") and len(quoted) < 80


def _chat(**fields: Any) -> str:
    return json.dumps({"messages": [{"role": "user", "content": "hi"}], **fields})


@pytest.mark.parametrize(("fields", "param", "code"), [
    ({"max_tokens": -1}, "max_tokens", "integer_below_min_value"),
    ({"max_tokens": 0}, "max_tokens", "integer_below_min_value"),
    ({"max_completion_tokens": -5}, "max_completion_tokens", "integer_below_min_value"),
    ({"n": 0}, "n", "integer_below_min_value"),
    ({"n": 2}, "n", "unsupported_parameter"),
    ({"temperature": 2.5}, "temperature", "decimal_above_max_value"),
    ({"temperature": -0.1}, "temperature", "decimal_below_min_value"),
    ({"temperature": "hot"}, "temperature", "invalid_type"),
    ({"top_p": 1.5}, "top_p", "decimal_above_max_value"),
    ({"presence_penalty": -3}, "presence_penalty", "decimal_below_min_value"),
    ({"frequency_penalty": 2.01}, "frequency_penalty", "decimal_above_max_value"),
    ({"logprobs": 1}, "logprobs", "invalid_type"),
    ({"top_logprobs": 21}, "top_logprobs", "integer_above_max_value"),
    ({"top_logprobs": -1}, "top_logprobs", "integer_below_min_value"),
    ({"seed": 1.5}, "seed", "invalid_type"),
    ({"metadata": "tag"}, "metadata", "invalid_type"),
    ({"messages": []}, "messages", "empty_array"),
])
def test_chat_values_openai_refuses_are_400s(fields: dict[str, Any], param: str,
                                            code: str | None) -> None:
    with pytest.raises(InvalidRequestError) as info:
        structure_request(_chat(**fields))
    assert (info.value.param, info.value.code, info.value.status_hint) == (param, code, 400)
    assert info.value.error_type == "invalid_request_error"


def test_in_range_values_are_accepted() -> None:
    structure_request(_chat(temperature=0, top_p=1, n=1, max_tokens=1, presence_penalty=-2,
                            frequency_penalty=2, logprobs=False, top_logprobs=0, seed=-3,
                            temperature_extra=None, metadata={"k": "v"}))


def test_chat_metadata_is_ignored_whatever_it_holds() -> None:
    # Proxies and frameworks send numbers, nested objects and many keys; chat stores none.
    structure_request(_chat(metadata={"n": 1, "deep": {"a": [1]}, **{str(i): "v" for i in range(30)}}))


def test_a_null_is_an_absent_field() -> None:
    request = structure_request(_chat(stream=None, stream_options={"include_usage": None},
                                      temperature=None, metadata=None))
    assert request.stream is False
    assert request.stream_options is not None and request.stream_options.include_usage is False


@pytest.mark.parametrize(("fields", "param"), [
    ({"max_output_tokens": 0}, "max_output_tokens"),
    ({"max_output_tokens": -1}, "max_output_tokens"),
    ({"temperature": 3}, "temperature"),
    ({"top_p": -1}, "top_p"),
    ({"top_logprobs": 50}, "top_logprobs"),
    ({"metadata": {"k" * 65: "v"}}, "metadata"),
    ({"metadata": {str(i): "v" for i in range(17)}}, "metadata"),
    ({"max_tool_calls": -1}, "max_tool_calls"),
])
def test_responses_values_openai_refuses_are_400s(fields: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequestError) as info:
        structure_responses_request(json.dumps({"input": "hi", **fields}))
    assert info.value.param == param and info.value.status_hint == 400


def test_a_huge_model_name_is_quoted_short() -> None:
    with pytest.raises(InvalidRequestError) as info:
        check_model("x" * 100_000, default="sonnet", model_map={}, models=())
    assert len(info.value.message) < 500 and "xxx'…" in info.value.message
