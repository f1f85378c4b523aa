"""The WebSocket route: the handshake's checks, then the surface for the path.

``/v1/responses`` is the Responses API's WebSocket mode (responses.py), ``/v1/ws`` our
chat completions protocol (chat.py, README "Chat completions over WebSocket"); both also
answer without ``/v1``. Hypercorn (wsproto) does the framing and answers pings.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Awaitable, Callable

import trio

from ccproto import ProtocolError, excerpt

from ..edge.accesslog import access_line
from ..edge.asgi import Receive, Scope, Send, header
from ..edge.auth import Auth
from ..edge.cors import Cors
from ..edge.drain import Drain
from ..errors import OriginRefused, UnknownURL
from ..gateway import Gateway
from .chat import chat_socket
from .responses import responses_socket
from .socket import Socket

__all__ = ["serve_websocket"]

log = logging.getLogger("ccserver.access")

Surface = Callable[[Gateway, Socket], Awaitable[None]]
_SURFACES: dict[str, Surface] = {"/responses": responses_socket, "/ws": chat_socket}


async def _refuse(scope: Scope, send: Send, error: ProtocolError) -> None:
    """Answer the handshake with an HTTP error (ASGI's websocket.http.response extension),
    or a plain refusal (403) where the server lacks it."""
    if "websocket.http.response" not in scope.get("extensions", {}):
        await send({"type": "websocket.close", "code": 1008})
        return
    body = json.dumps(error.to_body()).encode()
    await send({"type": "websocket.http.response.start", "status": error.status_hint,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "websocket.http.response.body", "body": body})


async def _close_when_cut(drain: Drain, socket: Socket) -> None:
    # The shutdown grace is over: a close frame saying so, rather than the connection cut
    # when Hypercorn cancels it (1006 to the client). Closing cancels the socket's runs.
    await drain.wait_cut()
    socket.close(1001, "server is shutting down")


async def serve_websocket(gw: Gateway, scope: Scope, receive: Receive, send: Send, *,
                          auth: Auth, cors: Cors) -> None:
    """Serve one WebSocket connection from handshake to close."""
    if (await receive())["type"] != "websocket.connect":
        return
    started = trio.current_time()
    path = scope["path"].rstrip("/")
    surface = _SURFACES.get(path[3:] if path.startswith("/v1/") else path)

    def log_line(status: int, extra: str = "") -> None:
        line = access_line(request_id=f"ws_{uuid.uuid4().hex}", method="GET",
                           path=scope["path"], status=status,
                           duration=trio.current_time() - started, published=None)
        log.info("%s%s", line, extra)

    try:
        if surface is None:
            raise UnknownURL(f"No WebSocket endpoint at {excerpt(scope['path'])}")
        # Browsers let any page open a WebSocket to localhost (no CORS preflight), so a
        # browser's Origin must be one CORS allows; other clients send none.
        if header(scope, "origin") is not None and cors.allowed_origin(scope) is None:
            raise OriginRefused("This Origin may not open WebSockets on this server")
        auth.check(scope)
    except ProtocolError as exc:
        await _refuse(scope, send, exc)
        log_line(exc.status_hint)
        return
    socket = Socket(receive, send, gw.settings.websocket)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_close_when_cut, gw.drain, socket)
        await socket.serve(lambda s: surface(gw, s))
        nursery.cancel_scope.cancel()  # the socket is done: stop watching for the cut
    code, reason = socket.closing or (1000, "")
    log_line(101, f" close={code}" + (f" reason={json.dumps(reason)}" if reason else ""))
