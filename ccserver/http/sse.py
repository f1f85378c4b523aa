"""The held-status SSE stream that both streaming surfaces (chat.py, responses.py) send.

The status is held back until the turn shows what it is: a failure before any content
(bad key, rate limit, unknown model, CLI missing) gets its real HTTP status and an OpenAI
error body, not a 200 with an error inside, because that is what the SDKs raise on and
retry by. The stream is committed (200, SSE headers, the surface's opening payload) by the
first event, or by the status hold passing in silence.

Nothing is sent while the status is held, not even a keep-alive: any byte commits the 200.
So the hold has its own length, longer than the keep-alive interval: long enough for
the errors a turn meets before its first text (they arrive within seconds), short enough
that nothing between the client and us gives up on a response with no headers (proxies'
idle timeouts, 60 s by default for nginx and AWS's load balancers; the SDKs' 600 s read
timeout; Codex's 300 s idle timer). Once committed, silence longer than the keep-alive
interval gets the surface's keep-alive. What each surface sends (its opening, its
keep-alive, how an event renders, how the stream ends and how a failure after the commit
reads) is its own; the order and the status rules are this module's.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import trio

from ccproto import TurnEvent, TurnFailed

from ..edge.asgi import Headers, Send, send_bytes, send_json, start_response
from ..errors import error_payload

__all__ = ["SSE_HEADERS", "Render", "held_sse_stream", "hold_left"]

SSE_HEADERS = [
    ("content-type", "text/event-stream"),
    ("cache-control", "no-cache"),
    ("x-accel-buffering", "no"),  # nginx would otherwise buffer the stream
]

#: Renders one event once the stream is committed: (bytes to send, whether they end it).
#: Async, so a surface can record the outcome before its last bytes go out.
Render = Callable[[TurnEvent], Awaitable[tuple[bytes, bool]]]


def hold_left(hold_seconds: float, arrived: float) -> float:
    """What is left of the status hold of a request that arrived at ``arrived`` (trio
    time): the hold bounds the client's whole silence, queueing included."""
    return max(0.0, arrived + hold_seconds - trio.current_time())


async def held_sse_stream(
    receive: Callable[[], Awaitable[TurnEvent]],
    send: Send,
    headers: Headers,
    *,
    hold_seconds: float,
    keepalive_seconds: float,
    start: Callable[[], bytes],
    keepalive: Callable[[], bytes],
    render: Render,
) -> int:
    """Stream one turn's events (from ``receive``) as SSE; returns the HTTP status sent.

    The status waits up to ``hold_seconds`` for the first event; after the commit,
    ``keepalive_seconds`` of silence get a keep-alive. ``start`` and ``keepalive`` are
    called only once the stream is committed, and in the order their bytes go out, since a
    surface may number its events. ``render`` gets every event after the commit, a
    `TurnFailed` included (the surface's mid-stream error), and must end the stream on the
    turn's last event.
    """
    headers = list(headers)
    # The hold: until the first event, or until it runs out (module docstring). No
    # keep-alive goes out inside it, since it would commit a 200 before the turn's status
    # is known.
    event: TurnEvent | None = None
    with trio.move_on_after(hold_seconds):
        event = await receive()
    if type(event) is TurnFailed:
        status, body, extra = error_payload(event.error)
        await send_json(send, status, body, [*headers, *extra])
        return status
    await start_response(send, 200, [*SSE_HEADERS, *headers])
    # The opening goes out with the first event, in one write (the first token is the one
    # a client waits for), or at once if the hold ran out first.
    opening = start()
    if event is None:
        await send_bytes(send, opening)
        opening = b""
    while True:
        if event is not None:
            data, end = await render(event)
            data, opening = opening + data, b""
            if end:
                await send_bytes(send, data, more=False)
                return 200
            if data:
                await send_bytes(send, data)
        event = None
        # Committed: silence longer than the keep-alive interval gets the surface's
        # keep-alive, so clients and proxies see a live connection while Claude Code thinks
        # or runs tools.
        with trio.move_on_after(keepalive_seconds):
            event = await receive()
        if event is None:
            await send_bytes(send, keepalive())
