"""Content blocks of a scripted assistant message, in both streamed and complete form.

Each `Block` keeps what ``content_block_start`` announces, the deltas that follow, and the
complete block the non-streaming reply carries, so both reply shapes come from one description
and the CLI's non-streaming fallback returns exactly what the broken stream was sending.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

import attrs

from .steps import Step, split_words

__all__ = ["Block", "build_blocks", "split_json"]


@attrs.frozen(kw_only=True)
class Block:
    start: dict[str, Any]
    deltas: tuple[dict[str, Any], ...]
    final: dict[str, Any]


def build_blocks(step: Step, new_id: Callable[[str], str]) -> list[Block]:
    """Thinking first, then text, then tool_use blocks (the order the real API uses)."""
    blocks: list[Block] = []
    if step.thinking is not None:
        blocks.append(_thinking(step.thinking))
    if step.chunks is not None:
        text = "".join(step.chunks)
        blocks.append(
            Block(
                start={"type": "text", "text": ""},
                deltas=tuple({"type": "text_delta", "text": chunk} for chunk in step.chunks),
                final={"type": "text", "text": text},
            )
        )
    for tool in step.tool_uses:
        tool_id = tool.id or new_id("toolu_fake_")
        payload = json.dumps(dict(tool.input), separators=(",", ":"))
        blocks.append(
            Block(
                start={"type": "tool_use", "id": tool_id, "name": tool.name, "input": {}},
                deltas=tuple(
                    {"type": "input_json_delta", "partial_json": part}
                    for part in split_json(payload)
                ),
                final={
                    "type": "tool_use",
                    "id": tool_id,
                    "name": tool.name,
                    "input": dict(tool.input),
                },
            )
        )
    return blocks


def split_json(payload: str, parts: int = 3) -> list[str]:
    """Cut serialized tool input into a few raw pieces, as the API does (not on token edges)."""
    size = max(1, -(-len(payload) // parts))
    return [payload[i : i + size] for i in range(0, len(payload), size)] or [""]


def _thinking(thinking: str) -> Block:
    # The CLI sends thinking blocks back verbatim with their signature; nothing checks it here,
    # but it must be non-empty and stable for the same text.
    signature = "fakesig_" + hashlib.sha256(thinking.encode()).hexdigest()[:32]
    deltas = [{"type": "thinking_delta", "thinking": part} for part in split_words(thinking)]
    deltas.append({"type": "signature_delta", "signature": signature})
    return Block(
        start={"type": "thinking", "thinking": "", "signature": ""},
        deltas=tuple(deltas),
        final={"type": "thinking", "thinking": thinking, "signature": signature},
    )
