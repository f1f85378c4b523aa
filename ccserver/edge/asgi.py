"""Small raw-ASGI helpers: read a bounded body, answer JSON, stream bytes.

Hypercorn speaks ASGI 3 (HTTP spec 2.1); these helpers are all the server needs, so no
web framework sits between the router and the protocol.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any, TypeVar

import trio

from ..errors import PayloadTooLarge, RequestTimeout

__all__ = [
    "ASGIApp",
    "Headers",
    "Receive",
    "Scope",
    "Send",
    "cancel_on_disconnect",
    "decode",
    "header",
    "read_body",
    "send_bytes",
    "send_json",
    "start_response",
]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
Headers = Iterable[tuple[str, str]]


class ClientGone(Exception):
    """The client disconnected before its request body arrived."""


def header(scope: Scope, name: str) -> str | None:
    """The first value of request header ``name`` (lowercase), decoded as latin-1."""
    key = name.encode()
    for k, v in scope.get("headers", ()):
        if k.lower() == key:
            return bytes(v).decode("latin-1")
    return None


T = TypeVar("T")
T_in = TypeVar("T_in", bytes, str)

#: Bodies from this size up are decoded in a worker thread. Decoding and checking JSON
#: is CPU work that grows with the body: a hostile body of millions of tiny values, within
#: ``server.max_body_bytes``, takes seconds, and on the event loop it would stall every
#: other request and stream for that long. Small bodies (nearly all) stay on the loop,
#: where a thread's hand-off would cost more than the decoding.
_BIG_BODY = 256 * 1024


async def decode(parse: Callable[[T_in], T], body: T_in) -> T:
    """``parse(body)``, off the event loop when ``body`` is big (`_BIG_BODY`)."""
    if len(body) < _BIG_BODY:
        return parse(body)
    return await trio.to_thread.run_sync(parse, body)


async def read_body(scope: Scope, receive: Receive, limit: int, *, timeout: float) -> bytes:
    """The whole request body, refused with 413 past ``limit`` bytes and with 408 when it
    has not arrived whole within ``timeout`` seconds.

    The declared Content-Length is checked first so an oversized upload is refused before
    it is read; a body without one (chunked) is counted as it arrives.
    """
    declared = header(scope, "content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(limit)
    body = bytearray()
    # A deadline on the whole body, not on each read: Hypercorn's idle timer stops once a
    # request's head is in, so a client trickling its body a byte at a time would otherwise
    # hold the connection (and its fd) for ever. Hypercorn's own read_timeout is no help:
    # its trio worker applies it to every read, while a response streams too.
    with trio.move_on_after(timeout):
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise ClientGone
            body += message.get("body", b"")
            if len(body) > limit:
                raise PayloadTooLarge(limit)
            if not message.get("more_body", False):
                return bytes(body)
    raise RequestTimeout(timeout)


def _encode(headers: Headers) -> list[tuple[bytes, bytes]]:
    return [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers]


async def start_response(send: Send, status: int, headers: Headers) -> None:
    await send({"type": "http.response.start", "status": status, "headers": _encode(headers)})


async def send_bytes(send: Send, data: bytes, *, more: bool = True) -> None:
    message = {"type": "http.response.body", "body": data, "more_body": more}
    if more:
        await send(message)
        return
    # The last send is shielded. Inside it Hypercorn ends the stream, tells the app
    # "http.disconnect" (which a handler's disconnect watcher acts on by cancelling) and
    # re-arms the connection's keep-alive timer; cancelled half-way, the connection keeps
    # no timer and holds a graceful shutdown for its whole timeout.
    with trio.CancelScope(shield=True):
        await send(message)


async def send_json(send: Send, status: int, body: Any, headers: Headers = ()) -> None:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    await start_response(
        send,
        status,
        [("content-type", "application/json"), ("content-length", str(len(data))), *headers],
    )
    await send_bytes(send, data, more=False)


async def cancel_on_disconnect(receive: Receive, scope: trio.CancelScope) -> None:
    """Cancel ``scope`` when the client goes away (run it beside a handler's work, after
    the body was read): a streaming answer nobody reads must stop its CLI."""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            scope.cancel()
            return
