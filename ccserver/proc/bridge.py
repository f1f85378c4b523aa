"""One CLI's in-band MCP server for the client's tools: what it answers, and the calls it
holds until the client sends their results (client-tools reference §1.1, §2, §12).

The CLI asks on stdout and waits for the answer on stdin. Everything but a tool call is
answered at once. A tool call is held: the HTTP response ends with the calls, the CLI
waits, and the client's next request brings the results, which answer the held calls so
the same CLI turn goes on. With parallel calls a call's ``tools/call`` may still be in
the pipe when its result comes: the result waits here until the call is read.
"""

from __future__ import annotations

from collections.abc import Mapping

import attrs

from ccproto import (
    CallCancelled,
    CallIdResolver,
    ControlRequest,
    ToolCallRequest,
    ToolSet,
    mcp_answer,
    tool_result_line,
)

__all__ = ["ToolBridge"]


@attrs.define
class ToolBridge:
    """The client-tool server of one CLI process (its tools are fixed for its life)."""

    tools: ToolSet | None
    #: Calls the CLI waits on, by tool use id (= OpenAI ``tool_call_id``).
    held: dict[str, ToolCallRequest] = attrs.field(factory=dict)
    #: Results that came before their call was read.
    early: dict[str, str] = attrs.field(factory=dict)
    #: The calls of the response that ended the last turn segment; their results are due.
    expected: tuple[str, ...] = ()

    def on_control(self, request: ControlRequest,
                   call_ids: CallIdResolver | None = None) -> bytes | None:
        """The line that answers ``request`` now, or None: a call to hold. ``call_ids``
        names a call the CLI sent without its tool use id (`ClientCalls.call_id_for`)."""
        reply = mcp_answer(request, self.tools, call_ids)
        if isinstance(reply, ToolCallRequest):
            output = self.early.pop(reply.tool_use_id, None)
            if output is not None:
                return tool_result_line(reply, output)
            self.held[reply.tool_use_id] = reply
            return None
        if isinstance(reply, CallCancelled):
            for key, call in list(self.held.items()):
                if call.rpc_id == reply.rpc_id:
                    del self.held[key]
            return reply.ack
        return reply

    def check(self, results: Mapping[str, str]) -> tuple[list[str], list[str]]:
        """(due calls without a result, results for no due call)."""
        missing = [c for c in self.expected if c not in results]
        unknown = [c for c in results if c not in self.expected]
        return missing, unknown

    def answer(self, results: Mapping[str, str]) -> bytes:
        """The lines answering the held calls with ``results``; a result whose call has not
        been read yet waits for it."""
        lines = []
        for call_id, output in results.items():
            call = self.held.pop(call_id, None)
            if call is None:
                self.early[call_id] = output
            else:
                lines.append(tool_result_line(call, output))
        self.expected = ()
        return b"".join(lines)
