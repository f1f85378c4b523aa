"""/v1/conversations: create, list (newest first, paginated), read with messages, delete.

A create's body is decoded by ccproto's `load_object` and its metadata checked by
`check_metadata`, the same as a Responses request's."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs

from ccproto import InvalidRequestError, check_metadata, load_object

from ..conversations.store import Conversation, StoredMessage
from ..edge.asgi import Receive, Scope, Send, decode, read_body, send_json
from ..gateway import Gateway

__all__ = ["create_conversation", "delete_conversation", "get_conversation",
           "list_conversations"]

_MAX_PAGE = 100


def _json(c: Conversation) -> dict[str, Any]:
    return {
        "id": c.id, "object": "conversation", "created_at": int(c.created_at),
        "updated_at": int(c.updated_at), "model": c.model, "system_prompt": c.system_prompt,
        "metadata": c.metadata, "turns": c.turns,
    }


def _message_json(m: StoredMessage) -> dict[str, Any]:
    if all(kind == "text" for kind, _ in m.parts):
        content: Any = "\n".join(value for _, value in m.parts)
    else:
        content = [{"type": "text", "text": v} if k == "text"
                   else {"type": "image_url", "image_url": {"url": v}} if k == "image"
                   else {"type": k, "data": v} for k, v in m.parts]
    return {"role": m.role, "content": content, "created_at": int(m.created_at)}


def _optional_str(body: dict[str, Any], key: str) -> str | None:
    value = body.get(key)
    if value is not None and not isinstance(value, str):
        raise InvalidRequestError(f"'{key}' must be a string", param=key)
    return value or None


async def create_conversation(gw: Gateway, scope: Scope, receive: Receive, send: Send,
                              headers: list[tuple[str, str]]) -> int:
    raw = await read_body(scope, receive, gw.settings.server.max_body_bytes,
                          timeout=gw.settings.server.body_timeout_seconds)
    # An empty body creates a conversation with no settings; any other goes through the
    # one decoder of client JSON (depth, lone surrogates, NaN refused).
    body = await decode(load_object, raw) if raw.strip() else {}
    conversation = await gw.records.create(
        model=_optional_str(body, "model"),
        system_prompt=_optional_str(body, "system_prompt") or _optional_str(body, "instructions"),
        metadata=check_metadata(body.get("metadata")),
    )
    await send_json(send, 200, _json(conversation), headers)
    return 200


async def list_conversations(gw: Gateway, scope: Scope, receive: Receive, send: Send,
                             headers: list[tuple[str, str]]) -> int:
    query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
    limit_text = query.get("limit", ["20"])[-1]
    if not limit_text.isdigit() or not 1 <= int(limit_text) <= _MAX_PAGE:
        raise InvalidRequestError(f"'limit' must be an integer from 1 to {_MAX_PAGE}",
                                  param="limit")
    after = query.get("after", [None])[-1]
    if after is not None:
        await gw.records.get(after)  # an unknown cursor is a 404, not an empty page
    page, more = await gw.store.page(limit=int(limit_text), after=after)
    data = [_json(c) for c in page]
    listing = {"object": "list", "data": data, "has_more": more,
               "first_id": data[0]["id"] if data else None,
               "last_id": data[-1]["id"] if data else None}
    await send_json(send, 200, listing, headers)
    return 200


async def get_conversation(gw: Gateway, scope: Scope, receive: Receive, send: Send,
                           headers: list[tuple[str, str]]) -> int:
    conversation = await gw.records.get(scope["ccserver.path_arg"])
    messages = await gw.store.messages(conversation.id)
    body = _json(conversation) | {"messages": [_message_json(m) for m in messages]}
    await send_json(send, 200, body, headers)
    return 200


async def delete_conversation(gw: Gateway, scope: Scope, receive: Receive, send: Send,
                              headers: list[tuple[str, str]]) -> int:
    conversation_id = scope["ccserver.path_arg"]
    await gw.janitor.delete(conversation_id)
    body = {"id": conversation_id, "object": "conversation.deleted", "deleted": True}
    await send_json(send, 200, body, headers)
    return 200
