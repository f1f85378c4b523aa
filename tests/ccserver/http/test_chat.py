"""POST /v1/chat/completions in-process over the replay CLI: JSON, SSE, and the refusals.

The replay CLI prints a recorded transcript (tests/data/transcripts); what the real CLI
does with the gateway's argv and stdin is tests/e2e's business.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from ccserver.app import App
from tests.support.asgi_client import Response, request, sse_events
from tests.support.replay import ReplayCLI
from tests.support.settings import SettingsFactory

# text_stream.jsonl's answer, and its usage.
ANSWER = "Streaming works: this answer arrives as several small text deltas."
PROMPT_TOKENS, COMPLETION_TOKENS = 29173, 5


def chat(**body: Any) -> bytes:
    return json.dumps({"model": "sonnet", "messages": [{"role": "user", "content": "hi"}],
                       **body}).encode()


async def post(app: App, body: bytes, *headers: tuple[str, str]) -> Response:
    return await request(app, "POST", "/v1/chat/completions", body=body, headers=headers)


def chunks(response: Response) -> list[Any]:
    """The SSE body's data payloads; the final ``[DONE]`` stays a string."""
    return [data if data == "[DONE]" else json.loads(data) for _, data in sse_events(response.body)]


async def test_a_json_answer(app: App, replay_cli: ReplayCLI) -> None:
    response = await post(app, chat())
    assert response.status == 200
    assert (response.header("content-type") or "").startswith("application/json")
    body = response.json()
    assert body["object"] == "chat.completion" and body["id"].startswith("chatcmpl-")
    assert body["model"] == "sonnet"
    [choice] = body["choices"]
    assert choice["message"]["role"] == "assistant" and choice["message"]["content"] == ANSWER
    assert choice["finish_reason"] == "stop"
    assert body["usage"]["prompt_tokens"] == PROMPT_TOKENS
    assert body["usage"]["completion_tokens"] == COMPLETION_TOKENS
    assert body["conversation_id"] == response.header("x-conversation-id")
    # The prompt went to the CLI on stdin, as one stream-json user line.
    [run] = replay_cli.runs()
    sent = json.loads(run["stdin"])
    assert sent["type"] == "user" and "hi" in json.dumps(sent["message"])


async def test_an_sse_answer_role_first_then_deltas_then_finish_and_done(app: App) -> None:
    response = await post(app, chat(stream=True))
    assert response.status == 200
    assert (response.header("content-type") or "").startswith("text/event-stream")
    *data, done = chunks(response)
    assert done == "[DONE]"
    assert all(c["object"] == "chat.completion.chunk" for c in data)
    assert len({c["id"] for c in data}) == 1
    first, *rest = data
    assert first["choices"][0]["delta"]["role"] == "assistant"
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in data)
    assert text == ANSWER
    assert sum(1 for c in rest if c["choices"][0]["delta"].get("content")) > 1  # deltas
    finishes = [c["choices"][0]["finish_reason"] for c in data]
    assert finishes[-1] == "stop" and set(finishes[:-1]) == {None}
    assert all(c.get("usage") is None for c in data)  # not asked for


async def test_include_usage_adds_a_usage_chunk_before_done(app: App) -> None:
    response = await post(app, chat(stream=True, stream_options={"include_usage": True}))
    *data, usage, done = chunks(response)
    assert done == "[DONE]"
    assert usage["choices"] == []
    assert usage["usage"]["prompt_tokens"] == PROMPT_TOKENS
    assert usage["usage"]["completion_tokens"] == COMPLETION_TOKENS
    assert data[-1]["choices"][0]["finish_reason"] == "stop"
    assert all(c.get("usage") is None for c in data)


async def test_the_next_turn_continues_the_conversation(app: App, replay_cli: ReplayCLI) -> None:
    first = await post(app, chat())
    conversation_id = first.json()["conversation_id"]
    second = await post(app, chat(conversation_id=conversation_id))
    assert second.status == 200
    assert second.json()["conversation_id"] == conversation_id
    by_header = await post(app, chat(), ("x-conversation-id", conversation_id))
    assert by_header.header("x-conversation-id") == conversation_id
    assert len(replay_cli.runs()) == 3
    stored = (await request(app, "GET", f"/v1/conversations/{conversation_id}")).json()
    assert stored["turns"] == 3


@pytest.mark.reliability
async def test_a_failure_before_any_content_gets_its_own_status(
        app: App, replay_cli: ReplayCLI) -> None:
    replay_cli.play("err429")
    for stream in (False, True):
        response = await post(app, chat(stream=stream))
        assert response.status == 429, response.body
        assert response.json()["error"]["code"] == "rate_limit_exceeded"


async def test_a_bad_body_is_a_400_that_names_the_param(app: App, replay_cli: ReplayCLI) -> None:
    for body, param in [
        (chat(messages=[{"role": "robot", "content": "hi"}]), "messages[0].role"),
        (json.dumps({"model": "sonnet"}).encode(), "messages"),
        (chat(n=2), "n"),
        (chat(reasoning_effort="extreme"), "reasoning_effort"),
        (chat(model="gpt-nonsense"), "model"),
    ]:
        response = await post(app, body)
        assert response.status == 400, body
        error = response.json()["error"]
        assert error["type"] == "invalid_request_error" and error["param"] == param, error
    not_json = await post(app, b"{nope")
    assert not_json.status == 400
    assert replay_cli.runs() == []  # no CLI was started for any of them


async def test_an_unknown_conversation_is_a_404(app: App, replay_cli: ReplayCLI) -> None:
    by_body = await post(app, chat(conversation_id="conv_unknown"))
    by_header = await post(app, chat(), ("x-conversation-id", "conv_unknown"))
    for response in (by_body, by_header):
        assert response.status == 404
        assert response.json()["error"]["type"] == "invalid_request_error"
    assert replay_cli.runs() == []


async def test_other_methods_are_a_405_with_allow(app: App) -> None:
    for method in ("GET", "DELETE", "PUT"):
        response = await request(app, method, "/v1/chat/completions")
        assert response.status == 405
        assert response.header("allow") == "POST, OPTIONS"
        assert response.json()["error"]["code"] == "method_not_allowed"


async def test_an_oversize_body_is_a_413(make_settings: SettingsFactory) -> None:
    # The body is read before any turn starts: no CLI and no lifespan are needed.
    small = App(make_settings(server={"max_body_bytes": 100}))
    body = chat(user="x" * 200)
    declared = await post(small, body, ("content-length", str(len(body))))
    counted = await post(small, body)  # no Content-Length: counted as it arrives
    for response in (declared, counted):
        assert response.status == 413
        assert "100 bytes" in response.json()["error"]["message"]


async def test_a_body_that_stops_arriving_is_a_408(make_settings: SettingsFactory) -> None:
    # The client sends part of its body and then nothing: the read's deadline answers, with
    # no CLI and no lifespan. Behaviour, not timing: the stalled part never completes.
    impatient = App(make_settings(server={"body_timeout_seconds": 0.2}))
    for path in ("/v1/chat/completions", "/v1/responses", "/v1/conversations"):
        response = await request(impatient, "POST", path, body=b'{"model": "so',
                                 headers=[("content-length", "1000000")], stall=True)
        assert response.status == 408, path
        error = response.json()["error"]
        assert (error["type"], error["code"]) == ("invalid_request_error", "request_timeout")
        assert response.header("connection") == "close"
        assert response.header("x-should-retry") == "true"
