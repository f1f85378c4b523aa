"""A bounded WebSocket: JSON frames in, JSON frames out, and a surface's accept loop.

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
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

import trio

from ccproto import InvalidRequestError, load_object

from ..edge.asgi import Receive, Send, decode
from ..errors import error_payload, unwrap_single
from ..settings.sections import WebSocketSettings

__all__ = ["Dispatch", "Socket", "error_frame_payload", "serve_frames"]

#: A surface's answer to one well-formed frame; it starts any long work in the nursery.
Dispatch = Callable[[dict[str, Any], trio.Nursery], Awaitable[None]]


class Socket:
    """One accepted WebSocket: JSON frames in, JSON frames out through a bounded queue."""

    def __init__(self, receive: Receive, send: Send, settings: WebSocketSettings) -> None:
        self._receive, self._send = receive, send
        self.settings = settings
        self._out, self._queued = trio.open_memory_channel[str](settings.send_queue)
        self._surface_scope = trio.CancelScope()
        #: Set when the server closes: (code, reason).
        self.closing: tuple[int, str] | None = None

    async def serve(self, surface: Callable[[Socket], Awaitable[None]]) -> None:
        await self._send({"type": "websocket.accept"})
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._writer)
            # Cancelled by `close`: the surface's runs end (their CLIs stopped) right away.
            with self._surface_scope:
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
            self._surface_scope.cancel()

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
        size = len(text) if text.isascii() else len(text.encode(errors="surrogatepass"))
        if size > limit:
            raise _bad_frame(f"Frame of {size} bytes is larger than the limit of {limit} "
                             "bytes", code="frame_too_large")
        # The one decoder of client JSON: depth, lone surrogates and NaN are refused there.
        frame = await decode(partial(load_object, what="Frame", code="invalid_frame"), text)
        if not isinstance(frame.get("type"), str):
            raise _bad_frame('Frame must be a JSON object with a string "type"')
        return frame


def error_frame_payload(exc: BaseException) -> tuple[int, dict[str, Any]]:
    """(status, OpenAI error body) for what a request on a socket raised.

    A request's nurseries wrap what escapes them; a group of one error is that error, as
    for HTTP requests (errors/groups.py, group policy).
    """
    status, body, _ = error_payload(unwrap_single(exc))
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
