"""POST /v1/chat/completions: JSON or SSE, over one CLI turn.

The response status is held back until the turn shows what it is: a failure that comes
before any content (bad key, rate limit, unknown model, CLI missing) gets its real HTTP
status, not a 200 with an error inside. The stream is committed with the first content,
or when ``server.status_hold_seconds`` pass in silence, since clients and proxies time out
otherwise; that loop is http/sse.py's, shared with the Responses stream.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import trio

from ccproto import (
    DONE,
    KEEPALIVE,
    ChunkBuilder,
    ToolCallsRequested,
    TurnEvent,
    TurnFailed,
    TurnFinished,
    collect,
    dumps,
    encode_data,
    load_object,
    structure_request,
)

from ..core.cache import (
    ResponseCache,
    canonical_request,
    is_cacheable_request,
    options_fingerprint,
    refreshed,
)
from ..core.planning import PROFILE_HEADER, with_profile
from ..core.run import Run, open_turn
from ..edge.accesslog import log_usage
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
from ..errors import error_payload
from ..gateway import Gateway
from .sse import held_sse_stream, hold_left

__all__ = ["chat_completions"]


async def chat_completions(
    gw: Gateway, scope: Scope, receive: Receive, send: Send, headers: list[tuple[str, str]]
) -> int:
    """Serve one request; returns the HTTP status sent (for the access log)."""
    # The status hold counts from here: a queued request's wait for a CLI slot or its
    # conversation is silence to the client and its proxies too.
    arrived = trio.current_time()
    body = await read_body(scope, receive, gw.settings.server.max_body_bytes,
                           timeout=gw.settings.server.body_timeout_seconds)
    request = with_profile(await decode(structure_request, body), header(scope, PROFILE_HEADER))
    conversation_id = request.conversation_id or header(scope, "x-conversation-id")
    cache_key = await _cache_key(gw, body, conversation_id, request.profile)
    if cache_key is not None:
        hit = await gw.cache.get(cache_key)
        scope["ccserver.log"] = {"cache": "hit" if hit is not None else "miss"}
        if hit is not None:
            fresh = refreshed(hit, completion_id=f"chatcmpl-{uuid.uuid4().hex}",
                              created=int(time.time()))
            await send_json(send, 200, fresh, [*headers, ("x-cache", "hit")])
            return 200
        headers = [*headers, ("x-cache", "miss")]
    status = 499  # unless a response goes out first, the client went away
    async with trio.open_nursery() as nursery:
        # A client that goes away cancels the run; the runner then stops the CLI.
        nursery.start_soon(cancel_on_disconnect, receive, nursery.cancel_scope)
        async with open_turn(gw.turn_services(), request, conversation_id=conversation_id) as run:
            log: dict[str, Any] = scope.setdefault("ccserver.log", {})
            log |= {"conversation_id": run.conversation_id, "model": run.model}
            headers = [*headers, ("x-conversation-id", run.conversation_id)]
            completion_id = f"chatcmpl-{uuid.uuid4().hex}"
            created = int(time.time())
            if request.stream:
                builder = ChunkBuilder(
                    completion_id=completion_id,
                    created=created,
                    model=run.model,
                    include_usage=bool(
                        request.stream_options and request.stream_options.include_usage
                    ),
                    include_reasoning=gw.settings.claude.include_reasoning,
                    conversation_id=run.conversation_id,
                )
                status = await _stream(gw, builder, run, send, headers, log, arrived)
            else:
                status = await _respond(gw, run, send, headers, completion_id, created, log,
                                        cache_key)
        nursery.cancel_scope.cancel()
    return status


async def _cache_key(gw: Gateway, body: bytes, conversation_id: str | None,
                     profile: str | None) -> str | None:
    """The response-cache key of a cacheable request (issue 7's rule in ccserver.cache)."""
    if not gw.cache.enabled:
        return None
    parsed = await decode(load_object, body)  # valid: structure_request accepted it
    if profile is not None:
        # A header's profile changes the answer as the body field would.
        parsed = {**parsed, "profile": profile}
    if not is_cacheable_request(parsed, conversation_id=conversation_id):
        return None
    version = gw.cli_info.version if gw.cli_info else None
    try:
        return ResponseCache.key_for(canonical_request(parsed),
                                     options_fingerprint(gw.options, version))
    except ValueError:  # NaN or Infinity somewhere: no canonical form, so no caching
        return None


async def _respond(
    gw: Gateway,
    run: Run,
    send: Send,
    headers: list[tuple[str, str]],
    completion_id: str,
    created: int,
    log: dict[str, Any],
    cache_key: str | None,
) -> int:
    receive = gw.drain.guard(run.receive)  # the shutdown grace's end makes this a 503
    collected: list[TurnEvent] = []
    while True:
        event = await receive()
        collected.append(event)
        if type(event) in (TurnFinished, TurnFailed, ToolCallsRequested):
            break
    result = collect(collected, completion_id=completion_id, created=created, model=run.model,
                     include_reasoning=gw.settings.claude.include_reasoning,
                     conversation_id=run.conversation_id)
    if isinstance(result, TurnFailed):
        status, body, extra = error_payload(result.error)
        await send_json(send, status, body, [*headers, *extra])
        return status
    payload = dumps(result)
    log_usage(log, event)
    if type(event) is TurnFinished:
        if cache_key is not None and not event.used_tools:
            # An answer that ran tools depends on more than the request: never cached.
            # Without its conversation: a hit is no turn of that conversation, and must not
            # hand another client a way into it.
            entry = json.loads(payload)
            entry.pop("conversation_id", None)
            await gw.cache.put(cache_key, entry)
    await send_json(send, 200, payload, headers)
    return 200


async def _stream(
    gw: Gateway,
    builder: ChunkBuilder,
    run: Run,
    send: Send,
    headers: list[tuple[str, str]],
    log: dict[str, Any],
    arrived: float,
) -> int:
    async def render(event: TurnEvent) -> tuple[bytes, bool]:
        if type(event) is TurnFailed:
            # Mid-stream failure: an error event the SDKs raise on, then the end marker.
            _, body, _ = error_payload(event.error)
            return encode_data(dumps(body)) + DONE, True
        data = b"".join(encode_data(dumps(c)) for c in builder.feed(event))
        if type(event) is TurnFinished:
            log_usage(log, event)
            return data + DONE, True
        if type(event) is ToolCallsRequested:
            log_usage(log, event)
            return data + DONE, True
        return data, False

    # Silence after the commit gets an SSE comment line: chat clients only need to see the
    # connection live.
    # The shutdown grace's end is a mid-stream failure too: an error event, then [DONE].
    return await held_sse_stream(
        gw.drain.guard(run.receive), send, headers,
        hold_seconds=hold_left(gw.settings.server.status_hold_seconds, arrived),
        keepalive_seconds=gw.settings.server.sse_keepalive_seconds,
        start=lambda: encode_data(dumps(builder.start())), keepalive=lambda: KEEPALIVE,
        render=render)
