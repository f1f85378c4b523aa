"""The tools of a Responses request: which the client runs itself, and which are dropped.

A Responses request lists the client's own tools (flat ``function`` tools and free-form
``custom`` ones) next to hosted tools that OpenAI runs on its side (``web_search``,
``file_search``, ``code_interpreter``, ``mcp`` ...) and Codex CLI's ``namespace`` groups.
The gateway has nothing to run a hosted tool with, and Claude Code brings its own, so
those are dropped rather than refused: agents such as Codex send ``web_search`` with every
request, and a 400 would make the gateway unusable for them. The server says which were
dropped (a response header and a log line); this module only decides.

The client's tools are checked here, with `ccproto.tools.client_tools`, so an error names
the tool as the client numbered it (``tools[3].name``), hosted tools included.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from .errors import InvalidRequestError
from .tools import client_tools, output_format

__all__ = ["ResponsesTools", "responses_tools", "text_format"]

#: Tools the client runs itself; every other type is a hosted tool, dropped.
CLIENT_TOOL_TYPES = ("function", "custom")
# tool_choice objects that name one of the client's tools, or constrain them.
_CHOICE_TYPES = ("function", "custom", "allowed_tools")
_INDEX = re.compile(r"^tools\[(\d+)\]")


@attrs.frozen(kw_only=True)
class ResponsesTools:
    """The tool fields of a Responses request, as the chat request gets them."""

    #: The client's function and custom tools, as it sent them.
    tools: tuple[dict[str, Any], ...] = ()
    #: What was dropped, ``type`` or ``type:name`` (``namespace:multi_agent_v1``).
    dropped: tuple[str, ...] = ()
    tool_choice: str | dict[str, Any] | None = None
    parallel_tool_calls: bool | None = None


def _label(tool: Mapping[str, Any]) -> str:
    kind = tool.get("type")
    kind = kind if isinstance(kind, str) else "unknown"
    name = tool.get("name", tool.get("server_label"))
    # Only a name the client chose helps an operator; types are printable as they are.
    label = f"{kind}:{name}" if isinstance(name, str) and name else kind
    return re.sub(r"[^A-Za-z0-9_.:-]", "_", label)[:64]


def _inner_names(tool: Mapping[str, Any]) -> set[str]:
    inner = tool.get("tools")
    if not isinstance(inner, list):
        return set()
    return {t["name"] for t in inner if isinstance(t, Mapping) and isinstance(t.get("name"), str)}


def _renumbered(exc: InvalidRequestError, positions: Sequence[int]) -> InvalidRequestError:
    """``exc`` naming the tool by the client's index (hosted tools counted)."""
    match = _INDEX.match(exc.param or "")
    if match is None or int(match.group(1)) >= len(positions):
        return exc
    theirs = f"tools[{positions[int(match.group(1))]}]"
    ours = match.group(0)
    return InvalidRequestError(exc.message.replace(f"'{ours}", f"'{theirs}"),
                               param=theirs + (exc.param or "")[len(ours):], code=exc.code)


def responses_tools(data: Mapping[str, Any]) -> ResponsesTools:
    """The ``tools``, ``tool_choice`` and ``parallel_tool_calls`` of a Responses body.

    A ``tool_choice`` that picks a hosted tool (``{"type": "web_search_preview"}``,
    ``{"type": "mcp", ...}``) or a function of a dropped namespace is dropped with it: the
    model chooses among what it has.

    Raises:
        InvalidRequestError: ``tools`` is not a list of objects, a client tool is malformed,
            or ``tool_choice`` / ``parallel_tool_calls`` has the wrong shape.
    """
    raw = data.get("tools")
    if raw is None:
        raw = []
    if not isinstance(raw, list):
        raise InvalidRequestError("Invalid type for 'tools': expected an array of tools.",
                                  param="tools", code="invalid_type")
    kept: list[dict[str, Any]] = []
    positions: list[int] = []
    dropped: list[str] = []
    hidden: set[str] = set()
    for i, tool in enumerate(raw):
        if not isinstance(tool, dict):
            raise InvalidRequestError(f"Invalid type for 'tools[{i}]': expected an object.",
                                      param=f"tools[{i}]", code="invalid_type")
        # No type is a function, as on chat (ccproto.tools).
        if tool.get("type", "function") in CLIENT_TOOL_TYPES:
            kept.append(tool)
            positions.append(i)
        else:
            dropped.append(_label(tool))
            hidden |= _inner_names(tool)
    choice = data.get("tool_choice")
    if isinstance(choice, Mapping):
        named = choice.get("name")
        if choice.get("type") not in _CHOICE_TYPES or (
                isinstance(named, str) and named in hidden
                and not any(t.get("name") == named for t in kept)):
            choice = None
    parallel = data.get("parallel_tool_calls")
    if parallel is not None and not isinstance(parallel, bool):
        raise InvalidRequestError("Invalid type for 'parallel_tool_calls': expected a boolean.",
                                  param="parallel_tool_calls", code="invalid_type")
    try:
        client_tools(kept, choice, parallel=parallel)
    except InvalidRequestError as exc:
        raise _renumbered(exc, positions) from None
    return ResponsesTools(tools=tuple(kept), dropped=tuple(dropped),
                          tool_choice=choice if isinstance(choice, str | dict) else None,
                          parallel_tool_calls=parallel)


def text_format(text: Any) -> dict[str, Any] | None:
    """``text.format`` as the chat request's ``response_format``, or None for plain text.

    The flat Responses shape (``{"type": "json_schema", "name", "schema", "strict"}``) is
    what `ccproto.tools.output_format` reads too; ``text.verbosity`` is ignored.

    Raises:
        InvalidRequestError: ``text`` or its ``format`` has the wrong shape.
    """
    if text is None:
        return None
    if not isinstance(text, Mapping):
        raise InvalidRequestError("Invalid type for 'text': expected an object.",
                                  param="text", code="invalid_type")
    fmt = text.get("format")
    if output_format(fmt, "text.format") is None:
        return None
    assert isinstance(fmt, dict)  # output_format accepted it: an object
    if fmt.get("type") == "json_schema" and not isinstance(fmt.get("name"), str):
        # The Response object echoes the format, and its schema requires a name.
        fmt = {**fmt, "name": "response"}
    return fmt

