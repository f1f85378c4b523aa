"""The in-band MCP server's side of the CLI's control protocol, without I/O.

With an MCP server of ``"type": "sdk"`` the CLI writes each MCP message for it as a
``control_request`` line (``subtype: "mcp_message"``) on stdout and waits for a
``control_response`` line on stdin (client-tools reference §1.1, §12). `answer` decides
what a control request gets: most are answered at once (``initialize``, ``tools/list``,
notifications), while a ``tools/call`` becomes a `ToolCallRequest` the caller holds until
the client sends the tool's result, then answers with `tool_result_line`.

The caller writes what these functions return and reads nothing through them; request ids
of its own control requests (`interrupt_line`) are its to choose.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

import attrs

from .cli_types import ControlRequest
from .tools import ToolSet

__all__ = [
    "CallCancelled",
    "CallIdResolver",
    "ToolCallRequest",
    "answer",
    "interrupt_line",
    "tool_error_line",
    "tool_result_line",
]

_PROTOCOL_VERSION = "2025-06-18"
_SERVER_INFO = {"name": "ccserver-client-tools", "version": "1"}


@attrs.frozen(kw_only=True)
class ToolCallRequest:
    """A ``tools/call`` the CLI waits on: Claude's call of a client tool."""

    request_id: str  # the control request's id, which the answer names
    rpc_id: Any  # the JSON-RPC id inside it
    #: The ``tool_use`` block's id, which is also the OpenAI ``tool_call_id``.
    tool_use_id: str
    name: str
    arguments: Mapping[str, Any] = attrs.field(eq=False)


@attrs.frozen(kw_only=True)
class CallCancelled:
    """``notifications/cancelled``: the CLI gave up a call (an interrupt); ``ack`` answers it."""

    rpc_id: Any
    ack: bytes


def _line(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"


def _success(request_id: str, response: dict[str, Any]) -> bytes:
    return _line({"type": "control_response", "response": {
        "subtype": "success", "request_id": request_id, "response": response}})


def _error(request_id: str, message: str) -> bytes:
    return _line({"type": "control_response", "response": {
        "subtype": "error", "request_id": request_id, "error": message}})


def _rpc(request_id: str, rpc_id: Any, *, result: Any = None,
         error: dict[str, Any] | None = None) -> bytes:
    message: dict[str, Any] = {"jsonrpc": "2.0", "id": rpc_id}
    if error is not None:
        message["error"] = error
    else:
        message["result"] = result if result is not None else {}
    return _success(request_id, {"mcp_response": message})


#: Finds the tool use id of a ``tools/call`` that came without one (`Turn.call_id_for`).
CallIdResolver = Callable[[str, Any], str | None]


def answer(request: ControlRequest, tools: ToolSet | None,
           call_ids: CallIdResolver | None = None) -> bytes | ToolCallRequest | CallCancelled:
    """What ``request`` gets: the line to write at once, or a call to hold.

    A control request that is no MCP message for our server (``can_use_tool`` when the
    operator set a permission prompt tool, say) is refused: the gateway asks no one.
    A ``tools/call`` names its tool use in ``_meta``, except after the CLI's non-streaming
    fallback; ``call_ids`` then finds it by the tool's name and arguments.
    """
    body = request.request
    if request.subtype != "mcp_message" or not isinstance(body.get("message"), Mapping):
        return _error(request.request_id, f"ccserver does not answer {request.subtype!r}")
    message: Mapping[str, Any] = body["message"]
    method = message.get("method")
    rpc_id = message.get("id")
    params: Mapping[str, Any] = message.get("params") or {}
    if not isinstance(params, Mapping):
        params = {}
    if method == "initialize":
        return _rpc(request.request_id, rpc_id, result={
            "protocolVersion": params.get("protocolVersion", _PROTOCOL_VERSION),
            "capabilities": {"tools": {}}, "serverInfo": _SERVER_INFO})
    if method == "tools/list":
        return _rpc(request.request_id, rpc_id,
                    result={"tools": tools.mcp_tools() if tools is not None else []})
    if method == "tools/call":
        meta: Mapping[str, Any] = params.get("_meta") or {}
        if not isinstance(meta, Mapping):
            meta = {}
        tool_use_id = meta.get("claudecode/toolUseId")
        name = params.get("name")
        arguments = params.get("arguments")
        if tool_use_id is None and call_ids is not None and isinstance(name, str):
            tool_use_id = call_ids(name, arguments if arguments is not None else {})
        if isinstance(tool_use_id, str) and isinstance(name, str):
            return ToolCallRequest(request_id=request.request_id, rpc_id=rpc_id,
                                   tool_use_id=tool_use_id, name=name,
                                   arguments=arguments if isinstance(arguments, Mapping) else {})
        return _rpc(request.request_id, rpc_id,
                    error={"code": -32602, "message": "tools/call without a tool use id"})
    if method == "notifications/cancelled":
        return CallCancelled(rpc_id=params.get("requestId"),
                             ack=_rpc(request.request_id, rpc_id))
    if isinstance(method, str) and (method.startswith("notifications/") or method == "ping"):
        return _rpc(request.request_id, rpc_id)
    return _rpc(request.request_id, rpc_id,
                error={"code": -32601, "message": f"Method not found: {method}"})


def tool_result_line(call: ToolCallRequest, output: str, *, is_error: bool = False) -> bytes:
    """The answer to a held call: the client's tool output, as one text block (OpenAI tool
    results are strings)."""
    result: dict[str, Any] = {"content": [{"type": "text", "text": output}]}
    if is_error:
        result["isError"] = True
    return _rpc(call.request_id, call.rpc_id, result=result)


def tool_error_line(call: ToolCallRequest, message: str) -> bytes:
    """A held call failed by the gateway (its client went away): Claude reads ``message``."""
    return _error(call.request_id, message)


def interrupt_line(request_id: str) -> bytes:
    """Ask the CLI to stop the turn; held calls are cancelled (reference §10)."""
    return _line({"type": "control_request", "request_id": request_id,
                  "request": {"subtype": "interrupt"}})
