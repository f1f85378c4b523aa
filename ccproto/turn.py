"""Turn: what one CLI turn means, independent of the OpenAI surface that shows it.

Feed it every record of a run (and the final `Exit`); it answers with `TurnEvent` values:
text and reasoning deltas for the client, then exactly one `TurnFinished` or `TurnFailed`.
Chat Completions, the Responses API and the WebSocket surface all render these.

Rules it enforces (protocol reference §0, §2.6, §3):

* Lines with ``parent_tool_use_id`` come from subagents: they are activity, not content.
* Each upstream ``text_delta`` becomes exactly one `TextDelta`, never merged or split.
  Text of later assistant messages in the same turn (after Claude Code used a tool) is
  content too, set off by a blank line, except after a ``max_tokens`` stop, where the CLI
  continues the same answer.
* The complete ``assistant`` line is authoritative. When a stream breaks, the CLI retries
  without streaming and prints the whole text again; the client already has the first
  part, so only what it lacks is sent. Text already sent cannot be taken back: if the
  retry says something else, it follows after a blank line.
* Failure is ``result.is_error`` (plus ``api_error_status``), never ``subtype`` alone; an
  exit without a result is a failure too. `errors_map` turns each into an OpenAI error.

What moves the turn from state to state is `turn_state`'s table.
"""

from __future__ import annotations

import json
from typing import Any

import attrs

from .cli_types import (
    SYNTHETIC_MODEL,
    AssistantMessage,
    ControlRequest,
    Exit,
    Record,
    Result,
    StreamEvent,
    SystemEvent,
    SystemInit,
    UserMessage,
)
from .errors import CLIError
from .errors_map import error_for_exit, error_for_result, retry_delay
from .events import (
    STRUCTURED_OUTPUT_TOOL,
    ReasoningDelta,
    TextDelta,
    TokenUsage,
    TurnEvent,
    TurnFailed,
    TurnFinished,
    usage_from,
)
from .tool_calls import ClientCalls
from .turn_state import FAILING_RESULT, TRANSITIONS, TurnInput, TurnState, describe

__all__ = ["Turn"]


class Turn:
    """Interprets the records of one CLI turn; see the module docstring.

    Args:
        client_tools: the names of the client's own tools (ccproto.tools). Claude's calls
            of them are the turn's `ToolCallStart`/`ToolCallDelta` events, and a message
            that ends calling them is a `ToolCallsRequested`: the response ends there
            while the turn waits for the results, and this same object reads on once
            they are answered.
        structured: the turn runs with ``--json-schema``: its content is the result's
            ``structured_output`` as JSON text, sent whole at the end; the model's text
            is not content, and a turn without the object fails.
    """

    def __init__(self, *, client_tools: frozenset[str] = frozenset(),
                 structured: bool = False) -> None:
        #: The client tool calls of the response in progress.
        self.calls = ClientCalls(client_tools)
        self.structured = structured
        self.state = TurnState.STARTING
        self.session_id: str | None = None
        self.model: str | None = None
        #: True once the model produced anything (a stream event or an assistant line);
        #: the server's first-output timeout watches this.
        self.has_output = False
        self.outcome: TurnFinished | TurnFailed | None = None
        # Text the client already has for the text block in progress (None: no block).
        self._shown: str | None = None
        # Text streamed so far in the current physical block (one API attempt).
        self._block = ""
        self._emitted_any = False
        self._message_id: str | None = None
        self._last_text_message_id: str | None = None
        self._continues = False  # the previous message stopped at max_tokens
        self._used_tools = False
        self._last_uuid: str | None = None
        # (status, seconds) of the last api_retry line: the only place the CLI shows how
        # long the upstream asked it to wait (see errors_map).
        self._last_retry: tuple[int, float] | None = None
        # The message the stream is showing (message_start seen, its message_delta not).
        self._streaming: str | None = None
        # Usage of the API calls since the last `ToolCallsRequested` (message_start and
        # message_delta carry it), and what earlier responses already reported.
        self._window = TokenUsage()
        self._message_usage = TokenUsage()
        self._reported = TokenUsage()

    def feed(self, record: Record | Exit) -> list[TurnEvent]:
        """Advance by one record; returns the events it produced (often none).

        Raises:
            CLIError: ``record`` cannot follow what came before (input after the `Exit`);
                the turn is FAILED afterwards.
        """
        failure = (error_for_result(record, self._last_retry)
                   if isinstance(record, Result) else None)
        live = self.state in (TurnState.STARTING, TurnState.RUNNING)
        self._transition(FAILING_RESULT if failure is not None else type(record))
        if not live:
            return []  # the outcome is settled: the table moved the state, nothing else
        match record:
            case Exit():
                return self._fail(error_for_exit(record))
            case Result():
                return self._on_result(record, failure)
            case SystemInit():
                self.session_id = record.session_id or self.session_id
                self.model = record.model
                return []
            case (
                StreamEvent(parent_tool_use_id=str())
                | AssistantMessage(parent_tool_use_id=str())
                | UserMessage(parent_tool_use_id=str())
                | SystemEvent(parent_tool_use_id=str())
            ):
                self.has_output = True  # a subagent at work is progress, not content
                return []
            case StreamEvent():
                self.has_output = True
                return self._on_stream_event(record.event)
            case AssistantMessage():
                self.has_output = True
                return self._on_assistant(record)
            case UserMessage():
                self.has_output = True
                return []
            case ControlRequest():
                return self._on_control(record)
            case SystemEvent(subtype="api_retry"):
                # The attempt in flight is abandoned; a retry restarts the block. What was
                # shown stays the baseline the retry is compared against.
                self._block = ""
                self._last_retry = retry_delay(record) or self._last_retry
                return []
            case _:
                return []

    # ---- internals ----------------------------------------------------------------------

    def _transition(self, what: TurnInput) -> None:
        before = self.state
        after = TRANSITIONS[before].get(what)
        if after is None:
            self.state = TurnState.FAILED
            raise CLIError(
                f"Turn can't handle {describe(what)} when state={before.value}",
                code="cli_protocol_error",
            )
        self.state = after

    def _on_stream_event(self, event: dict[str, Any]) -> list[TurnEvent]:
        etype = event.get("type")
        if etype == "content_block_delta":
            delta = event.get("delta") or {}
            dtype = delta.get("type")
            if dtype == "input_json_delta":
                return self.calls.fragment(event.get("index"), delta.get("partial_json"))
            elif dtype == "text_delta" and self.structured:
                return []  # the content is the structured output, sent at the end
            elif dtype == "text_delta":
                text = delta.get("text")
                if isinstance(text, str) and text:
                    self._block += text
                    return self._show(self._block)
            elif dtype == "thinking_delta":
                text = delta.get("thinking")
                if isinstance(text, str) and text:
                    return [ReasoningDelta(text)]
        elif etype == "message_start":
            message = event.get("message") or {}
            self._message_id = message.get("id") if isinstance(message, dict) else None
            self._streaming = self._message_id
            self._block = ""
            self.calls.new_message()
            self._window += self._message_usage
            usage = message.get("usage") if isinstance(message, dict) else None
            self._message_usage = usage_from(usage if isinstance(usage, dict) else {})
        elif etype == "content_block_start":
            self._block = ""
            block = event.get("content_block") or {}
            if block.get("type") == "tool_use" and block.get("name") in self.calls.names:
                return self.calls.start(event.get("index"), block.get("id"), block["name"])
        elif etype == "message_delta":
            self._streaming = None
            delta = event.get("delta") or {}
            self._continues = delta.get("stop_reason") == "max_tokens"
            usage = event.get("usage")
            if isinstance(usage, dict) and isinstance(usage.get("output_tokens"), int):
                self._message_usage = attrs.evolve(self._message_usage,
                                                   output_tokens=usage["output_tokens"])
            if delta.get("stop_reason") == "tool_use" and self.calls.pending:
                return self._request_calls()
        return []

    def _request_calls(self) -> list[TurnEvent]:
        """The response ends with its calls; the next one starts afresh (no separator)."""
        usage = self._window + self._message_usage
        self._reported += usage
        self._window = self._message_usage = TokenUsage()
        self._emitted_any, self._shown, self._block = False, None, ""
        return self.calls.request(usage, transcript_mark=self._last_uuid)

    def _on_control(self, record: ControlRequest) -> list[TurnEvent]:
        """A ``tools/call``: the CLI runs the message's tools, so the message is complete.

        A streamed message ends with its ``message_delta``. One the CLI fetched without
        streaming (its fallback after a broken stream) has no stream events at all: its
        calls are known from its ``assistant`` lines, all printed before the CLI calls any
        tool, so the first ``tools/call`` ends the response.
        """
        message = record.request.get("message")
        if record.subtype != "mcp_message" or not isinstance(message, dict) \
                or message.get("method") != "tools/call":
            return []
        params = message.get("params")
        meta = params.get("_meta") if isinstance(params, dict) else None
        call_id = meta.get("claudecode/toolUseId") if isinstance(meta, dict) else None
        self.calls.claim(call_id)
        if self.calls.pending and self._streaming is None:
            return self._request_calls()
        return []

    def _on_assistant(self, record: AssistantMessage) -> list[TurnEvent]:
        if record.model == SYNTHETIC_MODEL:
            return []  # the CLI's error text; the result line reports the failure
        out: list[TurnEvent] = []
        self._last_uuid = record.uuid or self._last_uuid
        if record.message_id != self._streaming:
            self._streaming = None  # a message the stream did not show (a fallback)
        if record.message_id is not None and self._shown is None:
            self._message_id = record.message_id
        for block in record.content:
            if block.get("type") == "tool_use" and block.get("name") in self.calls.names:
                out += self.calls.catch_up(block)
                continue
            # StructuredOutput is how the answer is given, not a tool Claude Code ran.
            self._used_tools |= block.get("type") == "tool_use" and not (
                self.structured and block.get("name") == STRUCTURED_OUTPUT_TOOL)
            if self.structured:
                continue
            if block.get("type") == "text" and isinstance(block.get("text"), str):
                out += self._show(block["text"])
                # The block is complete: the next text starts a new block.
                self._shown = None
                self._block = ""
        return out

    def _show(self, full: str) -> list[TurnEvent]:
        """Bring the client up to ``full``, the whole text of the current block so far."""
        if self._shown is None:
            sep = ""
            if (
                self._emitted_any
                and not self._continues
                and self._message_id != self._last_text_message_id
            ):
                sep = "\n\n"
            self._continues = False
            self._shown = full
            self._last_text_message_id = self._message_id
            return self._emit(sep + full)
        shown = self._shown
        if full.startswith(shown):
            self._shown = full
            return self._emit(full[len(shown) :])
        if shown.startswith(full):
            return []  # a retry is still repeating what the client has
        # A retry said something else. What was sent cannot be withdrawn.
        self._shown = full
        return self._emit("\n\n" + full)

    def _emit(self, text: str) -> list[TurnEvent]:
        if not text:
            return []
        self._emitted_any = True
        return [TextDelta(text)]

    def _on_result(self, record: Result, failure: CLIError | None) -> list[TurnEvent]:
        self.session_id = record.session_id or self.session_id
        if failure is not None:
            return self._fail(failure)
        out: list[TurnEvent] = []
        if self.structured:
            # Check the field, not the subtype: a model that answers in text twice ends
            # "success" without it (client-tools reference §9).
            if "structured_output" not in record.raw:
                return self._fail(CLIError(
                    "The model did not produce a JSON object matching the requested schema",
                    code="structured_output_failed"))
            out.append(TextDelta(json.dumps(record.raw["structured_output"],
                                            ensure_ascii=False, separators=(",", ":"))))
        self.outcome = TurnFinished(
            stop_reason="end_turn" if self.structured else record.stop_reason,
            usage=usage_from(record.usage) - self._reported,
            session_id=self.session_id,
            cost_usd=record.total_cost_usd,
            result_text=record.result,
            refused=record.stop_reason == "refusal",
            used_tools=self._used_tools,
            transcript_mark=self._last_uuid,
        )
        return [*out, self.outcome]

    def _fail(self, error: CLIError) -> list[TurnEvent]:
        # The table already moved the state to FAILED; this records why.
        self.outcome = TurnFailed(error=error)
        return [self.outcome]
