"""Requests of the OpenAI Responses API, structured and turned into Chat Completions requests
(openai-wire.md §2.1, openai-clients.md §1.11).

A Responses request is structured by hand rather than by the cattrs converter: ``input``
is a string or a list of differently shaped items, and an error must name the item and part
at fault (``input[2].content[0].image_url``). Its messages become chat `Message` values and
``instructions`` a system message; the rest of the pipeline (plan, conversation, CLI run)
is the one Chat Completions uses. Unknown fields are ignored, as for chat (``include``,
``prompt_cache_key``, ``client_metadata``, ``reasoning.summary``, ``text.verbosity``).

Client tool calls come back as items: ``function_call`` (and ``custom_tool_call``) items
become the tool calls of an assistant message, joining the assistant message item just
before them, and ``function_call_output`` items become ``tool`` messages. They are built
exactly as a chat client would send the same exchange (call ids, names, arguments), so a
client that resends its whole history (``store: false``, as Codex does) continues its
conversation by the same history fingerprint as over chat (`ccproto.history`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import attrs

from .errors import InvalidRequestError
from .jsonbody import excerpt, load_object
from .openai_types import (
    ChatCompletionRequest,
    ContentPart,
    ImagePart,
    ImageURL,
    Message,
    TextPart,
)
from .params import RESPONSES_LIMITS, check_limits, check_metadata
from .responses_tools import responses_tools, text_format

__all__ = ["ResponsesRequest", "chat_request", "structure_responses_request"]

_ROLES = ("user", "assistant", "system", "developer")
# Parts a message may carry as text: clients replaying earlier output send it back as
# output_text (and refusal) parts of assistant messages.
_TEXT_PARTS = ("input_text", "output_text", "text")


@attrs.frozen(kw_only=True)
class ResponsesRequest:
    """The fields of ``POST /v1/responses`` the gateway reads; all others are ignored."""

    input: tuple[Message, ...]
    model: str = ""
    instructions: str | None = None
    stream: bool = False
    previous_response_id: str | None = None
    #: ``conversation`` (a string or ``{"id": ...}``): one of ours, ``conv_...``.
    conversation: str | None = None
    store: bool = True
    metadata: Mapping[str, str] = attrs.field(factory=dict)
    reasoning_effort: str | None = None
    #: The client's own tools (function and custom), as it sent them.
    tools: tuple[dict[str, Any], ...] = ()
    #: Hosted tools the gateway cannot run, dropped: ``type`` or ``type:name``.
    dropped_tools: tuple[str, ...] = ()
    tool_choice: str | dict[str, Any] | None = None
    parallel_tool_calls: bool | None = None
    #: ``text.format`` when it asks for JSON (the chat request's ``response_format``).
    text_format: dict[str, Any] | None = None
    #: WebSocket mode's lane; every event of the response echoes it.
    stream_id: str | None = None


def _invalid(param: str, problem: str, code: str | None = None) -> InvalidRequestError:
    return InvalidRequestError(f"Invalid value for '{param}': {problem}", param=param, code=code)


def _optional(data: Mapping[str, Any], key: str, kind: type, label: str) -> Any:
    value = data.get(key)
    # bool is an int subclass, but a boolean where a number belongs is a client bug.
    if value is not None and (not isinstance(value, kind) or
                              (kind is not bool and isinstance(value, bool))):
        raise _invalid(key, f"expected {label}, got {type(value).__name__}")
    return value


def _shown(kind: Any) -> str:
    # The client's value, quoted short: an error never echoes a whole field back.
    return excerpt(kind) if isinstance(kind, str) else excerpt(repr(kind))


def _part(part: Any, at: str) -> ContentPart:
    if not isinstance(part, dict):
        raise _invalid(at, "expected a content part object")
    kind = part.get("type")
    if kind in _TEXT_PARTS or kind == "refusal":
        key = "refusal" if kind == "refusal" else "text"
        if not isinstance(part.get(key), str):
            raise _invalid(f"{at}.{key}", "expected a string")
        return TextPart(text=part[key])
    if kind == "input_image":
        url = part.get("image_url")
        if isinstance(url, dict):  # the chat shape, {"url": ...}, sent by mistake
            url = url.get("url")
        if not isinstance(url, str):
            problem = ("images by file_id are not supported; send image_url (an http(s) or "
                       "data URL)" if part.get("file_id") else "expected a string URL")
            raise _invalid(f"{at}.image_url", problem, "unsupported_content")
        detail = part.get("detail")
        return ImagePart(image_url=ImageURL(url=url, detail=detail
                                            if isinstance(detail, str) else None))
    raise InvalidRequestError(
        f"Content parts of type {_shown(kind)} are not supported; use input_text or input_image",
        param=f"{at}.type", code="unsupported_content")


def _message(item: dict[str, Any], where: str) -> Message:
    kind = item.get("type", "message")
    if kind != "message":
        raise InvalidRequestError(
            f"Input items of type {_shown(kind)} are not supported; use message, "
            "function_call or function_call_output items", param=f"{where}.type",
            code="unsupported_input_item")
    role = item.get("role")
    if role not in _ROLES:
        raise _invalid(f"{where}.role", f"must be one of {', '.join(_ROLES)}")
    content = item.get("content")
    if isinstance(content, str):
        return Message(role=role, content=content)
    if not isinstance(content, list):
        raise _invalid(f"{where}.content", "expected a string or a list of content parts")
    parts = tuple(_part(p, f"{where}.content[{j}]") for j, p in enumerate(content))
    return Message(role=role, content=parts)


def _string(item: Mapping[str, Any], key: str, where: str) -> str:
    value = item.get(key)
    if not isinstance(value, str):
        raise InvalidRequestError(f"Missing required parameter: '{where}.{key}' (a string).",
                                  param=f"{where}.{key}", code="missing_required_parameter")
    return value


def _tool_call(item: Mapping[str, Any], where: str) -> dict[str, Any]:
    """A ``function_call`` or ``custom_tool_call`` item as a chat tool call."""
    call_id, name = _string(item, "call_id", where), _string(item, "name", where)
    if item["type"] == "custom_tool_call":
        # A custom tool's one argument is "input" (ccproto.tools): the arguments Claude
        # wrote for it, compared as JSON by the history fingerprint.
        arguments = json.dumps({"input": _string(item, "input", where)}, ensure_ascii=False)
    else:
        arguments = _string(item, "arguments", where)
    return {"id": call_id, "type": "function",
            "function": {"name": name, "arguments": arguments}}


def _tool_output(item: Mapping[str, Any], where: str) -> Message:
    """A ``function_call_output`` or ``custom_tool_call_output`` item as a tool message."""
    call_id = _string(item, "call_id", where)
    output = item.get("output")
    if isinstance(output, str):
        return Message(role="tool", tool_call_id=call_id, content=output)
    if not isinstance(output, list):
        raise _invalid(f"{where}.output", "expected a string or a list of content parts")
    parts = tuple(_part(p, f"{where}.output[{j}]") for j, p in enumerate(output))
    return Message(role="tool", tool_call_id=call_id, content=parts)


_CALL_ITEMS = ("function_call", "custom_tool_call")
_OUTPUT_ITEMS = ("function_call_output", "custom_tool_call_output")


def _input(value: Any) -> tuple[Message, ...]:
    if isinstance(value, str):
        return (Message(role="user", content=value),)
    if not isinstance(value, list) or not value:
        raise _invalid("input", "expected a string or a non-empty list of input items")
    messages: list[Message] = []
    # Whether the last message is an assistant's that a function_call item joins: the
    # calls of one answer are one chat message, as the fingerprint recorded them.
    joinable = False
    for i, item in enumerate(value):
        where = f"input[{i}]"
        if not isinstance(item, dict):
            raise _invalid(where, "expected an input item object")
        kind = item.get("type", "message")
        if kind == "reasoning":
            # Clients replaying a whole exchange (Codex with store=false) send reasoning
            # items back; Claude's thinking cannot be replayed into a session, so they are
            # skipped (and do not part an answer's text from its calls).
            continue
        if kind in _CALL_ITEMS:
            call = _tool_call(item, where)
            if joinable:
                last = messages[-1]
                messages[-1] = attrs.evolve(last, tool_calls=(*(last.tool_calls or ()), call))
            else:
                messages.append(Message(role="assistant", content=None, tool_calls=(call,)))
                joinable = True
        elif kind in _OUTPUT_ITEMS:
            messages.append(_tool_output(item, where))
            joinable = False
        else:
            message = _message(item, where)
            messages.append(message)
            joinable = message.role == "assistant"
    return tuple(messages)


def _conversation(value: Any) -> str | None:
    if isinstance(value, dict):
        value = value.get("id")
    if value is not None and not isinstance(value, str):
        raise _invalid("conversation", 'expected a string or {"id": string}')
    return value or None


def _effort(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise _invalid("reasoning", "expected an object")
    effort = _optional(value, "effort", str, "a string")
    # "none" asks for no extra thinking: the CLI's default.
    return None if effort == "none" else effort


def structure_responses_request(body: bytes | str | Mapping[str, Any]) -> ResponsesRequest:
    """Validate a ``POST /v1/responses`` body (or a ``response.create`` frame, which the
    socket decoded with `load_object`).

    Raises:
        InvalidRequestError: not a JSON object, a field of the wrong shape, or an input
            item or content part the gateway cannot serve; ``param`` names it
            (``input[1].content[0].type``).
    """
    data = load_object(body) if isinstance(body, bytes | str) else body
    if not isinstance(data, Mapping):
        raise InvalidRequestError("Request body must be a JSON object")
    check_limits(data, RESPONSES_LIMITS)
    if "input" not in data or data["input"] is None:
        raise InvalidRequestError("'input' is required", param="input")
    tools = responses_tools(data)
    return ResponsesRequest(
        input=_input(data["input"]),
        model=_optional(data, "model", str, "a string") or "",
        instructions=_optional(data, "instructions", str, "a string"),
        stream=bool(_optional(data, "stream", bool, "a boolean")),
        previous_response_id=_optional(data, "previous_response_id", str, "a string") or None,
        conversation=_conversation(data.get("conversation")),
        store=_optional(data, "store", bool, "a boolean") is not False,
        metadata=check_metadata(data.get("metadata")),
        reasoning_effort=_effort(data.get("reasoning")),
        tools=tools.tools,
        dropped_tools=tools.dropped,
        tool_choice=tools.tool_choice,
        parallel_tool_calls=tools.parallel_tool_calls,
        text_format=text_format(data.get("text")),
        stream_id=_optional(data, "stream_id", str, "a string"),
    )


def chat_request(request: ResponsesRequest) -> ChatCompletionRequest:
    """The Chat Completions request that runs ``request``'s turn.

    A request that continues a response (``previous_response_id``) or a ``conversation``
    sends only its new turn: the CLI session holds the earlier ones. An input holding more
    than one turn then would lose all but the last, so it is refused.
    """
    messages = list(request.input)
    if request.previous_response_id and request.conversation:
        raise InvalidRequestError("previous_response_id and conversation cannot be used "
                                  "together", param="previous_response_id")
    if request.previous_response_id or request.conversation:
        turns = [m for m in messages if m.role not in ("system", "developer")]
        # Tool results answer the held calls together: they are one new turn.
        if len(turns) > 1 and any(m.role != "tool" for m in turns):
            field = "previous_response_id" if request.previous_response_id else "conversation"
            raise InvalidRequestError(
                f"With {field}, 'input' must hold only the new user message ({len(turns)} "
                "messages given): the earlier turns are already in the conversation",
                param="input")
    if request.instructions:
        messages.insert(0, Message(role="system", content=request.instructions))
    return ChatCompletionRequest(
        messages=tuple(messages),
        model=request.model,
        stream=request.stream,
        reasoning_effort=request.reasoning_effort,
        tools=request.tools or None,
        tool_choice=request.tool_choice,
        parallel_tool_calls=request.parallel_tool_calls,
        response_format=request.text_format,
    )
