"""What a CLI turn means to a client, independent of the OpenAI surface that shows it:
the `TurnEvent` values `Turn` produces (text, reasoning, client tool calls, the outcome)
and the token usage they carry."""

from __future__ import annotations

from typing import Any

import attrs

from .errors import CLIError

__all__ = [
    "STRUCTURED_OUTPUT_TOOL",
    "ReasoningDelta",
    "TextDelta",
    "TokenUsage",
    "ToolCall",
    "ToolCallDelta",
    "ToolCallStart",
    "ToolCallsRequested",
    "TurnEvent",
    "TurnFailed",
    "TurnFinished",
    "usage_from",
]


@attrs.frozen
class TextDelta:
    text: str


@attrs.frozen
class ReasoningDelta:
    text: str


@attrs.frozen(kw_only=True)
class ToolCallStart:
    """Claude began a call of a client tool: the ``index``-th call of this response."""

    index: int
    call_id: str
    name: str


@attrs.frozen(kw_only=True)
class ToolCallDelta:
    """A fragment of the ``index``-th call's arguments (JSON text, as Claude writes it)."""

    index: int
    arguments: str


@attrs.frozen(kw_only=True)
class ToolCall:
    call_id: str
    name: str
    #: The arguments as JSON text: the joined `ToolCallDelta` fragments of the call.
    arguments: str


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

    def __add__(self, other: TokenUsage) -> TokenUsage:
        return TokenUsage(**{k: getattr(self, k) + getattr(other, k) for k in _USAGE_KEYS})

    def __sub__(self, other: TokenUsage) -> TokenUsage:
        return TokenUsage(**{k: max(0, getattr(self, k) - getattr(other, k))
                             for k in _USAGE_KEYS})


#: The tool ``--json-schema`` adds; its input is the turn's structured output (reference §9).
STRUCTURED_OUTPUT_TOOL = "StructuredOutput"

_USAGE_KEYS = ("input_tokens", "output_tokens", "cache_read_input_tokens",
               "cache_creation_input_tokens")


@attrs.frozen(kw_only=True)
class ToolCallsRequested:
    """Claude's message ended calling client tools: the response ends here, with these calls.

    The CLI turn is not over: it waits for the results, which the client sends in its next
    request, and then goes on (the same `Turn` reads on). ``usage`` covers the API calls
    since the turn started or since the last results.
    """

    calls: tuple[ToolCall, ...]
    usage: TokenUsage
    #: The ``uuid`` of the turn's last assistant message: the CLI writes its session
    #: transcript a little after it answers, and this line in it means the turn is there.
    transcript_mark: str | None = attrs.field(default=None, eq=False)


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
    #: The ``uuid`` of the turn's last assistant message: the CLI writes its session
    #: transcript a little after it answers, and this line in it means the turn is there.
    transcript_mark: str | None = attrs.field(default=None, eq=False)


@attrs.frozen(kw_only=True)
class TurnFailed:
    # Exceptions compare by identity; two failures are equal when they say the same thing.
    error: CLIError = attrs.field(eq=lambda e: (e.status_hint, e.to_body()))


TurnEvent = (TextDelta | ReasoningDelta | ToolCallStart | ToolCallDelta | ToolCallsRequested
             | TurnFinished | TurnFailed)


def usage_from(raw: dict[str, Any]) -> TokenUsage:
    def n(key: str) -> int:
        v = raw.get(key)
        return v if isinstance(v, int) and not isinstance(v, bool) else 0

    return TokenUsage(
        input_tokens=n("input_tokens"),
        output_tokens=n("output_tokens"),
        cache_read_input_tokens=n("cache_read_input_tokens"),
        cache_creation_input_tokens=n("cache_creation_input_tokens"),
    )
