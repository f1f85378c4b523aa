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
"""

from __future__ import annotations

import enum
from typing import Any

import attrs

from .cli_types import (
    SYNTHETIC_MODEL,
    AssistantMessage,
    Exit,
    Record,
    Result,
    StreamEvent,
    SystemEvent,
    SystemInit,
    UserMessage,
)
from .errors import CLIError
from .errors_map import error_for_exit, error_for_result

__all__ = [
    "ReasoningDelta",
    "TextDelta",
    "TokenUsage",
    "Turn",
    "TurnEvent",
    "TurnFailed",
    "TurnFinished",
    "TurnState",
]


@attrs.frozen
class TextDelta:
    text: str


@attrs.frozen
class ReasoningDelta:
    text: str


@attrs.frozen(kw_only=True)
class TokenUsage:
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_input_tokens: int = 0
    cache_creation_input_tokens: int = 0

    @property
    def prompt_tokens(self) -> int:
        # OpenAI's prompt_tokens counts every input token, cached ones included.
        return self.input_tokens + self.cache_read_input_tokens + self.cache_creation_input_tokens


@attrs.frozen(kw_only=True)
class TurnFinished:
    stop_reason: str | None
    usage: TokenUsage
    session_id: str | None
    cost_usd: float | None
    result_text: str | None
    refused: bool = False
    #: Whether Claude Code ran a tool: the answer depends on more than the request.
    used_tools: bool = False


@attrs.frozen(kw_only=True)
class TurnFailed:
    # Exceptions compare by identity; two failures are equal when they say the same thing.
    error: CLIError = attrs.field(eq=lambda e: (e.status_hint, e.to_body()))


TurnEvent = TextDelta | ReasoningDelta | TurnFinished | TurnFailed


class TurnState(enum.Enum):
    STARTING = "starting"  # process started, no init line yet
    RUNNING = "running"  # init seen; API calls and tools in progress
    DONE = "done"  # result seen; waiting for the process to exit
    ENDED = "ended"  # exited after a result
    FAILED = "failed"  # a failure was reported; everything later is ignored


# (state, input) -> next state. Inputs: "init", "line" (any other record), "result", "exit".
# An input missing from the table for a state leaves the state unchanged; a missing init
# line is tolerated because the CLI's own output is the authority on content.
_TRANSITIONS: dict[tuple[TurnState, str], TurnState] = {
    (TurnState.STARTING, "init"): TurnState.RUNNING,
    (TurnState.STARTING, "line"): TurnState.RUNNING,
    (TurnState.STARTING, "result"): TurnState.DONE,
    (TurnState.STARTING, "exit"): TurnState.FAILED,
    (TurnState.RUNNING, "result"): TurnState.DONE,
    (TurnState.RUNNING, "exit"): TurnState.FAILED,
    (TurnState.DONE, "exit"): TurnState.ENDED,
}


def _usage(raw: dict[str, Any]) -> TokenUsage:
    def n(key: str) -> int:
        v = raw.get(key)
        return v if isinstance(v, int) and not isinstance(v, bool) else 0

    return TokenUsage(
        input_tokens=n("input_tokens"),
        output_tokens=n("output_tokens"),
        cache_read_input_tokens=n("cache_read_input_tokens"),
        cache_creation_input_tokens=n("cache_creation_input_tokens"),
    )


class Turn:
    """Interprets the records of one CLI turn; see the module docstring."""

    def __init__(self) -> None:
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

    def feed(self, record: Record | Exit) -> list[TurnEvent]:
        """Advance by one record; returns the events it produced (often none)."""
        if self.state in (TurnState.FAILED, TurnState.ENDED):
            return []
        if type(record) is Exit:
            return self._on_exit(record)
        if self.state is TurnState.DONE:
            return []  # the turn's answer is final; a result closes it (reference §2.3)
        if getattr(record, "parent_tool_use_id", None) is not None:
            self.has_output = True  # a subagent at work is progress, not content
            return []
        kind = type(record)
        if kind is SystemInit:
            self._advance("init")
            self.session_id = record.session_id or self.session_id  # type: ignore[union-attr]
            self.model = record.model  # type: ignore[union-attr]
            return []
        if kind is Result:
            return self._on_result(record)  # type: ignore[arg-type]
        self._advance("line")
        if kind is StreamEvent:
            self.has_output = True
            return self._on_stream_event(record.event)  # type: ignore[union-attr]
        if kind is AssistantMessage:
            self.has_output = True
            return self._on_assistant(record)  # type: ignore[arg-type]
        if kind is SystemEvent and record.subtype == "api_retry":  # type: ignore[union-attr]
            # The attempt in flight is abandoned; a retry restarts the block. What was
            # shown stays the baseline the retry is compared against.
            self._block = ""
        if kind is UserMessage:
            self.has_output = True
        return []

    # ---- internals ----------------------------------------------------------------------

    def _advance(self, what: str) -> None:
        self.state = _TRANSITIONS.get((self.state, what), self.state)

    def _on_stream_event(self, event: dict[str, Any]) -> list[TurnEvent]:
        etype = event.get("type")
        if etype == "content_block_delta":
            delta = event.get("delta") or {}
            dtype = delta.get("type")
            if dtype == "text_delta":
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
            self._block = ""
        elif etype == "content_block_start":
            self._block = ""
        elif etype == "message_delta":
            delta = event.get("delta") or {}
            self._continues = delta.get("stop_reason") == "max_tokens"
        return []

    def _on_assistant(self, record: AssistantMessage) -> list[TurnEvent]:
        if record.model == SYNTHETIC_MODEL:
            return []  # the CLI's error text; the result line reports the failure
        out: list[TurnEvent] = []
        if record.message_id is not None and self._shown is None:
            self._message_id = record.message_id
        for block in record.content:
            self._used_tools |= block.get("type") == "tool_use"
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

    def _on_result(self, record: Result) -> list[TurnEvent]:
        self._advance("result")
        self.session_id = record.session_id or self.session_id
        error = error_for_result(record)
        if error is not None:
            return self._fail(error)
        self.outcome = TurnFinished(
            stop_reason=record.stop_reason,
            usage=_usage(record.usage),
            session_id=self.session_id,
            cost_usd=record.total_cost_usd,
            result_text=record.result,
            refused=record.stop_reason == "refusal",
            used_tools=self._used_tools,
        )
        return [self.outcome]

    def _on_exit(self, record: Exit) -> list[TurnEvent]:
        before = self.state
        self._advance("exit")
        if before is TurnState.DONE:
            return []
        return self._fail(error_for_exit(record))

    def _fail(self, error: CLIError) -> list[TurnEvent]:
        self.state = TurnState.FAILED
        self.outcome = TurnFailed(error=error)
        return [self.outcome]
