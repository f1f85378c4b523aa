"""/v1/conversations: create, list, read (with the messages of a turn), delete."""

from __future__ import annotations

import json
from typing import Any

from ccserver.app import App
from tests.support.asgi_client import Response, request

ANSWER = "Streaming works: this answer arrives as several small text deltas."  # text_stream


async def create(app: App, **body: Any) -> Response:
    return await request(app, "POST", "/v1/conversations", body=json.dumps(body).encode())


async def test_create_read_list_and_delete(app: App) -> None:
    made = await create(app, model="opus", system_prompt="be brief", metadata={"team": "a"})
    assert made.status == 200
    conversation = made.json()
    assert conversation["object"] == "conversation" and conversation["id"].startswith("conv_")
    assert (conversation["model"], conversation["system_prompt"]) == ("opus", "be brief")
    assert conversation["metadata"] == {"team": "a"} and conversation["turns"] == 0
    path = f"/v1/conversations/{conversation['id']}"
    read = (await request(app, "GET", path)).json()
    assert read == conversation | {"messages": []}
    listing = (await request(app, "GET", "/v1/conversations")).json()
    assert listing["object"] == "list" and [c["id"] for c in listing["data"]] == [conversation["id"]]
    assert listing["first_id"] == listing["last_id"] == conversation["id"]
    assert listing["has_more"] is False
    deleted = await request(app, "DELETE", path)
    assert deleted.json() == {"id": conversation["id"], "object": "conversation.deleted",
                              "deleted": True}
    assert (await request(app, "GET", path)).status == 404
    assert (await request(app, "GET", "/v1/conversations")).json()["data"] == []


async def test_a_chat_turn_shows_in_its_conversation(app: App) -> None:
    conversation_id = (await create(app)).json()["id"]
    body = {"model": "sonnet", "messages": [{"role": "user", "content": "hi"}],
            "conversation_id": conversation_id}
    turn = await request(app, "POST", "/v1/chat/completions", body=json.dumps(body).encode())
    assert turn.status == 200
    read = (await request(app, "GET", f"/v1/conversations/{conversation_id}")).json()
    assert read["turns"] == 1
    assert [(m["role"], m["content"]) for m in read["messages"]] == [
        ("user", "hi"), ("assistant", ANSWER)]


async def test_pages_go_newest_first(app: App) -> None:
    ids = [(await create(app)).json()["id"] for _ in range(3)]
    first = (await request(app, "GET", "/v1/conversations?limit=2")).json()
    assert first["has_more"] is True and len(first["data"]) == 2
    rest = (await request(app, "GET", f"/v1/conversations?limit=2&after={first['last_id']}")).json()
    assert rest["has_more"] is False
    assert {c["id"] for c in first["data"] + rest["data"]} == set(ids)


async def test_bad_input_is_a_400_that_names_the_param(app: App) -> None:
    for response, param in [
        (await create(app, metadata={"k": 1}), "metadata"),
        (await create(app, model=7), "model"),
        (await request(app, "GET", "/v1/conversations?limit=0"), "limit"),
    ]:
        assert response.status == 400
        assert response.json()["error"]["param"] == param
    not_json = await request(app, "POST", "/v1/conversations", body=b"{nope")
    assert not_json.status == 400


async def test_unknown_conversations_are_404s(app: App) -> None:
    for method, path in [("GET", "/v1/conversations/conv_unknown"),
                         ("DELETE", "/v1/conversations/conv_unknown"),
                         ("GET", "/v1/conversations?after=conv_unknown")]:
        response = await request(app, method, path)
        assert response.status == 404, (method, path)
        assert response.json()["error"]["type"] == "invalid_request_error"


async def test_wrong_methods_are_a_405(app: App) -> None:
    assert (await request(app, "PUT", "/v1/conversations")).status == 405
    patched = await request(app, "PATCH", "/v1/conversations/conv_1")
    assert patched.status == 405 and patched.header("allow") == "GET, DELETE, OPTIONS"
