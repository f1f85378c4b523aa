"""Hostile request bodies against the whole app, in-process: a 400, never a 500.

No CLI is needed: every refusal comes before a turn starts. A body that passes gets 503
here (no CLI was found), which these tests accept; what they never accept is a 500.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ccserver.app import App
from ccserver.settings import Settings
from ccserver.settings.sections import ConversationSettings
from tests.support.asgi_client import Response, request

pytestmark = [pytest.mark.reliability]

PATHS = ("/v1/chat/completions", "/v1/responses", "/v1/conversations")

_TEXT = st.text(alphabet=st.characters(codec=None, categories=None), max_size=20)
_SCALARS = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | _TEXT
_VALUES = st.recursive(_SCALARS, lambda inner: st.lists(inner, max_size=3)
                       | st.dictionaries(_TEXT, inner, max_size=3), max_leaves=12)
_MESSAGE = st.fixed_dictionaries({"role": st.sampled_from(["user", "system"]) | _VALUES,
                                  "content": _TEXT | _VALUES})
_BODIES = st.one_of(
    _VALUES.map(lambda v: json.dumps(v).encode()),
    st.fixed_dictionaries({}, optional={
        "messages": st.lists(_MESSAGE, max_size=2) | _VALUES, "input": _TEXT | _VALUES,
        "model": _TEXT | _VALUES, "metadata": _VALUES, "temperature": _VALUES,
        "max_tokens": _VALUES, "max_output_tokens": _VALUES, "n": _VALUES,
        "conversation_id": _TEXT, "stream": _VALUES,
    }).map(lambda v: json.dumps(v).encode()),
    st.integers(0, 3000).map(lambda d: b"[" * d + b"]" * d),
    st.binary(max_size=40),
)


@asynccontextmanager
async def _opened(tmp_path: Path) -> AsyncIterator[App]:
    # No lifespan: the store is opened by hand, so conversations can be created.
    gateway = App(Settings(conversation=ConversationSettings(
        store_path=str(tmp_path / "c.sqlite3"))))
    await gateway.gateway.store.open()
    try:
        yield gateway
    finally:
        await gateway.gateway.store.close()


@pytest.fixture
async def app(tmp_path: Path) -> AsyncIterator[App]:
    async with _opened(tmp_path) as gateway:
        yield gateway


async def _post(app: App, path: str, body: bytes) -> Response:
    return await request(app, "POST", path, body=body,
                         headers=[("content-type", "application/json")])


def _assert_400(response: Response, param: str | None = None) -> dict[str, Any]:
    assert response.status == 400, response.body[:300]
    error: dict[str, Any] = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    if param is not None:
        assert error["param"] == param
    return error


@given(body=_BODIES, path=st.sampled_from(PATHS))
@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
async def test_no_body_is_a_500(tmp_path: Path, path: str, body: bytes) -> None:
    # An app per example: hypothesis runs each one apart from the test's fixtures.
    async with _opened(tmp_path) as app:
        response = await _post(app, path, body)
    assert response.status in (200, 400, 404, 503), response.body[:300]
    assert response.json()


DEEP = b"[" * 2000 + b"]" * 2000


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("body", [
    DEEP,
    b'{"model": "sonnet", "metadata": ' + DEEP + b', "messages": [], "input": "hi"}',
])
async def test_deep_nesting_is_a_400(app: App, path: str, body: bytes) -> None:
    assert "deeper than" in _assert_400(await _post(app, path, body))["message"]


@pytest.mark.parametrize(("path", "body", "param"), [
    ("/v1/chat/completions", rb'{"messages": [{"role": "user", "content": "\ud800"}]}',
     "messages[0].content"),
    ("/v1/chat/completions",
     rb'{"messages": [{"role": "system", "content": "\ud800"}, {"role": "user", "content": "q"}]}',
     "messages[0].content"),
    ("/v1/responses", rb'{"input": "\udc00"}', "input"),
    ("/v1/responses", rb'{"input": "q", "instructions": "\ud800"}', "instructions"),
    ("/v1/conversations", rb'{"model": "\ud800"}', "model"),
])
async def test_lone_surrogates_are_a_400(app: App, path: str, body: bytes, param: str) -> None:
    assert "lone surrogate" in _assert_400(await _post(app, path, body), param)["message"]


async def test_empty_messages_are_a_400(app: App) -> None:
    _assert_400(await _post(app, "/v1/chat/completions", b'{"messages": []}'), "messages")


@pytest.mark.parametrize(("path", "fields", "param"), [
    ("/v1/chat/completions", {"max_tokens": -1}, "max_tokens"),
    ("/v1/chat/completions", {"max_completion_tokens": -1}, "max_completion_tokens"),
    ("/v1/chat/completions", {"n": 0}, "n"),
    ("/v1/chat/completions", {"n": 3}, "n"),
    ("/v1/chat/completions", {"temperature": 2.1}, "temperature"),
    ("/v1/chat/completions", {"top_p": 1.1}, "top_p"),
    ("/v1/chat/completions", {"presence_penalty": -2.5}, "presence_penalty"),
    ("/v1/chat/completions", {"frequency_penalty": 9}, "frequency_penalty"),
    ("/v1/chat/completions", {"logprobs": "yes"}, "logprobs"),
    ("/v1/chat/completions", {"top_logprobs": 21}, "top_logprobs"),
    ("/v1/responses", {"max_output_tokens": 0}, "max_output_tokens"),
    ("/v1/responses", {"max_output_tokens": -3}, "max_output_tokens"),
    ("/v1/responses", {"temperature": -1}, "temperature"),
])
async def test_out_of_range_values_are_400s_naming_the_param(
        app: App, path: str, fields: dict[str, Any], param: str) -> None:
    body = {"messages": [{"role": "user", "content": "q"}], "input": "q", **fields}
    _assert_400(await _post(app, path, json.dumps(body).encode()), param)


async def test_a_1mb_conversation_id_gets_a_small_404(app: App) -> None:
    conversation_id = "conv_" + "x" * 1_000_000
    response = await request(app, "GET", f"/v1/conversations/{conversation_id}")
    assert response.status == 404
    assert len(response.body) < 500
    assert response.json()["error"]["code"] == "conversation_not_found"


async def test_an_unknown_path_is_quoted_short(app: App) -> None:
    response = await request(app, "GET", "/v1/" + "p" * 100_000)
    assert response.status == 404 and len(response.body) < 500
