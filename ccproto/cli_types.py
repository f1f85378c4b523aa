"""The records Claude Code prints in ``--output-format stream-json`` mode, as frozen values.

One record per stdout line (protocol reference §2.3-2.5). Parsing is deliberately by
hand and lenient: the CLI adds fields between versions, so only the fields the gateway
reads are lifted out, the rest stay in ``raw``, and a record of a type this module does
not know becomes `UnknownRecord` rather than an error. Like h11's events, the classes are
never subclassed, so callers dispatch on ``type(record)``.
"""

from __future__ import annotations

from typing import Any

import attrs

__all__ = [
    "SYNTHETIC_MODEL",
    "AssistantMessage",
    "ControlRequest",
    "ControlResponse",
    "Exit",
    "NonJSONLine",
    "Record",
    "Result",
    "StreamEvent",
    "SystemEvent",
    "SystemInit",
    "UnknownRecord",
    "UserMessage",
    "parse_record",
]

# `assistant` lines whose message.model is this carry the CLI's own error text, not the
# model's words (reference §2.4); they must never reach the client as content.
SYNTHETIC_MODEL = "<synthetic>"


@attrs.frozen(kw_only=True)
class SystemInit:
    """``system/init``: first line of every turn; carries the session id."""

    session_id: str | None
    model: str | None
    cwd: str | None
    tools: tuple[str, ...]
    raw: dict[str, Any] = attrs.field(eq=False, repr=False)


@attrs.frozen(kw_only=True)
class SystemEvent:
    """Any other ``system`` line: status, api_retry, thinking_tokens, model_fallback, task_*."""

    subtype: str
    parent_tool_use_id: str | None
    raw: dict[str, Any] = attrs.field(eq=False, repr=False)


@attrs.frozen(kw_only=True)
class StreamEvent:
    """``stream_event``: one raw Anthropic SSE event (``--include-partial-messages``)."""

    event: dict[str, Any]
    parent_tool_use_id: str | None


@attrs.frozen(kw_only=True)
class AssistantMessage:
    """``assistant``: one complete content block of an API response, at block end."""

    message_id: str | None
    model: str | None
    content: tuple[dict[str, Any], ...]
    parent_tool_use_id: str | None
    error: str | None
    #: Its line's id in the session transcript.
    uuid: str | None = None


@attrs.frozen(kw_only=True)
class UserMessage:
    """``user``: tool results, interrupt markers, or replayed input."""

    content: Any
    parent_tool_use_id: str | None
    is_replay: bool


@attrs.frozen(kw_only=True)
class Result:
    """``result``: exactly one per turn. Failure is ``is_error``, never ``subtype`` alone:
    API errors arrive as subtype ``success`` with ``is_error: true`` (reference §2.6)."""

    subtype: str
    is_error: bool
    api_error_status: int | None
    result: str | None
    stop_reason: str | None
    session_id: str | None
    usage: dict[str, Any]
    total_cost_usd: float | None
    num_turns: int | None
    errors: tuple[str, ...]
    raw: dict[str, Any] = attrs.field(eq=False, repr=False)


@attrs.frozen(kw_only=True)
class ControlResponse:
    """``control_response``: the answer to a stdin ``control_request`` (reference §6.4)."""

    request_id: str | None
    subtype: str | None
    raw: dict[str, Any] = attrs.field(eq=False, repr=False)


@attrs.frozen(kw_only=True)
class ControlRequest:
    """``control_request`` from the CLI: a question only the gateway can answer, such as
    an in-band MCP server's message (client-tools reference §1.1). The CLI waits for the
    ``control_response`` on stdin."""

    request_id: str
    subtype: str | None
    #: The ``request`` object (``subtype``, ``server_name``, ``message`` ...).
    request: dict[str, Any] = attrs.field(eq=False, repr=False)


@attrs.frozen(kw_only=True)
class UnknownRecord:
    """A JSON line of a type this version of ccproto does not know; kept, not fatal."""

    type: str
    raw: dict[str, Any] = attrs.field(eq=False, repr=False)


@attrs.frozen(kw_only=True)
class NonJSONLine:
    """A stdout line that is not a JSON object (a stray warning from a dependency)."""

    text: str


@attrs.frozen(kw_only=True)
class Exit:
    """The process ended; produced by `CLIStream` after the last line, never parsed."""

    returncode: int
    stderr_tail: str


Record = (
    SystemInit
    | SystemEvent
    | StreamEvent
    | AssistantMessage
    | UserMessage
    | Result
    | ControlResponse
    | ControlRequest
    | UnknownRecord
    | NonJSONLine
)


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _dicts(value: Any) -> tuple[dict[str, Any], ...]:
    return tuple(v for v in value if isinstance(v, dict)) if isinstance(value, list) else ()


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _system(obj: dict[str, Any]) -> Record:
    subtype = _str(obj.get("subtype")) or ""
    if subtype == "init":
        tools = obj.get("tools")
        return SystemInit(
            session_id=_str(obj.get("session_id")),
            model=_str(obj.get("model")),
            cwd=_str(obj.get("cwd")),
            tools=tuple(t for t in tools if isinstance(t, str)) if isinstance(tools, list) else (),
            raw=obj,
        )
    return SystemEvent(
        subtype=subtype, parent_tool_use_id=_str(obj.get("parent_tool_use_id")), raw=obj
    )


def _stream_event(obj: dict[str, Any]) -> Record:
    return StreamEvent(
        event=_dict(obj.get("event")), parent_tool_use_id=_str(obj.get("parent_tool_use_id"))
    )


def _assistant(obj: dict[str, Any]) -> Record:
    message = _dict(obj.get("message"))
    return AssistantMessage(
        message_id=_str(message.get("id")),
        model=_str(message.get("model")),
        content=_dicts(message.get("content")),
        parent_tool_use_id=_str(obj.get("parent_tool_use_id")),
        error=_str(obj.get("error")),
        uuid=_str(obj.get("uuid")),
    )


def _user(obj: dict[str, Any]) -> Record:
    return UserMessage(
        content=_dict(obj.get("message")).get("content"),
        parent_tool_use_id=_str(obj.get("parent_tool_use_id")),
        is_replay=obj.get("isReplay") is True,
    )


def _result(obj: dict[str, Any]) -> Record:
    errors = obj.get("errors")
    cost = obj.get("total_cost_usd")
    return Result(
        subtype=_str(obj.get("subtype")) or "",
        is_error=obj.get("is_error") is True,
        api_error_status=_int(obj.get("api_error_status")),
        result=_str(obj.get("result")),
        stop_reason=_str(obj.get("stop_reason")),
        session_id=_str(obj.get("session_id")),
        usage=_dict(obj.get("usage")),
        total_cost_usd=float(cost) if isinstance(cost, int | float) else None,
        num_turns=_int(obj.get("num_turns")),
        errors=tuple(e for e in errors if isinstance(e, str)) if isinstance(errors, list) else (),
        raw=obj,
    )


def _control_response(obj: dict[str, Any]) -> Record:
    response = _dict(obj.get("response"))
    return ControlResponse(
        request_id=_str(response.get("request_id")), subtype=_str(response.get("subtype")), raw=obj
    )


def _control_request(obj: dict[str, Any]) -> Record:
    request = _dict(obj.get("request"))
    request_id = _str(obj.get("request_id"))
    if request_id is None:
        return UnknownRecord(type="control_request", raw=obj)
    return ControlRequest(request_id=request_id, subtype=_str(request.get("subtype")),
                          request=request)


_PARSERS = {
    "system": _system,
    "stream_event": _stream_event,
    "assistant": _assistant,
    "user": _user,
    "result": _result,
    "control_response": _control_response,
    "control_request": _control_request,
}


def parse_record(obj: Any) -> Record:
    """Turn one decoded stdout line into a record; never raises for odd input."""
    if not isinstance(obj, dict):
        return UnknownRecord(type="", raw={"value": obj})
    kind = obj.get("type")
    parser = _PARSERS.get(kind) if isinstance(kind, str) else None
    if parser is None:
        return UnknownRecord(type=kind if isinstance(kind, str) else "", raw=obj)
    return parser(obj)
