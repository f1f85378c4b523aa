"""POST /v1/responses (JSON or SSE) and GET /v1/responses/{id}, over one CLI turn.

A response runs like a chat completion (`run_completion`); only the rendering differs
(ccproto's `ResponseBuilder`). As in chat.py, the status of a stream is held back until
its first content (sse_stream.py), so a failure before any text gets its real HTTP status.
Each response is stored with its conversation (unless ``store`` is false): GET returns
it, and ``previous_response_id`` continues that conversation's CLI session. The helpers
here are shared with the Responses WebSocket mode (ws_responses.py).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import trio

from ccproto import (
    ProtocolError,
    ResponseBuilder,
    ResponsesRequest,
    TurnEvent,
    TurnFailed,
    chat_request,
    dumps,
    encode_event,
    structure_responses_request,
)

from .accesslog import SCOPE_KEY, log_usage
from .asgi import Receive, Scope, Send, cancel_on_disconnect, read_body, send_json
from .completion import Run, run_completion
from .errors import ConversationNotFound, error_payload
from .sse_stream import held_sse_stream

if TYPE_CHECKING:
    from .gateway import Gateway

__all__ = ["continued_conversation", "create_response", "get_response", "new_builder",
           "save_response"]


def _not_found(message: str, param: str | None) -> ProtocolError:
    return ProtocolError(message, status_hint=404, error_type="invalid_request_error",
                         code="previous_response_not_found" if param else "response_not_found",
                         param=param)


async def continued_conversation(gw: Gateway, request: ResponsesRequest,
                                 local: Mapping[str, str] | None = None) -> str | None:
    """The conversation ``request`` continues: its ``previous_response_id``'s, or its
    ``conversation``; None starts (or matches) one. Checked before any CLI runs.

    ``local`` maps ids of this WebSocket's ``store: false`` responses to conversations.
    """
    previous = request.previous_response_id
    if previous is None:
        return request.conversation
    conversation_id = (local or {}).get(previous)
    if conversation_id is None:
        found = await gw.store.get_response(previous)
        if found is None:
            raise _not_found(f"No response found with id '{previous}'", "previous_response_id")
        conversation_id = found[0]
    try:
        await gw.conversations.get(conversation_id)
    except ConversationNotFound:
        raise _not_found(f"Response '{previous}' belongs to a conversation that has expired "
                         "or was deleted", "previous_response_id") from None
    return conversation_id


def new_builder(gw: Gateway, request: ResponsesRequest, run: Run) -> ResponseBuilder:
    return ResponseBuilder(
        response_id=f"resp_{uuid.uuid4().hex}", created_at=int(time.time()), model=run.model,
        request=request, conversation_id=run.conversation_id,
        include_reasoning=gw.settings.claude.include_reasoning,
    )


async def save_response(gw: Gateway, builder: ResponseBuilder, run: Run) -> None:
    """Store a finished response, before its last event goes out: a client may continue
    from it (previous_response_id) the moment it has it."""
    if builder.request.store:
        with trio.CancelScope(shield=True):  # the turn happened: keep its record
            await gw.store.put_response(builder.response_id, run.conversation_id,
                                        builder.created_at, dumps(builder.response()).decode())


async def create_response(gw: Gateway, scope: Scope, receive: Receive, send: Send,
                          headers: list[tuple[str, str]]) -> int:
    """Serve one request; returns the HTTP status sent (for the access log)."""
    body = await read_body(scope, receive, gw.settings.server.max_body_bytes)
    request = structure_responses_request(body)
    chat = chat_request(request)
    conversation_id = await continued_conversation(gw, request)
    status = 499  # unless a response goes out first, the client went away
    async with trio.open_nursery() as nursery:
        # A client that goes away cancels the run; leaving run_completion stops the CLI.
        nursery.start_soon(cancel_on_disconnect, receive, nursery.cancel_scope)
        async with run_completion(gw, chat, conversation_id=conversation_id) as run:
            log: dict[str, Any] = {"conversation_id": run.conversation_id, "model": run.model}
            scope[SCOPE_KEY] = log
            headers = [*headers, ("x-conversation-id", run.conversation_id)]
            builder = new_builder(gw, request, run)
            if request.stream:
                status = await _stream(gw, builder, run, send, headers, log)
            else:
                status = await _respond(gw, builder, run, send, headers, log)
        nursery.cancel_scope.cancel()
    return status


async def _respond(gw: Gateway, builder: ResponseBuilder, run: Run, send: Send,
                   headers: list[tuple[str, str]], log: dict[str, Any]) -> int:
    while not builder.done:
        event = await run.receive()
        if type(event) is TurnFailed:
            status, body, extra = error_payload(event.error)
            await send_json(send, status, body, [*headers, *extra])
            return status
        builder.feed(event, now=time.time())
        log_usage(log, event)
    await save_response(gw, builder, run)
    await send_json(send, 200, dumps(builder.response()), headers)
    return 200


def _encode(events: list[dict[str, Any]]) -> bytes:
    return b"".join(encode_event(e["type"], dumps(e)) for e in events)


async def _stream(gw: Gateway, builder: ResponseBuilder, run: Run, send: Send,
                  headers: list[tuple[str, str]], log: dict[str, Any]) -> int:
    async def render(event: TurnEvent) -> tuple[bytes, bool]:
        # A failure after the commit is fed like any event: it ends in response.failed.
        events = builder.feed(event, now=time.time())
        log_usage(log, event)
        if builder.done:
            await save_response(gw, builder, run)
        # No [DONE] in Responses streams: the terminal event ends it (openai-wire.md §2.2).
        return _encode(events), builder.done

    # Silence gets a keepalive *data* event, not an SSE comment: Codex's idle timer
    # ignores comments. It is built when sent, so its sequence number is in order.
    return await held_sse_stream(
        run.receive, send, headers, keepalive_seconds=gw.settings.server.sse_keepalive_seconds,
        start=lambda: _encode(builder.start()), keepalive=lambda: _encode([builder.keepalive()]),
        render=render)


async def get_response(gw: Gateway, scope: Scope, receive: Receive, send: Send,
                       headers: list[tuple[str, str]]) -> int:
    response_id = scope["ccserver.path_arg"]
    found = await gw.store.get_response(response_id)
    if found is None:
        raise _not_found(f"No response found with id '{response_id}'", None)
    await send_json(send, 200, found[1].encode(), headers)
    return 200
