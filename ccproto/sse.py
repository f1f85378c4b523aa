"""Server-sent events framing for OpenAI streams: bytes out, nothing written.

Every event is one ``data:`` line and a blank line; keep-alives are SSE comments, because
an event without data crashes the openai SDK (openai-wire.md §1.2).
"""

from __future__ import annotations

from typing import Final

__all__ = ["DONE", "KEEPALIVE", "encode_data", "encode_event"]

DONE: Final = b"data: [DONE]\n\n"
KEEPALIVE: Final = b": keep-alive\n\n"


def encode_data(payload: bytes) -> bytes:
    """One SSE event carrying ``payload`` (compact JSON: it has no newlines)."""
    return b"data: " + payload + b"\n\n"


def encode_event(name: str, payload: bytes) -> bytes:
    """One named SSE event: the Responses API names each (the SDK reads ``type`` from the
    data; other clients dispatch on the ``event:`` line, openai-wire.md §2.2)."""
    return b"event: " + name.encode() + b"\ndata: " + payload + b"\n\n"
