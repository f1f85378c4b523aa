"""Server-sent events framing for OpenAI streams: bytes out, nothing written.

Every event is one ``data:`` line and a blank line; keep-alives are SSE comments, because
an event without data crashes the openai SDK (openai-wire.md §1.2).
"""

from __future__ import annotations

from typing import Final

__all__ = ["DONE", "KEEPALIVE", "encode_data"]

DONE: Final = b"data: [DONE]\n\n"
KEEPALIVE: Final = b": keep-alive\n\n"


def encode_data(payload: bytes) -> bytes:
    """One SSE event carrying ``payload`` (compact JSON: it has no newlines)."""
    return b"data: " + payload + b"\n\n"
