"""Wire models of the OpenAI Chat Completions API, as frozen attrs classes.

Requests are modelled as far as the gateway reads them; fields a client may send but the
CLI cannot honour (``temperature``, ``seed``, ``logit_bias`` ...) are accepted and ignored
by the converter, because strict servers break real clients (openai-wire.md §4 item 14).
Responses mirror what OpenAI sends, including the fields clients insist on
(``finish_reason: null``, ``index``, ``logprobs: null``).
"""

from __future__ import annotations

from typing import Any, Literal

import attrs

__all__ = [
    "ChatCompletion",
    "ChatCompletionChunk",
    "ChatCompletionRequest",
    "ChatMessage",
    "Choice",
    "ChunkChoice",
    "CompletionTokensDetails",
    "ContentPart",
    "Delta",
    "FinishReason",
    "FunctionCall",
    "FunctionCallDelta",
    "ImagePart",
    "ImageURL",
    "Message",
    "Model",
    "ModelList",
    "OtherPart",
    "PromptTokensDetails",
    "Role",
    "StreamOptions",
    "TextPart",
    "ToolCallDeltaOut",
    "ToolCallOut",
    "Usage",
]

Role = Literal["system", "developer", "user", "assistant", "tool", "function"]
FinishReason = Literal["stop", "length", "tool_calls", "content_filter"]


# ---- request ------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class TextPart:
    type: Literal["text"] = "text"
    text: str


@attrs.frozen(kw_only=True)
class ImageURL:
    url: str
    detail: str | None = None


@attrs.frozen(kw_only=True)
class ImagePart:
    type: Literal["image_url"] = "image_url"
    image_url: ImageURL


@attrs.frozen(kw_only=True)
class OtherPart:
    """A content part of a type the gateway does not serve (audio, file, ...): kept so the
    error can name it instead of failing inside the converter."""

    type: str
    raw: dict[str, Any] = attrs.field(factory=dict, eq=False)


ContentPart = TextPart | ImagePart | OtherPart


@attrs.frozen(kw_only=True)
class Message:
    role: Role
    # str, a list of parts, or None (assistant messages that only call tools).
    content: str | tuple[ContentPart, ...] | None = None
    name: str | None = None
    tool_calls: tuple[dict[str, Any], ...] | None = None
    tool_call_id: str | None = None


@attrs.frozen(kw_only=True)
class StreamOptions:
    include_usage: bool = False


@attrs.frozen(kw_only=True)
class ChatCompletionRequest:
    messages: tuple[Message, ...]
    model: str = ""
    stream: bool = False
    stream_options: StreamOptions | None = None
    n: int | None = None
    max_tokens: int | None = None
    max_completion_tokens: int | None = None
    stop: str | tuple[str, ...] | None = None
    user: str | None = None
    reasoning_effort: str | None = None
    tools: tuple[dict[str, Any], ...] | None = None
    tool_choice: str | dict[str, Any] | None = None
    parallel_tool_calls: bool | None = None
    #: The legacy form of ``tools`` and ``tool_choice``.
    functions: tuple[dict[str, Any], ...] | None = None
    function_call: str | dict[str, Any] | None = None
    #: ``{"type": "text" | "json_object" | "json_schema", ...}``; checked by ccproto.tools.
    response_format: dict[str, Any] | None = None
    # Extension: continue this stored conversation (the SDKs send it through extra_body).
    conversation_id: str | None = None
    #: Extension: "full" or "lean" for this request (plan.resolve_profile); the HTTP
    #: surfaces also take it from the ``x-ccserver-profile`` header.
    profile: str | None = None
    # Extensions that may only narrow what the server allows (plan.py enforces it):
    #: a lower --max-turns than the server's.
    max_turns: int | None = None
    #: only these of the server's built-in tools (--tools).
    enabled_tools: tuple[str, ...] | None = None
    #: tools (or patterns such as ``Bash(rm *)``, ``mcp__server``) to deny (--disallowedTools).
    disabled_tools: tuple[str, ...] | None = None


# ---- responses ----------------------------------------------------------------------------
# Fields listed in converter.WIRE_ALWAYS are emitted even when they hold their default
# (None); every other None/default field is left out, as OpenAI does for e.g. tool_calls.


@attrs.frozen(kw_only=True)
class PromptTokensDetails:
    cached_tokens: int = 0


@attrs.frozen(kw_only=True)
class CompletionTokensDetails:
    reasoning_tokens: int = 0


@attrs.frozen(kw_only=True)
class Usage:
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    prompt_tokens_details: PromptTokensDetails = attrs.field(factory=PromptTokensDetails)
    completion_tokens_details: CompletionTokensDetails = attrs.field(
        factory=CompletionTokensDetails
    )


@attrs.frozen(kw_only=True)
class FunctionCall:
    name: str
    arguments: str


@attrs.frozen(kw_only=True)
class ToolCallOut:
    """One call in ``message.tool_calls``."""

    id: str
    type: Literal["function"] = "function"
    function: FunctionCall


@attrs.frozen(kw_only=True)
class FunctionCallDelta:
    name: str | None = None
    arguments: str = ""


@attrs.frozen(kw_only=True)
class ToolCallDeltaOut:
    """One call's piece in ``delta.tool_calls``: the first carries id, type and name."""

    index: int
    id: str | None = None
    type: Literal["function"] | None = None
    function: FunctionCallDelta


@attrs.frozen(kw_only=True)
class Delta:
    role: Literal["assistant"] | None = None
    content: str | None = None
    reasoning_content: str | None = None
    tool_calls: tuple[ToolCallDeltaOut, ...] | None = None


@attrs.frozen(kw_only=True)
class ChunkChoice:
    index: int = 0
    delta: Delta
    logprobs: None = None
    finish_reason: FinishReason | None = None


@attrs.frozen(kw_only=True)
class ChatCompletionChunk:
    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    system_fingerprint: None = None
    choices: tuple[ChunkChoice, ...]
    usage: Usage | None = None
    # Extension: clients read it as chunk.conversation_id (openai-wire.md §1.4).
    conversation_id: str | None = None


@attrs.frozen(kw_only=True)
class ChatMessage:
    role: Literal["assistant"] = "assistant"
    content: str | None
    refusal: None = None
    reasoning_content: str | None = None
    annotations: tuple[Any, ...] = ()
    tool_calls: tuple[ToolCallOut, ...] | None = None


@attrs.frozen(kw_only=True)
class Choice:
    index: int = 0
    message: ChatMessage
    logprobs: None = None
    finish_reason: FinishReason


@attrs.frozen(kw_only=True)
class ChatCompletion:
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    system_fingerprint: None = None
    choices: tuple[Choice, ...]
    usage: Usage
    service_tier: str = "default"
    conversation_id: str | None = None


@attrs.frozen(kw_only=True)
class Model:
    id: str
    object: Literal["model"] = "model"
    created: int = 0
    owned_by: str = "anthropic"


@attrs.frozen(kw_only=True)
class ModelList:
    object: Literal["list"] = "list"
    data: tuple[Model, ...]
