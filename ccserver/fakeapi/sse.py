"""Encode a scripted message as the Anthropic SSE stream, cut short when a fault applies.

Grammar produced (what the CLI 2.1.197 parses)::

    message_start
    ( content_block_start  content_block_delta*  content_block_stop )*
    message_delta  (stop_reason, usage.output_tokens)
    message_stop

thinking blocks carry ``thinking_delta``s then one ``signature_delta``; text blocks
``text_delta``; tool_use blocks ``input_json_delta``. ``delay_ms`` is slept before every delta
but the first.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from .blocks import Block
from .reply import Ending, Frame
from .steps import Step

__all__ = ["stream_frames"]


def _sse(name: str, data: Mapping[str, Any]) -> bytes:
    return f"event: {name}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


def stream_frames(
    message: Mapping[str, Any], blocks: list[Block], step: Step, faulty: bool
) -> tuple[tuple[Frame, ...], Ending]:
    # message_start carries the head only: empty content, no stop_reason, output_tokens 1
    # (the CLI copies this usage onto every `assistant` line, as with the real API).
    head = {
        **message,
        "content": [],
        "stop_reason": None,
        "usage": {**message["usage"], "output_tokens": 1},
    }
    frames = [Frame(_sse("message_start", {"type": "message_start", "message": head}))]
    text_ends: list[int] = []  # frame count after each text delta
    first_text_at: int | None = None
    last_delta_end = 1
    delay = step.delay_ms / 1000
    n_sent = 0
    for index, block in enumerate(blocks):
        start = {"type": "content_block_start", "index": index, "content_block": block.start}
        frames.append(Frame(_sse("content_block_start", start)))
        for delta in block.deltas:
            if delta["type"] == "text_delta" and first_text_at is None:
                first_text_at = len(frames)
            event = {"type": "content_block_delta", "index": index, "delta": delta}
            frames.append(Frame(_sse("content_block_delta", event), delay if n_sent else 0.0))
            n_sent += 1
            last_delta_end = len(frames)
            if delta["type"] == "text_delta":
                text_ends.append(len(frames))
        frames.append(
            Frame(_sse("content_block_stop", {"type": "content_block_stop", "index": index}))
        )
    final_delta = {
        "type": "message_delta",
        "delta": {"stop_reason": message["stop_reason"], "stop_sequence": None},
        "usage": {"output_tokens": message["usage"]["output_tokens"]},
    }
    frames.append(Frame(_sse("message_delta", final_delta)))
    frames.append(Frame(_sse("message_stop", {"type": "message_stop"})))
    if not faulty:
        return tuple(frames), Ending.COMPLETE

    def cut_after_text(n: int) -> int:
        # After the n-th text delta; n == 0 means just before the first one; short texts cut
        # after the last delta of any kind.
        if n <= 0:
            return first_text_at if first_text_at is not None else 1
        return text_ends[n - 1] if n <= len(text_ends) else last_delta_end

    if step.hang == "after_message_start":
        return tuple(frames[:1]), Ending.HANG
    if step.hang == "after_chunks":
        return tuple(frames[:last_delta_end]), Ending.HANG
    if step.drop_after is not None:
        return tuple(frames[: cut_after_text(step.drop_after)]), Ending.DROP
    assert step.midstream_error is not None
    err = step.midstream_error
    error_event = {"type": "error", "error": {"type": err.type, "message": err.message}}
    cut = frames[: cut_after_text(err.after)]
    return (*cut, Frame(_sse("error", error_event), delay)), Ending.COMPLETE
