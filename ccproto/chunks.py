"""Turn events rendered as Chat Completions: streamed chunks or one collected completion.

`ChunkBuilder` maps each `TextDelta` to exactly one ``chat.completion.chunk`` (never merged,
never split), opens with the role chunk and closes with the finish chunk and, when the
client asked for ``stream_options.include_usage``, the usage chunk (openai-wire.md §1.3).
`collect` builds the non-streaming completion from the same events, so its content is by
construction the joined deltas.
"""

from __future__ import annotations

from collections.abc import Iterable

from .events import (
    ReasoningDelta,
    TextDelta,
    TokenUsage,
    ToolCallDelta,
    ToolCallsRequested,
    ToolCallStart,
    TurnEvent,
    TurnFailed,
    TurnFinished,
)
from .openai_types import (
    ChatCompletion,
    ChatCompletionChunk,
    ChatMessage,
    Choice,
    ChunkChoice,
    CompletionTokensDetails,
    Delta,
    FinishReason,
    FunctionCall,
    FunctionCallDelta,
    PromptTokensDetails,
    ToolCallDeltaOut,
    ToolCallOut,
    Usage,
)

__all__ = ["ChunkBuilder", "collect", "finish_reason", "openai_usage"]

_FINISH: dict[str | None, FinishReason] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    None: "stop",
    "max_tokens": "length",
    "refusal": "content_filter",
}


def finish_reason(done: TurnFinished) -> FinishReason:
    return "content_filter" if done.refused else _FINISH.get(done.stop_reason, "stop")


def openai_usage(usage: TokenUsage) -> Usage:
    return Usage(
        prompt_tokens=usage.prompt_tokens,
        completion_tokens=usage.output_tokens,
        total_tokens=usage.prompt_tokens + usage.output_tokens,
        prompt_tokens_details=PromptTokensDetails(cached_tokens=usage.cache_read_input_tokens),
        completion_tokens_details=CompletionTokensDetails(),
    )


class ChunkBuilder:
    """Builds the chunks of one streamed completion.

    Args:
        completion_id: the ``chatcmpl-...`` id every chunk carries.
        created: the Unix time every chunk carries (the caller reads the clock).
        model: the model name to report.
        include_usage: send the final usage chunk (``stream_options.include_usage``).
        include_reasoning: stream thinking as ``delta.reasoning_content``.
        conversation_id: extension field put on the first and last chunks.
    """

    def __init__(
        self,
        *,
        completion_id: str,
        created: int,
        model: str,
        include_usage: bool = False,
        include_reasoning: bool = False,
        conversation_id: str | None = None,
    ) -> None:
        self.completion_id = completion_id
        self.created = created
        self.model = model
        self.include_usage = include_usage
        self.include_reasoning = include_reasoning
        self.conversation_id = conversation_id

    def _chunk(
        self,
        choices: tuple[ChunkChoice, ...],
        *,
        usage: Usage | None = None,
        conversation_id: str | None = None,
    ) -> ChatCompletionChunk:
        return ChatCompletionChunk(
            id=self.completion_id,
            created=self.created,
            model=self.model,
            choices=choices,
            usage=usage,
            conversation_id=conversation_id,
        )

    def start(self) -> ChatCompletionChunk:
        """The opening chunk: ``{"role": "assistant", "content": ""}``."""
        return self._chunk(
            (ChunkChoice(delta=Delta(role="assistant", content="")),),
            conversation_id=self.conversation_id,
        )

    def feed(self, event: TurnEvent) -> list[ChatCompletionChunk]:
        """Chunks for one turn event. A `TurnFailed` yields none: the caller reports it."""
        if type(event) is TextDelta:
            return [self._chunk((ChunkChoice(delta=Delta(content=event.text)),))]
        if type(event) is ReasoningDelta:
            if not self.include_reasoning:
                return []
            return [self._chunk((ChunkChoice(delta=Delta(reasoning_content=event.text)),))]
        if type(event) is ToolCallStart:
            piece = ToolCallDeltaOut(index=event.index, id=event.call_id, type="function",
                                     function=FunctionCallDelta(name=event.name))
            return [self._chunk((ChunkChoice(delta=Delta(tool_calls=(piece,))),))]
        if type(event) is ToolCallDelta:
            piece = ToolCallDeltaOut(index=event.index,
                                     function=FunctionCallDelta(arguments=event.arguments))
            return [self._chunk((ChunkChoice(delta=Delta(tool_calls=(piece,))),))]
        if type(event) is TurnFinished:
            return self._finish(finish_reason(event), event.usage)
        if type(event) is ToolCallsRequested:
            return self._finish("tool_calls", event.usage)
        return []

    def _finish(self, reason: FinishReason, usage: TokenUsage) -> list[ChatCompletionChunk]:
        done = [
            self._chunk(
                (ChunkChoice(delta=Delta(), finish_reason=reason),),
                conversation_id=None if self.include_usage else self.conversation_id,
            )
        ]
        if self.include_usage:
            done.append(
                self._chunk((), usage=openai_usage(usage), conversation_id=self.conversation_id)
            )
        return done


def collect(
    events: Iterable[TurnEvent],
    *,
    completion_id: str,
    created: int,
    model: str,
    include_reasoning: bool = False,
    conversation_id: str | None = None,
) -> ChatCompletion | TurnFailed:
    """The non-streaming completion for a whole turn, or its `TurnFailed`."""
    text: list[str] = []
    reasoning: list[str] = []
    for event in events:
        if type(event) is TextDelta:
            text.append(event.text)
        elif type(event) is ReasoningDelta:
            reasoning.append(event.text)
        elif type(event) is TurnFailed:
            return event
        elif type(event) in (TurnFinished, ToolCallsRequested):
            calls = None
            reason: FinishReason
            if type(event) is ToolCallsRequested:
                calls = tuple(ToolCallOut(id=c.call_id, function=FunctionCall(
                    name=c.name, arguments=c.arguments)) for c in event.calls)
                reason = "tool_calls"
            else:
                assert type(event) is TurnFinished
                reason = finish_reason(event)
            return ChatCompletion(
                id=completion_id,
                created=created,
                model=model,
                choices=(
                    Choice(
                        message=ChatMessage(
                            # OpenAI sends null content for a message that only calls tools.
                            content="".join(text) if text or calls is None else None,
                            reasoning_content="".join(reasoning)
                            if include_reasoning and reasoning
                            else None,
                            tool_calls=calls,
                        ),
                        finish_reason=reason,
                    ),
                ),
                usage=openai_usage(event.usage),
                conversation_id=conversation_id,
            )
    raise ValueError("the turn has not finished")
