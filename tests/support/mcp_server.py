"""A tiny stdio MCP server for the end-to-end tests: JSON-RPC 2.0, one message per line.

It answers ``initialize``, ``ping``, ``tools/list`` and ``tools/call`` and serves two tools:
``echo`` (returns ``ECHO: <text>``) and ``add`` (returns the sum of ``a`` and ``b``). Only the
standard library is used, so the CLI can start it as ``python mcp_server.py`` anywhere.
When ``MCP_CALL_LOG`` names a file, each tool call is appended to it as a JSON line, so a
test can tell that the tool really ran.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

__all__ = ["TOOLS", "handle"]

TOOLS: list[dict[str, Any]] = [
    {
        "name": "echo",
        "description": "Echo the given text back, prefixed with ECHO.",
        "inputSchema": {
            "type": "object",
            "properties": {"text": {"type": "string"}},
            "required": ["text"],
        },
    },
    {
        "name": "add",
        "description": "Add two numbers.",
        "inputSchema": {
            "type": "object",
            "properties": {"a": {"type": "number"}, "b": {"type": "number"}},
            "required": ["a", "b"],
        },
    },
]


def _call(name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    log = os.environ.get("MCP_CALL_LOG")
    if log:
        with open(log, "a", encoding="utf-8") as fh:
            fh.write(json.dumps({"name": name, "arguments": arguments}) + "\n")
    if name == "echo":
        text = f"ECHO: {arguments.get('text', '')}"
    elif name == "add":
        text = str(arguments.get("a", 0) + arguments.get("b", 0))
    else:
        return {"content": [{"type": "text", "text": f"unknown tool {name}"}], "isError": True}
    return {"content": [{"type": "text", "text": text}], "isError": False}


def handle(message: dict[str, Any]) -> dict[str, Any] | None:
    """The reply to one JSON-RPC message; None for notifications."""
    if "id" not in message:
        return None
    method, params = message.get("method"), message.get("params") or {}
    result: dict[str, Any]
    if method == "initialize":
        result = {
            # Echo the client's version: the server has nothing version-specific.
            "protocolVersion": params.get("protocolVersion", "2024-11-05"),
            "capabilities": {"tools": {}},
            "serverInfo": {"name": "ccserver-test-mcp", "version": "1.0.0"},
        }
    elif method == "ping":
        result = {}
    elif method == "tools/list":
        result = {"tools": TOOLS}
    elif method == "tools/call":
        result = _call(str(params.get("name")), params.get("arguments") or {})
    else:
        error = {"code": -32601, "message": f"method not found: {method}"}
        return {"jsonrpc": "2.0", "id": message["id"], "error": error}
    return {"jsonrpc": "2.0", "id": message["id"], "result": result}


def main() -> None:
    for line in sys.stdin:
        if not line.strip():
            continue
        reply = handle(json.loads(line))
        if reply is not None:
            sys.stdout.write(json.dumps(reply) + "\n")
            sys.stdout.flush()


if __name__ == "__main__":
    main()
