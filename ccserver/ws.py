"""The WebSocket surfaces: the handshake, a bounded socket, and the route to each protocol.

``/v1/responses`` is the Responses API's WebSocket mode (ws_responses.py), ``/v1/ws`` our
chat completions protocol (ws_chat.py, README "Chat completions over WebSocket"); both
also answer without ``/v1``. Hypercorn (wsproto) does the framing and answers pings.

A `Socket` is one accepted connection. Frames go out through a bounded queue and one
writer task, because Hypercorn's send is shielded while the kernel buffer is full: a
client that stops reading would otherwise block whichever task sent to it. A queue that
stays full for ``websocket.send_timeout_seconds`` means the client is not reading; the
socket is then closed (1008) and everything running on it cancelled, so no CLI keeps
running and nothing buffers without bound. Bad frames (binary, not JSON, too large,
unknown type) are the surfaces' to answer with an error frame; the socket stays open.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import trio

from ccproto import InvalidRequestError, ProtocolError

from .accesslog import access_line
from .asgi import Receive, Scope, Send, header
from .errors import error_payload
from .settings.sections import WebSocketSettings

if TYPE_CHECKING:
    from .auth import Auth
    from .cors import Cors
    from .gateway import Gateway

__all__ = ["Socket", "error_frame_payload", "serve_frames", "serve_websocket"]

log = logging.getLogger("ccserver.access")

Surface = Callable[["Gateway", "Socket"], Awaitable[None]]
#: A surface's answer to one well-formed frame; it starts any long work in the nursery.
Dispatch = Callable[[dict[str, Any], trio.Nursery], Awaitable[None]]


class Socket:
    """One accepted WebSocket: JSON frames in, JSON frames out through a bounded queue."""

    def __init__(self, receive: Receive, send: Send, settings: WebSocketSettings) -> None:
        self._receive, self._send = receive, send
        self.settings = settings
        self._out, self._queued = trio.open_memory_channel[str](settings.send_queue)
        self._scope = trio.CancelScope()
        #: Set when the server closes: (code, reason).
        self.closing: tuple[int, str] | None = None

    async def serve(self, surface: Callable[[Socket], Awaitable[None]]) -> None:
        await self._send({"type": "websocket.accept"})
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._writer)
            # Cancelled by `close`: the surface's runs end (their CLIs stopped) right away.
            with self._scope:
                await surface(self)
            self._out.close()  # the writer sends what is queued, then the close frame

    async def _writer(self) -> None:
        async with self._queued:
            async for text in self._queued:
                if self.closing is not None:
                    break  # a client that stopped reading gets no more than the close frame
                await self._send({"type": "websocket.send", "text": text})
        code, reason = self.closing or (1000, "")
        # After a client's disconnect Hypercorn ignores sends, so this cannot fail.
        await self._send({"type": "websocket.close", "code": code, "reason": reason})

    def close(self, code: int, reason: str) -> None:
        """Close from the server's side; every task running on the socket is cancelled."""
        if self.closing is None:
            self.closing = (code, reason)
            self._out.close()
            self._scope.cancel()

    async def send_text(self, text: str) -> None:
        """Queue one frame; a client that leaves the queue full too long is disconnected."""
        try:
            self._out.send_nowait(text)
            return
        except trio.WouldBlock:
            pass
        except trio.ClosedResourceError:
            return  # closing: what the surface still says goes nowhere
        with trio.move_on_after(self.settings.send_timeout_seconds):
            try:
                await self._out.send(text)
            except trio.ClosedResourceError:
                pass
            return
        waited = self.settings.send_timeout_seconds
        self.close(1008, f"client is not reading: {self.settings.send_queue} messages "
                         f"unsent for {waited:g} s")
        await trio.lowlevel.checkpoint()  # raises Cancelled: `close` cancelled this task

    async def send(self, frame: dict[str, Any]) -> None:
        await self.send_text(json.dumps(frame, ensure_ascii=False, separators=(",", ":")))

    async def receive(self) -> dict[str, Any] | None:
        """The next client frame as a JSON object with a string ``type``; None once the
        client has gone.

        Raises:
            InvalidRequestError: a binary, oversized, non-JSON or untyped frame.
        """
        while True:
            message = await self._receive()
            if message["type"] == "websocket.disconnect":
                return None
            if message["type"] == "websocket.receive":
                break
        text = message.get("text")
        if text is None:
            raise _bad_frame("Binary frames are not supported: send JSON text frames")
        limit = self.settings.max_frame_bytes
        size = len(text) if text.isascii() else len(text.encode())
        if size > limit:
            raise _bad_frame(f"Frame of {size} bytes is larger than the limit of {limit} "
                             "bytes", code="frame_too_large")
        try:
            frame = json.loads(text)
        except ValueError as exc:
            raise _bad_frame(f"Frame is not valid JSON: {exc}") from None
        if not isinstance(frame, dict) or not isinstance(frame.get("type"), str):
            raise _bad_frame('Frame must be a JSON object with a string "type"')
        return frame


def error_frame_payload(exc: BaseException) -> tuple[int, dict[str, Any]]:
    """(status, OpenAI error body) for what a request on a socket raised.

    A request's nurseries wrap what escapes them; a group of one error is that error, as
    for HTTP requests (app.py).
    """
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    status, body, _ = error_payload(exc)
    return status, body


async def serve_frames(socket: Socket, dispatch: Dispatch,
                       bad_frame: Callable[[InvalidRequestError], Awaitable[None]]) -> None:
    """A surface's accept loop: each frame to ``dispatch`` until the client goes, a bad one
    to ``bad_frame`` (the socket stays open); then every run started is cancelled."""
    async with trio.open_nursery() as nursery:
        while True:
            try:
                frame = await socket.receive()
            except InvalidRequestError as exc:
                await bad_frame(exc)
                continue
            if frame is None:
                break
            await dispatch(frame, nursery)
        # The client has gone: every run stops, its CLI with it.
        nursery.cancel_scope.cancel()


def _bad_frame(message: str, code: str = "invalid_frame") -> InvalidRequestError:
    return InvalidRequestError(message, code=code)


def _surfaces() -> dict[str, Surface]:
    # Imported here: both surfaces import this module for `Socket`.
    from .ws_chat import chat_socket
    from .ws_responses import responses_socket

    return {"/responses": responses_socket, "/ws": chat_socket}


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


async def serve_websocket(gw: Gateway, scope: Scope, receive: Receive, send: Send, *,
                          auth: Auth, cors: Cors) -> None:
    """Serve one WebSocket connection from handshake to close."""
    if (await receive())["type"] != "websocket.connect":
        return
    started = trio.current_time()
    path = scope["path"].rstrip("/")
    surface = _surfaces().get(path[3:] if path.startswith("/v1/") else path)

    def log_line(status: int, extra: str = "") -> None:
        line = access_line(request_id=f"ws_{uuid.uuid4().hex}", method="GET",
                           path=scope["path"], status=status,
                           duration=trio.current_time() - started, published=None)
        log.info("%s%s", line, extra)

    try:
        if surface is None:
            raise ProtocolError(f"No WebSocket endpoint at {scope['path']}", status_hint=404,
                                error_type="invalid_request_error", code="unknown_url")
        # Browsers let any page open a WebSocket to localhost (no CORS preflight), so a
        # browser's Origin must be one CORS allows; other clients send none.
        if header(scope, "origin") is not None and cors.allowed_origin(scope) is None:
            raise ProtocolError("This Origin may not open WebSockets on this server",
                                status_hint=403, error_type="invalid_request_error",
                                code="origin_not_allowed")
        auth.check(scope)
    except ProtocolError as exc:
        await _refuse(scope, send, exc)
        log_line(exc.status_hint)
        return
    socket = Socket(receive, send, gw.settings.websocket)
    await socket.serve(lambda s: surface(gw, s))
    code, reason = socket.closing or (1000, "")
    log_line(101, f" close={code}" + (f" reason={json.dumps(reason)}" if reason else ""))
