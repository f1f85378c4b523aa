"""Builders for stream-json lines, shaped like the CLI's own (protocol reference §2.4)."""

from __future__ import annotations

import json
from typing import Any

SID = "5e55-1d"


def line(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj).encode() + b"\n"


def init() -> dict[str, Any]:
    return {"type": "system", "subtype": "init", "session_id": SID, "model": "claude-sonnet-5",
            "cwd": "/w", "tools": ["Bash"]}


def ev(event: dict[str, Any], parent: str | None = None) -> dict[str, Any]:
    return {"type": "stream_event", "event": event, "parent_tool_use_id": parent,
            "session_id": SID}


def message_start(mid: str) -> dict[str, Any]:
    return ev({"type": "message_start", "message": {"id": mid, "model": "claude-sonnet-5"}})


def block_start(kind: str = "text", index: int = 0) -> dict[str, Any]:
    return ev({"type": "content_block_start", "index": index, "content_block": {"type": kind}})


def text_delta(text: str, index: int = 0, parent: str | None = None) -> dict[str, Any]:
    return ev({"type": "content_block_delta", "index": index,
               "delta": {"type": "text_delta", "text": text}}, parent)


def thinking_delta(text: str) -> dict[str, Any]:
    return ev({"type": "content_block_delta", "index": 0,
               "delta": {"type": "thinking_delta", "thinking": text}})


def message_delta(stop_reason: str) -> dict[str, Any]:
    return ev({"type": "message_delta", "delta": {"stop_reason": stop_reason},
               "usage": {"output_tokens": 3}})


def assistant(mid: str, block: dict[str, Any], *, model: str = "claude-sonnet-5",
              parent: str | None = None) -> dict[str, Any]:
    return {"type": "assistant", "message": {"id": mid, "model": model, "content": [block]},
            "parent_tool_use_id": parent, "session_id": SID}


def text_block(text: str) -> dict[str, Any]:
    return {"type": "text", "text": text}


def api_retry(status: int = 529) -> dict[str, Any]:
    return {"type": "system", "subtype": "api_retry", "attempt": 1, "max_retries": 2,
            "retry_delay_ms": 500, "error_status": status, "error": "overloaded"}


def result(*, is_error: bool = False, status: int | None = None, subtype: str = "success",
           text: str = "ok", stop_reason: str | None = "end_turn",
           usage: dict[str, int] | None = None) -> dict[str, Any]:
    return {"type": "result", "subtype": subtype, "is_error": is_error,
            "api_error_status": status, "result": text, "stop_reason": stop_reason,
            "session_id": SID, "total_cost_usd": 0.01, "num_turns": 1,
            "usage": usage or {"input_tokens": 10, "output_tokens": 4,
                               "cache_read_input_tokens": 5, "cache_creation_input_tokens": 1}}


def streamed_message(mid: str, *pieces: str, stop: str = "end_turn") -> list[dict[str, Any]]:
    """A whole streamed API message with one text block, as the CLI prints it."""
    return [message_start(mid), block_start(), *(text_delta(p) for p in pieces),
            assistant(mid, text_block("".join(pieces))),
            ev({"type": "content_block_stop", "index": 0}), message_delta(stop),
            ev({"type": "message_stop"})]


def usage_start(mid: str, input_tokens: int = 10, output_tokens: int = 1) -> dict[str, Any]:
    """message_start with the usage the API reports there."""
    return ev({"type": "message_start", "message": {
        "id": mid, "model": "claude-sonnet-5",
        "usage": {"input_tokens": input_tokens, "output_tokens": output_tokens,
                  "cache_read_input_tokens": 0, "cache_creation_input_tokens": 0}}})


def tool_start(index: int, tool_id: str, name: str) -> dict[str, Any]:
    return ev({"type": "content_block_start", "index": index,
               "content_block": {"type": "tool_use", "id": tool_id, "name": name, "input": {}}})


def input_delta(index: int, fragment: str) -> dict[str, Any]:
    return ev({"type": "content_block_delta", "index": index,
               "delta": {"type": "input_json_delta", "partial_json": fragment}})


def block_stop(index: int) -> dict[str, Any]:
    return ev({"type": "content_block_stop", "index": index})


def tool_block(tool_id: str, name: str, input: dict[str, Any]) -> dict[str, Any]:
    return {"type": "tool_use", "id": tool_id, "name": name, "input": input}


def tools_call(name: str, arguments: dict[str, Any], tool_id: str | None, rpc_id: int = 2,
               request_id: str = "req-call") -> dict[str, Any]:
    """The in-band MCP server's tools/call (client-tools reference §1.1)."""
    meta: dict[str, Any] = {"progressToken": rpc_id}
    if tool_id is not None:
        meta["claudecode/toolUseId"] = tool_id
    return {"type": "control_request", "request_id": request_id, "request": {
        "subtype": "mcp_message", "server_name": "c1", "message": {
            "method": "tools/call", "params": {"name": name, "arguments": arguments,
                                               "_meta": meta},
            "jsonrpc": "2.0", "id": rpc_id}}}


def tool_result_user(tool_id: str, text: str) -> dict[str, Any]:
    return {"type": "user", "message": {"role": "user", "content": [
        {"tool_use_id": tool_id, "type": "tool_result", "content": [{"type": "text", "text": text}]}]},
        "parent_tool_use_id": None, "session_id": SID}
