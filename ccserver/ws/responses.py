"""The Responses API's WebSocket mode on /v1/responses (openai-clients.md §4.1).

Client frames: ``{"type": "response.create", ...the POST body...}`` and
``{"type": "response.cancel"}``. The server sends each response's events exactly as the
SSE stream would, one JSON text frame each, with ``stream_id`` echoed when the create
carried one. One response runs at a time per connection, as the official clients expect;
a second create meanwhile gets an ``error`` frame. A request that cannot start gets
``{"type": "error", "status": N, "error": {...}}``. A cancel, or the socket closing,
stops the run's CLI at once. Responses created with ``store: false`` can still be
continued (``previous_response_id``) on the same connection.
"""

from __future__ import annotations

import time
from typing import Any

import attrs
import trio

from ccproto import (
    InvalidRequestError,
    ResponseBuilder,
    ToolCallsRequested,
    TurnFinished,
    chat_request,
    excerpt,
    structure_responses_request,
    ws_error,
)

from ..core.run import open_turn
from ..core.stored_responses import (
    continued_conversation,
    dropped_tools,
    new_builder,
    save_response,
)
from ..errors import ResponseInProgress
from ..gateway import Gateway
from .socket import Socket, error_frame_payload, serve_frames

__all__ = ["responses_socket"]


@attrs.define
class _Response:
    """The response in flight: what cancels it, and its builder once it started."""

    run_scope: trio.CancelScope = attrs.field(factory=trio.CancelScope)
    stream_id: str | None = None
    builder: ResponseBuilder | None = None


class _Connection:
    def __init__(self, gw: Gateway, socket: Socket) -> None:
        self.gw, self.socket = gw, socket
        self.current: _Response | None = None
        #: Ids of this connection's ``store: false`` responses -> their conversations.
        self.local: dict[str, str] = {}

    async def error(self, exc: BaseException, stream_id: str | None = None) -> None:
        status, body = error_frame_payload(exc)
        await self.socket.send(ws_error(body, status, stream_id))

    async def send_all(self, events: list[dict[str, Any]]) -> None:
        for event in events:
            await self.socket.send(event)

    async def cancel(self) -> None:
        """Stop the response in flight and end it for the client at once; its CLI is
        stopped while the connection moves on."""
        current, self.current = self.current, None
        if current is None:
            await self.error(InvalidRequestError("No response is in progress",
                                                 code="no_response_in_progress"))
            return
        current.run_scope.cancel()
        if current.builder is not None:
            await self.send_all(current.builder.cancel())
        else:  # still waiting for its conversation or a CLI slot
            await self.error(InvalidRequestError("The response was cancelled before it "
                                                 "started", code="response_cancelled"),
                             current.stream_id)

    async def create(self, frame: dict[str, Any], current: _Response) -> None:
        try:
            with current.run_scope:
                await self._create(frame, current)
        except Exception as exc:
            # Before response.created (invalid, unknown previous response, busy, ...).
            await self.error(exc, current.stream_id)
        finally:
            if self.current is current:
                self.current = None

    async def _send(self, current: _Response, events: list[dict[str, Any]]) -> None:
        # A cancel may land while this task holds a value it has not sent: nothing of a
        # cancelled response may follow the cancel's own events.
        await trio.lowlevel.checkpoint_if_cancelled()
        await self.send_all(events)

    async def _create(self, frame: dict[str, Any], current: _Response) -> None:
        # Over a WebSocket every response streams; "stream" in the frame changes nothing.
        request = structure_responses_request({**frame, "stream": True})
        chat = chat_request(request)
        dropped_tools(request)  # logged only: a frame has no headers
        gw = self.gw
        conversation_id = await continued_conversation(gw.records, request, self.local)
        async with open_turn(gw.turn_services(), chat, conversation_id=conversation_id) as run:
            current.builder = builder = new_builder(request, run,
                                                    gw.settings.claude.include_reasoning)
            await self._send(current, builder.start())
            keepalive = self.gw.settings.server.sse_keepalive_seconds
            while not builder.done:
                event = None
                with trio.move_on_after(keepalive):
                    event = await run.receive()
                if event is None:
                    await self._send(current, [builder.keepalive()])
                    continue
                await trio.lowlevel.checkpoint_if_cancelled()
                events = builder.feed(event, now=time.time())
                if builder.done:
                    # A response that ends calling tools is continued by its results.
                    if not request.store and type(event) in (TurnFinished,
                                                             ToolCallsRequested):
                        self.local[builder.response_id] = run.conversation_id
                    await save_response(self.gw.store, builder, run)
                    # Free before the last event goes out: the client may send its next
                    # create as soon as it has it, while this CLI is still exiting.
                    if self.current is current:
                        self.current = None
                await self._send(current, events)

    async def dispatch(self, frame: dict[str, Any], nursery: trio.Nursery) -> None:
        kind = frame["type"]
        if kind == "response.create":
            stream_id = frame.get("stream_id")
            stream_id = stream_id if isinstance(stream_id, str) else None
            if self.current is not None:
                await self.error(ResponseInProgress(), stream_id)
                return
            self.current = _Response(stream_id=stream_id)
            nursery.start_soon(self.create, frame, self.current)
        elif kind == "response.cancel":
            await self.cancel()
        else:
            await self.error(InvalidRequestError(
                f"Unsupported message type {excerpt(kind)}: send response.create or "
                "response.cancel", param="type", code="unsupported_message_type"))


async def responses_socket(gw: Gateway, socket: Socket) -> None:
    connection = _Connection(gw, socket)
    await serve_frames(socket, connection.dispatch, connection.error)
