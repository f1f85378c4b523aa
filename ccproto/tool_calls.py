"""The client tool calls of the response in progress: how Claude's ``tool_use`` blocks of
the client's tools become `ToolCallStart` and `ToolCallDelta` events, and the
`ToolCallsRequested` that ends the response (`Turn` decides when).

The stream shows a call as it is written (``content_block_start``, then
``input_json_delta`` fragments); the complete ``assistant`` line is authoritative, and
shows the calls of a message the CLI fetched again without streaming. The ``tools/call``
the CLI then sends names its tool use, except after that non-streaming fallback (measured
on 2.1.197), when `call_id_for` finds it by name and arguments.
"""

from __future__ import annotations

import json
from typing import Any

import attrs

from .events import (
    TokenUsage,
    ToolCall,
    ToolCallDelta,
    ToolCallsRequested,
    ToolCallStart,
    TurnEvent,
)

__all__ = ["ClientCalls"]


@attrs.define
class _Call:
    index: int
    call_id: str
    name: str
    arguments: str = ""  # what the client has been sent


class ClientCalls:
    """The calls of the client's tools (``names``) in the response in progress."""

    def __init__(self, names: frozenset[str]) -> None:
        self.names = names
        self._calls: list[_Call] = []
        # The stream's content block index -> its call, for the argument fragments.
        self._by_block: dict[Any, _Call] = {}
        # Calls whose ``tools/call`` has not come yet.
        self._unclaimed: list[_Call] = []

    @property
    def pending(self) -> bool:
        """The response in progress has calls (it ends with them)."""
        return bool(self._calls)

    def new_message(self) -> None:
        self._by_block = {}

    def start(self, block_index: Any, call_id: Any, name: str) -> list[TurnEvent]:
        if not isinstance(call_id, str) or any(c.call_id == call_id for c in self._calls):
            return []
        call = _Call(index=len(self._calls), call_id=call_id, name=name)
        self._calls.append(call)
        self._unclaimed.append(call)
        if block_index is not None:
            self._by_block[block_index] = call
        return [ToolCallStart(index=call.index, call_id=call_id, name=name)]

    def fragment(self, block_index: Any, text: Any) -> list[TurnEvent]:
        call = self._by_block.get(block_index)
        if call is None or not isinstance(text, str) or not text:
            return []
        call.arguments += text
        return [ToolCallDelta(index=call.index, arguments=text)]

    def catch_up(self, block: dict[str, Any]) -> list[TurnEvent]:
        """A complete tool_use block: a call the stream did not show is started and given
        its arguments whole; one already streamed stands as sent."""
        out = self.start(None, block.get("id"), block["name"])
        call = next((c for c in self._calls if c.call_id == block.get("id")), None)
        if call is None or call.arguments:
            return out
        full = json.dumps(block.get("input") or {}, ensure_ascii=False, separators=(",", ":"))
        call.arguments = full
        return [*out, ToolCallDelta(index=call.index, arguments=full)]

    def claim(self, call_id: Any) -> None:
        """The CLI sent the ``tools/call`` of ``call_id``."""
        self._unclaimed = [c for c in self._unclaimed if c.call_id != call_id]

    def call_id_for(self, name: str, arguments: Any) -> str | None:
        """The tool use id of a ``tools/call`` that came without one, or None: the
        earliest call of that tool, with those arguments, not claimed yet. Claims it."""
        for call in self._unclaimed:
            if call.name != name:
                continue
            try:
                value = json.loads(call.arguments or "{}")
            except ValueError:
                continue
            if value == arguments:
                self._unclaimed.remove(call)
                return call.call_id
        return None

    def request(self, usage: TokenUsage, *, transcript_mark: str | None = None
                ) -> list[TurnEvent]:
        """The response ends with its calls; the next response starts with none."""
        out: list[TurnEvent] = []
        for call in self._calls:
            if not call.arguments:
                # A call without input streamed no fragment; the client must still get
                # JSON, and the same JSON streamed as collected.
                call.arguments = "{}"
                out.append(ToolCallDelta(index=call.index, arguments="{}"))
        calls = tuple(ToolCall(call_id=c.call_id, name=c.name, arguments=c.arguments)
                      for c in self._calls)
        self._calls, self._by_block = [], {}
        return [*out, ToolCallsRequested(calls=calls, usage=usage,
                                         transcript_mark=transcript_mark)]
