"""Turn events rendered as the OpenAI Responses API: the event stream and the final
``response`` object (openai-wire.md §2, openai-clients.md §1.11 and §4).

`ResponseBuilder` renders one turn. Events are plain JSON-ready dicts: the Response object
has some thirty fields, most of them fixed, and its schema in OpenAI's OpenAPI document is
what the tests check them against. Each event carries the next ``sequence_number``; text
goes into one ``message`` output item whose content is exactly the joined deltas (and,
when asked for, thinking into ``reasoning`` items, a new item whenever the kind changes).
The stream ends with exactly one of ``response.completed``, ``response.incomplete``
(stopped at the token limit or refused) or ``response.failed``. The non-streaming answer
is the builder's final `ResponseBuilder.response`, so both agree by construction.

Calls of the client's own tools are ``function_call`` items (``custom_tool_call`` for a
free-form tool), after the message holding any text said before them. Their arguments
stream as ``response.function_call_arguments.delta`` events; a `ToolCallsRequested`
completes every call with its final arguments and ends the response as completed: the CLI
turn waits for the results, which the client's next request brings.
"""

from __future__ import annotations

import json
from typing import Any

import attrs

from .chunks import finish_reason
from .errors import ProtocolError
from .events import (
    ReasoningDelta,
    TextDelta,
    TokenUsage,
    ToolCall,
    ToolCallDelta,
    ToolCallsRequested,
    ToolCallStart,
    TurnEvent,
    TurnFailed,
    TurnFinished,
)
from .responses_input import ResponsesRequest

__all__ = ["ResponseBuilder", "custom_input", "responses_usage"]

# ResponseError.code is an enum in the spec; anything else maps to server_error.
_FAILED_CODES = {429: "rate_limit_exceeded", 400: "invalid_prompt"}


def responses_usage(usage: TokenUsage) -> dict[str, Any]:
    """``ResponseUsage``: integer counts with every detail field (3.x SDKs require them)."""
    return {
        "input_tokens": usage.prompt_tokens,
        "input_tokens_details": {"cached_tokens": usage.cache_read_input_tokens,
                                 "cache_write_tokens": usage.cache_creation_input_tokens},
        "output_tokens": usage.output_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": usage.prompt_tokens + usage.output_tokens,
    }


def custom_input(arguments: str) -> str:
    """A custom tool call's ``input``: the string Claude gave as the tool's one argument
    (ccproto.tools), or the arguments as they are when they hold none."""
    try:
        value = json.loads(arguments)
    except ValueError:
        return arguments
    found = value.get("input") if isinstance(value, dict) else None
    return found if isinstance(found, str) else arguments


def _echoed(tool: dict[str, Any]) -> dict[str, Any]:
    """A client tool as the Response object lists it: a function tool with every field the
    schema requires (a client may leave out ``strict`` or ``parameters``)."""
    if tool.get("type") != "function":
        return tool
    return {"type": "function", "name": tool.get("name"),
            "description": tool.get("description"), "parameters": tool.get("parameters"),
            "strict": tool.get("strict") if isinstance(tool.get("strict"), bool) else None}


@attrs.define
class _Item:
    """One output item being built: a message (output_text), reasoning (reasoning_text),
    or a call of a client tool (function_call, custom_tool_call)."""

    kind: str
    id: str
    texts: list[str] = attrs.field(factory=list)
    status: str = "in_progress"
    has_part: bool = False
    call_id: str = ""
    name: str = ""

    def part(self) -> dict[str, Any]:
        text = "".join(self.texts)
        if self.kind == "reasoning":
            return {"type": "reasoning_text", "text": text}
        return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}

    def wire(self) -> dict[str, Any]:
        if self.kind == "function_call":
            return {"type": "function_call", "id": self.id, "call_id": self.call_id,
                    "name": self.name, "arguments": "".join(self.texts),
                    "status": self.status}
        if self.kind == "custom_tool_call":
            # Its input is known whole only at the end (the streamed arguments are JSON
            # around it): "" until then.
            done = self.status != "in_progress"
            return {"type": "custom_tool_call", "id": self.id, "call_id": self.call_id,
                    "name": self.name,
                    "input": custom_input("".join(self.texts)) if done else ""}
        content = [self.part()] if self.has_part else []
        if self.kind == "reasoning":
            return {"type": "reasoning", "id": self.id, "status": self.status, "summary": [],
                    "content": content}
        return {"type": "message", "id": self.id, "status": self.status, "role": "assistant",
                "content": content}


class ResponseBuilder:
    """Builds the events and the final object of one response.

    Args:
        response_id: the ``resp_...`` id; item ids are derived from it.
        created_at: Unix time of creation (the caller reads the clock).
        model: the model to report.
        request: the structured request, echoed where the Response object repeats it.
        conversation_id: extension field on the Response object.
        include_reasoning: render thinking as reasoning items.
    """

    def __init__(self, *, response_id: str, created_at: int, model: str,
                 request: ResponsesRequest, conversation_id: str | None = None,
                 include_reasoning: bool = False) -> None:
        self.response_id, self.created_at, self.model = response_id, created_at, model
        self.request = request
        self.conversation_id = conversation_id
        self.include_reasoning = include_reasoning
        self.status = "in_progress"
        self.sequence_number = 0
        self._items: list[_Item] = []
        self._open: _Item | None = None
        #: The calls of this response, by the turn's call index.
        self._calls: dict[int, _Item] = {}
        self._custom = frozenset(t.get("name") for t in request.tools
                                 if t.get("type") == "custom")
        self._usage: dict[str, Any] | None = None
        self._error: dict[str, Any] | None = None
        self._incomplete: dict[str, Any] | None = None
        self._completed_at: int | None = None

    @property
    def done(self) -> bool:
        return self.status != "in_progress"

    def _event(self, kind: str, **fields: Any) -> dict[str, Any]:
        event = {"type": kind, "sequence_number": self.sequence_number, **fields}
        if self.request.stream_id is not None:
            event["stream_id"] = self.request.stream_id
        self.sequence_number += 1
        return event

    def response(self) -> dict[str, Any]:
        """The Response object as it stands (the final one once `done`)."""
        r = self.request
        body: dict[str, Any] = {
            "id": self.response_id, "object": "response", "created_at": self.created_at,
            "status": self.status, "completed_at": self._completed_at, "error": self._error,
            "incomplete_details": self._incomplete, "instructions": r.instructions,
            "max_output_tokens": None, "model": self.model,
            "output": [item.wire() for item in self._items],
            "parallel_tool_calls": r.parallel_tool_calls is not False,
            "previous_response_id": r.previous_response_id,
            "reasoning": {"effort": r.reasoning_effort, "summary": None}, "store": r.store,
            # Sampling settings are not applied by the CLI, so none is reported.
            "temperature": None, "top_p": None,
            "text": {"format": r.text_format or {"type": "text"}},
            # The client's own tools only: dropped hosted tools were never offered.
            "tool_choice": r.tool_choice or "auto", "tools": [_echoed(t) for t in r.tools],
            "truncation": "disabled",
            "metadata": dict(r.metadata), "service_tier": "default", "background": False,
        }
        # Left out until known: the schema has no null usage (clients accept either).
        if self._usage is not None:
            body["usage"] = self._usage
        if r.conversation is not None:
            body["conversation"] = {"id": r.conversation}
        if self.conversation_id is not None:
            body["conversation_id"] = self.conversation_id
        return body

    def start(self) -> list[dict[str, Any]]:
        """``response.created`` and ``response.in_progress``."""
        return [self._event("response.created", response=self.response()),
                self._event("response.in_progress", response=self.response())]

    def keepalive(self) -> dict[str, Any]:
        """A data event for long silences: Codex's idle timer ignores SSE comments."""
        return self._event("keepalive")

    def feed(self, event: TurnEvent, *, now: float) -> list[dict[str, Any]]:
        """The events for one turn event; ``now`` (Unix time) dates a completion."""
        if self.done:
            return []
        if type(event) is TextDelta:
            return self._delta("message", event.text)
        if type(event) is ReasoningDelta:
            return self._delta("reasoning", event.text) if self.include_reasoning else []
        if type(event) is ToolCallStart:
            return self._call_start(event.index, event.call_id, event.name)
        if type(event) is ToolCallDelta:
            return self._call_delta(event)
        if type(event) is ToolCallsRequested:
            return self._calls_done(event, now)
        if type(event) is TurnFinished:
            return self._finish(event, now)
        if type(event) is TurnFailed:
            return self.fail(event.error)
        return []

    def fail(self, error: ProtocolError) -> list[dict[str, Any]]:
        """End with ``response.failed``; the item in progress stays incomplete."""
        self._error = {"code": _FAILED_CODES.get(error.status_hint, "server_error"),
                       "message": error.message}
        return self._end("failed", "response.failed")

    def cancel(self) -> list[dict[str, Any]]:
        """End a response the client cancelled: ``response.failed`` with status cancelled.

        The Responses stream has no cancelled event; ``response.failed`` is one of the
        three every client treats as the end, and the status says why.
        """
        return self._end("cancelled", "response.failed")

    def _end(self, status: str, kind: str) -> list[dict[str, Any]]:
        for item in self._items:
            if item.status == "in_progress":
                item.status = "incomplete"
        self._open = None
        self.status = status
        return [self._event(kind, response=self.response())]

    def _delta(self, kind: str, text: str) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        if self._open is not None and self._open.kind != kind:
            out += self._close("completed")
        if self._open is None:
            out += self._add(kind)
        item = self._open
        assert item is not None
        item.texts.append(text)
        delta = "response.reasoning_text.delta" if kind == "reasoning" else \
            "response.output_text.delta"
        extra: dict[str, Any] = {} if kind == "reasoning" else {"logprobs": []}
        out.append(self._event(delta, item_id=item.id, output_index=len(self._items) - 1,
                               content_index=0, delta=text, **extra))
        return out

    def _add(self, kind: str) -> list[dict[str, Any]]:
        prefix = "rs" if kind == "reasoning" else "msg"
        base = self.response_id.removeprefix("resp_")
        item = _Item(kind=kind, id=f"{prefix}_{base}_{len(self._items)}")
        self._items.append(item)
        self._open = item
        index = len(self._items) - 1
        added = self._event("response.output_item.added", output_index=index, item=item.wire())
        item.has_part = True
        return [added, self._event("response.content_part.added", item_id=item.id,
                                   output_index=index, content_index=0, part=item.part())]

    def _close(self, status: str) -> list[dict[str, Any]]:
        item = self._open
        assert item is not None
        self._open = None
        item.status = status
        index = len(self._items) - 1  # the open item is always the newest
        where = {"item_id": item.id, "output_index": index, "content_index": 0}
        text = "".join(item.texts)
        if item.kind == "reasoning":
            done = self._event("response.reasoning_text.done", **where, text=text)
        else:
            done = self._event("response.output_text.done", **where, text=text, logprobs=[])
        return [done, self._event("response.content_part.done", **where, part=item.part()),
                self._event("response.output_item.done", output_index=index, item=item.wire())]

    def _finish(self, done: TurnFinished, now: float) -> list[dict[str, Any]]:
        reason = finish_reason(done)
        status = "completed" if reason in ("stop", "tool_calls") else "incomplete"
        out: list[dict[str, Any]] = []
        if not any(item.kind == "message" for item in self._items):
            # An empty answer is still a message, so `output_text` and clients reading
            # output[-1].content[0].text find one.
            if self._open is not None:
                out += self._close("completed")
            out += self._add("message")
        if self._open is not None:
            out += self._close(status)
        self._usage = responses_usage(done.usage)
        if status == "completed":
            self._completed_at = int(now)
            self.status = status
            return [*out, self._event("response.completed", response=self.response())]
        self._incomplete = {"reason": "max_output_tokens" if reason == "length"
                            else "content_filter"}
        self.status = status
        return [*out, self._event("response.incomplete", response=self.response())]

    # ---- client tool calls ----------------------------------------------------------------

    def _call_start(self, index: int, call_id: str, name: str) -> list[dict[str, Any]]:
        out = self._close("completed") if self._open is not None else []
        custom = name in self._custom
        prefix = "ctc" if custom else "fc"
        base = self.response_id.removeprefix("resp_")
        item = _Item(kind="custom_tool_call" if custom else "function_call",
                     id=f"{prefix}_{base}_{len(self._items)}", call_id=call_id, name=name)
        self._items.append(item)
        self._calls[index] = item
        return [*out, self._event("response.output_item.added",
                                  output_index=len(self._items) - 1, item=item.wire())]

    def _call_delta(self, event: ToolCallDelta) -> list[dict[str, Any]]:
        item = self._calls.get(event.index)
        if item is None:
            return []
        item.texts.append(event.arguments)
        if item.kind != "function_call":
            return []  # a custom call's input goes out whole, when it is complete
        return [self._event("response.function_call_arguments.delta", item_id=item.id,
                            output_index=self._items.index(item), delta=event.arguments)]

    def _call_done(self, call: ToolCall) -> list[dict[str, Any]]:
        item = next((i for i in self._calls.values() if i.call_id == call.call_id), None)
        out: list[dict[str, Any]] = []
        if item is None:  # never started (not seen streaming): added now, whole
            out += self._call_start(len(self._calls), call.call_id, call.name)
            item = self._items[-1]
        # The turn's arguments are authoritative (a call whose stream showed none has "{}").
        item.texts = [call.arguments]
        item.status = "completed"
        index = self._items.index(item)
        where = {"item_id": item.id, "output_index": index}
        if item.kind == "function_call":
            out.append(self._event("response.function_call_arguments.done", **where,
                                   name=item.name, arguments=call.arguments))
        else:
            text = custom_input(call.arguments)
            out += [self._event("response.custom_tool_call_input.delta", **where, delta=text),
                    self._event("response.custom_tool_call_input.done", **where, input=text)]
        out.append(self._event("response.output_item.done", output_index=index,
                               item=item.wire()))
        return out

    def _calls_done(self, event: ToolCallsRequested, now: float) -> list[dict[str, Any]]:
        """Complete the calls and the response: the client runs them and sends results."""
        out = self._close("completed") if self._open is not None else []
        for call in event.calls:
            out += self._call_done(call)
        self._usage = responses_usage(event.usage)
        self._completed_at = int(now)
        self.status = "completed"
        return [*out, self._event("response.completed", response=self.response())]
