"""POST /v1/responses (JSON and SSE) and GET /v1/responses/{id}, in-process over the replay CLI."""

from __future__ import annotations

import json
from typing import Any

from ccserver.app import App
from tests.support.asgi_client import Response, request, sse_events
from tests.support.replay import ReplayCLI

ANSWER = "Streaming works: this answer arrives as several small text deltas."  # text_stream


async def post(app: App, **body: Any) -> Response:
    payload = json.dumps({"model": "sonnet", "input": "hi", **body}).encode()
    return await request(app, "POST", "/v1/responses", body=payload)


def output_text(response: dict[str, Any]) -> str:
    return "".join(part["text"] for item in response["output"] if item["type"] == "message"
                   for part in item["content"] if part["type"] == "output_text")


async def test_a_json_response_is_stored_and_read_back(app: App) -> None:
    response = await post(app)
    assert response.status == 200
    body = response.json()
    assert body["object"] == "response" and body["status"] == "completed"
    assert body["id"].startswith("resp")
    assert output_text(body) == ANSWER
    assert body["usage"]["output_tokens"] == 5
    stored = await request(app, "GET", f"/v1/responses/{body['id']}")
    assert stored.status == 200
    assert stored.json()["id"] == body["id"] and output_text(stored.json()) == ANSWER


async def test_an_sse_response_ends_with_its_terminal_event(app: App) -> None:
    response = await post(app, stream=True)
    assert response.status == 200
    assert (response.header("content-type") or "").startswith("text/event-stream")
    events = [(name, json.loads(data)) for name, data in sse_events(response.body)]
    names = [name for name, _ in events]
    assert names[0] == "response.created" and names[-1] == "response.completed"
    assert all(name == data["type"] for name, data in events)
    sequence = [data["sequence_number"] for _, data in events]
    assert sequence == sorted(sequence) and len(set(sequence)) == len(sequence)
    deltas = "".join(d["delta"] for n, d in events if n == "response.output_text.delta")
    assert deltas == ANSWER
    final = events[-1][1]["response"]
    assert final["status"] == "completed" and output_text(final) == ANSWER
    assert b"[DONE]" not in response.body  # Responses streams end with the terminal event
    stored = await request(app, "GET", f"/v1/responses/{final['id']}")
    assert stored.status == 200


async def test_store_false_keeps_nothing_to_read_back(app: App) -> None:
    body = (await post(app, store=False)).json()
    assert (await request(app, "GET", f"/v1/responses/{body['id']}")).status == 404


async def test_previous_response_id_continues_its_conversation(app: App) -> None:
    first = await post(app)
    second = await post(app, previous_response_id=first.json()["id"])
    assert second.status == 200
    assert second.header("x-conversation-id") == first.header("x-conversation-id")


async def test_an_unknown_response_is_a_404(app: App, replay_cli: ReplayCLI) -> None:
    missing = await request(app, "GET", "/v1/responses/resp_unknown")
    assert missing.status == 404
    assert missing.json()["error"]["type"] == "invalid_request_error"
    continued = await post(app, previous_response_id="resp_unknown")
    assert continued.status == 404
    assert replay_cli.runs() == []


async def test_a_bad_body_is_a_400_that_names_the_param(app: App, replay_cli: ReplayCLI) -> None:
    response = await request(app, "POST", "/v1/responses", body=b'{"model": "sonnet"}')
    assert response.status == 400
    assert response.json()["error"]["param"] == "input"
    assert replay_cli.runs() == []


async def test_wrong_methods_are_a_405(app: App) -> None:
    assert (await request(app, "GET", "/v1/responses")).status == 405
    deleted = await request(app, "DELETE", "/v1/responses/resp_1")
    assert deleted.status == 405 and deleted.header("allow") == "GET, OPTIONS"
