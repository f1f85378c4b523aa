"""WebSocket frames: the shapes the gateway's WebSocket surfaces send, as JSON-ready dicts.

The server's WebSocket layer (Hypercorn, through wsproto) does the framing, pings and
closing; each message it carries is one JSON text frame. What goes in a frame is protocol,
so it is built here, beside the builders of the events the frames carry
(`ResponseBuilder` for the Responses API's WebSocket mode, openai-clients.md §4.1).

A request that never ran has no event stream to fail in, so it is answered with one
``error`` frame instead (``ResponseWsError`` in OpenAI's OpenAPI document).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["ws_error"]


def ws_error(body: Mapping[str, Any], status: int,
             stream_id: str | None = None) -> dict[str, Any]:
    """A WebSocket-mode ``error`` frame (``ResponseWsError``) for a request that did not run.

    ``body`` is the OpenAI error body (``{"error": {...}}``); ``stream_id`` is echoed when
    the ``response.create`` frame carried one, as every event of a response echoes it.
    """
    frame: dict[str, Any] = {"type": "error", "status": status, "error": body["error"]}
    if stream_id is not None:
        frame["stream_id"] = stream_id
    return frame
