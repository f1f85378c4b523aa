"""POST /v1/responses (JSON or SSE) and GET /v1/responses/{id}, over one CLI turn.

A response runs like a chat completion (`open_turn`); only the rendering differs
(ccproto's `ResponseBuilder`). As in chat.py, the status of a stream is held back until
its first content (http/sse.py), so a failure before any text gets its real HTTP status.
Each response is stored with its conversation (unless ``store`` is false): GET returns
it, and ``previous_response_id`` continues that conversation's CLI session. The helpers
for that live in core/stored_responses.py, shared with the Responses WebSocket mode.
"""

from __future__ import annotations

import time
from typing import Any

import trio

from ccproto import (
    ResponseBuilder,
    TurnEvent,
    TurnFailed,
    chat_request,
    dumps,
    encode_event,
    structure_responses_request,
)

from ..core.planning import PROFILE_HEADER, with_profile
from ..core.run import Run, open_turn
from ..core.stored_responses import (
    continued_conversation,
    dropped_tools,
    new_builder,
    save_response,
)
from ..edge.accesslog import SCOPE_KEY, log_usage
from ..edge.asgi import (
    Receive,
    Scope,
    Send,
    cancel_on_disconnect,
    decode,
    header,
    read_body,
    send_json,
)
from ..errors import ResponseNotFound, error_payload
from ..gateway import Gateway
from .sse import held_sse_stream, hold_left

__all__ = ["create_response", "get_response"]


async def create_response(gw: Gateway, scope: Scope, receive: Receive, send: Send,
                          headers: list[tuple[str, str]]) -> int:
    """Serve one request; returns the HTTP status sent (for the access log)."""
    arrived = trio.current_time()  # the status hold counts from here (as in chat.py)
    body = await read_body(scope, receive, gw.settings.server.max_body_bytes,
                           timeout=gw.settings.server.body_timeout_seconds)
    request = await decode(structure_responses_request, body)
    chat = with_profile(chat_request(request), header(scope, PROFILE_HEADER))
    conversation_id = await continued_conversation(gw.records, request)
    headers = [*headers, *dropped_tools(request)]
    status = 499  # unless a response goes out first, the client went away
    async with trio.open_nursery() as nursery:
        # A client that goes away cancels the run; leaving open_turn stops the CLI.
        nursery.start_soon(cancel_on_disconnect, receive, nursery.cancel_scope)
        async with open_turn(gw.turn_services(), chat, conversation_id=conversation_id) as run:
            log: dict[str, Any] = {"conversation_id": run.conversation_id, "model": run.model}
            scope[SCOPE_KEY] = log
            headers = [*headers, ("x-conversation-id", run.conversation_id)]
            builder = new_builder(request, run, gw.settings.claude.include_reasoning)
            if request.stream:
                status = await _stream(gw, builder, run, send, headers, log, arrived)
            else:
                status = await _respond(gw, builder, run, send, headers, log)
        nursery.cancel_scope.cancel()
    return status


async def _respond(gw: Gateway, builder: ResponseBuilder, run: Run, send: Send,
                   headers: list[tuple[str, str]], log: dict[str, Any]) -> int:
    receive = gw.drain.guard(run.receive)  # the shutdown grace's end makes this a 503
    while not builder.done:
        event = await receive()
        if type(event) is TurnFailed:
            status, body, extra = error_payload(event.error)
            await send_json(send, status, body, [*headers, *extra])
            return status
        builder.feed(event, now=time.time())
        log_usage(log, event)
    await save_response(gw.store, builder, run)
    await send_json(send, 200, dumps(builder.response()), headers)
    return 200


def _encode(events: list[dict[str, Any]]) -> bytes:
    return b"".join(encode_event(e["type"], dumps(e)) for e in events)


async def _stream(gw: Gateway, builder: ResponseBuilder, run: Run, send: Send,
                  headers: list[tuple[str, str]], log: dict[str, Any], arrived: float) -> int:
    async def render(event: TurnEvent) -> tuple[bytes, bool]:
        # A failure after the commit is fed like any event: it ends in response.failed.
        events = builder.feed(event, now=time.time())
        log_usage(log, event)
        if builder.done:
            await save_response(gw.store, builder, run)
        # No [DONE] in Responses streams: the terminal event ends it (openai-wire.md §2.2).
        return _encode(events), builder.done

    # Silence after the commit gets a keepalive *data* event, not an SSE comment: Codex's
    # idle timer ignores comments. It is built when sent, so its sequence number is in
    # order. The shutdown grace's end is a failure like any other: response.failed ends
    # the stream.
    return await held_sse_stream(
        gw.drain.guard(run.receive), send, headers,
        hold_seconds=hold_left(gw.settings.server.status_hold_seconds, arrived),
        keepalive_seconds=gw.settings.server.sse_keepalive_seconds,
        start=lambda: _encode(builder.start()), keepalive=lambda: _encode([builder.keepalive()]),
        render=render)


async def get_response(gw: Gateway, scope: Scope, receive: Receive, send: Send,
                       headers: list[tuple[str, str]]) -> int:
    response_id = scope["ccserver.path_arg"]
    found = await gw.store.get_response(response_id)
    if found is None:
        raise ResponseNotFound(response_id)
    await send_json(send, 200, found[1].encode(), headers)
    return 200
