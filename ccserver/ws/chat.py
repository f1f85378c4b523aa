"""Chat completions over WebSocket at /v1/ws: our protocol (README, "Chat completions over
WebSocket"); no standard exists (openai-clients.md §4.3).

Client frames: ``{"type": "chat.completions.create", "id": ID, "request": {...}}`` and
``{"type": "cancel", "id": ID}``. Server frames, each tagged with the request's ``id``:
``chunk`` (a ``chat.completion.chunk``, exactly as the SSE stream sends it), then ``done``
(usage and conversation id), or ``error`` (an OpenAI error object and its HTTP status;
``id`` null when the frame had none). Several requests run at once, interleaved by id,
up to ``websocket.max_concurrent_per_socket``.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import trio

from ccproto import (
    ChatCompletionChunk,
    ChunkBuilder,
    InvalidRequestError,
    ToolCallsRequested,
    TurnFailed,
    TurnFinished,
    dumps,
    excerpt,
    openai_usage,
    structure_request,
)

from ..core.run import open_turn
from ..errors import DuplicateRequestId, TooManyRequests, UnknownRequestId
from ..gateway import Gateway
from .socket import Socket, error_frame_payload, serve_frames

__all__ = ["chat_socket"]

_MAX_ID = 128  # characters of a client's request id


def _chunk_frame(request_id: str, chunk: ChatCompletionChunk) -> str:
    # Spliced as text: the chunk is serialized once, by the same converter as over SSE.
    return f'{{"type":"chunk","id":{json.dumps(request_id)},"chunk":{dumps(chunk).decode()}}}'


class _Connection:
    def __init__(self, gw: Gateway, socket: Socket) -> None:
        self.gw, self.socket = gw, socket
        #: Requests in flight: id -> the cancel scope of its run.
        self.runs_by_id: dict[str, trio.CancelScope] = {}

    async def error(self, request_id: str | None, exc: BaseException) -> None:
        status, body = error_frame_payload(exc)
        await self.socket.send({"type": "error", "id": request_id, "status": status, **body})

    async def create(self, request_id: str, body: Any, run_scope: trio.CancelScope) -> None:
        try:
            with run_scope:
                await self._create(request_id, body, run_scope)
        except Exception as exc:
            self._finish(request_id, run_scope)
            await self.error(request_id, exc)
        finally:
            self._finish(request_id, run_scope)

    def _finish(self, request_id: str, run_scope: trio.CancelScope) -> None:
        # The id is free before the last frame goes out: the client may reuse it as soon
        # as it has that frame, while this CLI is still exiting.
        if self.runs_by_id.get(request_id) is run_scope:
            del self.runs_by_id[request_id]

    async def cancel(self, request_id: str) -> None:
        """Stop a request and tell the client at once; its CLI is stopped meanwhile."""
        run_scope = self.runs_by_id.pop(request_id, None)
        if run_scope is None:
            await self.error(request_id, UnknownRequestId(request_id))
            return
        run_scope.cancel()
        await self.error(request_id, InvalidRequestError(
            "The request was cancelled by the client", code="request_cancelled"))

    async def _send(self, text: str) -> None:
        # A cancel may land while this task holds a chunk it has not sent: nothing of a
        # cancelled request may follow the cancel's own frame.
        await trio.lowlevel.checkpoint_if_cancelled()
        await self.socket.send_text(text)

    async def _create(self, request_id: str, body: Any, run_scope: trio.CancelScope) -> None:
        if not isinstance(body, dict):
            raise InvalidRequestError("'request' must be a Chat Completions request object",
                                      param="request")
        request = structure_request(json.dumps(body))
        async with open_turn(self.gw.turn_services(), request,
                             conversation_id=request.conversation_id) as run:
            builder = ChunkBuilder(
                completion_id=f"chatcmpl-{uuid.uuid4().hex}", created=int(time.time()),
                model=run.model, conversation_id=run.conversation_id,
                include_usage=bool(request.stream_options
                                   and request.stream_options.include_usage),
                include_reasoning=self.gw.settings.claude.include_reasoning,
            )
            started = False
            while True:
                event = await run.receive()
                await trio.lowlevel.checkpoint_if_cancelled()
                if type(event) is TurnFailed:
                    self._finish(request_id, run_scope)
                    await self.error(request_id, event.error)
                    return
                if not started:
                    # Only now: a request that fails before any content gets just an error.
                    started = True
                    await self._send(_chunk_frame(request_id, builder.start()))
                chunks = builder.feed(event)
                # The end of this request's answer: a finished turn, or one that waits for
                # the client's tool results (sent as the next request's tool messages).
                done = event if isinstance(event, TurnFinished | ToolCallsRequested) else None
                if done is not None:
                    self._finish(request_id, run_scope)
                for chunk in chunks:
                    await self._send(_chunk_frame(request_id, chunk))
                if done is not None:
                    usage = dumps(openai_usage(done.usage)).decode()
                    await self._send(
                        f'{{"type":"done","id":{json.dumps(request_id)},"usage":{usage},'
                        f'"conversation_id":{json.dumps(run.conversation_id)}}}')
                    return

    async def dispatch(self, frame: dict[str, Any], nursery: trio.Nursery) -> None:
        kind, request_id = frame["type"], frame.get("id")
        if kind not in ("chat.completions.create", "cancel"):
            await self.error(request_id if isinstance(request_id, str) else None,
                             InvalidRequestError(
                f"Unsupported message type {excerpt(kind)}: send chat.completions.create or cancel",
                param="type", code="unsupported_message_type"))
            return
        if not isinstance(request_id, str) or not 0 < len(request_id) <= _MAX_ID:
            await self.error(None, InvalidRequestError(
                f"'id' must be a string of 1 to {_MAX_ID} characters", param="id"))
            return
        if kind == "chat.completions.create":
            limit = self.gw.settings.websocket.max_concurrent_per_socket
            if request_id in self.runs_by_id:
                await self.error(request_id, DuplicateRequestId(request_id))
            elif len(self.runs_by_id) >= limit:
                await self.error(request_id, TooManyRequests(limit))
            else:
                run_scope = self.runs_by_id[request_id] = trio.CancelScope()
                nursery.start_soon(self.create, request_id, frame.get("request"), run_scope)
        else:
            await self.cancel(request_id)


async def chat_socket(gw: Gateway, socket: Socket) -> None:
    connection = _Connection(gw, socket)
    await serve_frames(socket, connection.dispatch, lambda exc: connection.error(None, exc))
