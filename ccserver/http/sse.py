"""The held-status SSE stream that both streaming surfaces (chat.py, responses.py) send.

The status is held back until the turn shows what it is: a failure before any content
(bad key, rate limit, unknown model, CLI missing) gets its real HTTP status and an OpenAI
error body, not a 200 with an error inside, because that is what the SDKs raise on. The
stream is committed (200, SSE headers, the surface's opening payload) by the first event,
or by the keep-alive interval passing in silence, since clients and proxies time out on a
response that sends no headers. What each surface sends (its opening, its keep-alive, how
an event renders, how the stream ends and how a failure after the commit reads) is its
own; the order and the status rules are this module's.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import trio

from ccproto import TurnEvent, TurnFailed

from ..edge.asgi import Headers, Send, send_bytes, send_json, start_response
from ..errors import error_payload

__all__ = ["SSE_HEADERS", "Render", "held_sse_stream"]

SSE_HEADERS = [
    ("content-type", "text/event-stream"),
    ("cache-control", "no-cache"),
    ("x-accel-buffering", "no"),  # nginx would otherwise buffer the stream
]

#: Renders one event once the stream is committed: (bytes to send, whether they end it).
#: Async, so a surface can record the outcome before its last bytes go out.
Render = Callable[[TurnEvent], Awaitable[tuple[bytes, bool]]]


async def held_sse_stream(
    receive: Callable[[], Awaitable[TurnEvent]],
    send: Send,
    headers: Headers,
    *,
    keepalive_seconds: float,
    start: Callable[[], bytes],
    keepalive: Callable[[], bytes],
    render: Render,
) -> int:
    """Stream one turn's events (from ``receive``) as SSE; returns the HTTP status sent.

    ``start`` and ``keepalive`` are called only once the stream is committed, and in the
    order their bytes go out, since a surface may number its events. ``render`` gets every
    event after the commit, a `TurnFailed` included (the surface's mid-stream error), and
    must end the stream on the turn's last event.
    """
    headers = list(headers)
    committed = False

    async def commit() -> None:
        nonlocal committed
        committed = True
        await start_response(send, 200, [*SSE_HEADERS, *headers])
        await send_bytes(send, start())

    while True:
        event = None
        # Silence longer than the keep-alive interval gets the surface's keep-alive, so
        # clients and proxies see a live connection while Claude Code thinks or runs tools.
        with trio.move_on_after(keepalive_seconds):
            event = await receive()
        if event is None:
            if not committed:
                await commit()
            await send_bytes(send, keepalive())
            continue
        if type(event) is TurnFailed and not committed:
            status, body, extra = error_payload(event.error)
            await send_json(send, status, body, [*headers, *extra])
            return status
        if not committed:
            await commit()
        data, end = await render(event)
        if end:
            await send_bytes(send, data, more=False)
            return 200
        if data:
            await send_bytes(send, data)
