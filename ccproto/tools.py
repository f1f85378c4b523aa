"""Client function tools: an OpenAI request's ``tools`` as the tool list of an in-band MCP
server, and the ``response_format`` that becomes ``--json-schema``.

The CLI offers a client's tools to Claude through an MCP server of ``"type": "sdk"``: the
CLI sends that server's messages as ``control_request`` lines on its stdout and takes the
answers on its stdin (client-tools reference §1.1), so the gateway is the server, with no
extra process and no port. This module decides what that server offers; `ccproto.mcp`
speaks its messages.

What the reference measured and this module therefore does:

* Names reach Claude unchanged with ``CLAUDE_AGENT_SDK_MCP_NO_PREFIX=1`` (§4.1), so the
  tool calls come back under the client's own names.
* A schema without a top-level ``"type": "object"`` makes the CLI drop the whole list, and
  a top-level ``anyOf``/``oneOf``/``allOf`` drops the tool (§4.2): both are normalised.
* Every tool is ``readOnlyHint``: otherwise the CLI calls a message's tools one after the
  other, waiting for each answer, where the client expects them all at once (§3).
* ``anthropic/maxResultSizeChars`` lets a long result reach Claude inline: with Claude
  Code's own tools off it could not read the file the CLI would save it to (§4.3).
* The server's name is a digest of the tool set: a different set is a different process
  (the CLI cannot swap an sdk server's list in place, §6), resumed with the same session.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from .errors import InvalidRequestError
from .jsonbody import excerpt

__all__ = [
    "ClientTool",
    "JsonSchemaFormat",
    "ToolSet",
    "client_tools",
    "normalize_schema",
    "output_format",
]

# OpenAI's rule for function names (CreateChatCompletionRequest, FunctionObject.name).
_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
#: The largest tool result Claude gets inline (the CLI's own cap, reference §4.3).
MAX_RESULT_CHARS = 500_000
_SCHEMA_COMBINERS = ("anyOf", "oneOf", "allOf")


@attrs.frozen(kw_only=True)
class ClientTool:
    """One function the client runs itself."""

    name: str
    description: str
    #: The JSON schema of the arguments, normalised for the CLI (`normalize_schema`).
    parameters: Mapping[str, Any] = attrs.field(eq=False)
    #: "function", or "custom" (a Responses free-form tool: its one argument is ``input``).
    kind: str = "function"

    def mcp(self) -> dict[str, Any]:
        """The tool as the in-band MCP server lists it (``tools/list``)."""
        return {
            "name": self.name,
            "description": self.description,
            "inputSchema": dict(self.parameters),
            "annotations": {"readOnlyHint": True},
            "_meta": {"anthropic/maxResultSizeChars": MAX_RESULT_CHARS},
        }


@attrs.frozen(kw_only=True)
class ToolSet:
    """The client tools one request offers, and how it asked them to be used."""

    tools: tuple[ClientTool, ...]
    #: "auto", "required", or the one function's name the client named.
    choice: str = "auto"
    parallel: bool = True

    @property
    def names(self) -> frozenset[str]:
        return frozenset(tool.name for tool in self.tools)

    @property
    def server_name(self) -> str:
        """The MCP server's name: a digest of what Claude is offered."""
        listed = [[t.name, t.description, t.parameters, t.kind] for t in self.tools]
        encoded = json.dumps(listed, sort_keys=True, separators=(",", ":"))
        return "c" + hashlib.sha256(encoded.encode()).hexdigest()[:12]

    def mcp_tools(self) -> list[dict[str, Any]]:
        return [tool.mcp() for tool in self.tools]

    def kind_of(self, name: str) -> str:
        return next((t.kind for t in self.tools if t.name == name), "function")


@attrs.frozen(kw_only=True)
class JsonSchemaFormat:
    """A ``response_format`` (or Responses ``text.format``) asking for a JSON object."""

    schema: Mapping[str, Any] = attrs.field(eq=False)
    name: str = "response"

    def flag(self) -> str:
        """The ``--json-schema`` value: compact, keys sorted, so one schema is one process."""
        return json.dumps(self.schema, sort_keys=True, separators=(",", ":"),
                          ensure_ascii=False)


def normalize_schema(schema: Any) -> dict[str, Any]:
    """A parameters schema the CLI accepts (reference §4.2).

    The top level must be ``"type": "object"``; a top-level ``anyOf``/``oneOf``/``allOf``
    is merged into one object whose properties are every branch's. Its required names are
    the top level's, every ``allOf`` branch's (all of them hold), and those every
    ``anyOf``/``oneOf`` branch requires (any one may be the one). Below the top level
    nothing changes.
    """
    if not isinstance(schema, Mapping):
        return {"type": "object", "properties": {}}
    out = dict(schema)
    branches = {key: [normalize_schema(b) for b in _as_list(out.pop(key, None))]
                for key in _SCHEMA_COMBINERS}
    if any(branches.values()):
        properties = dict(out.get("properties") or {})
        required = set(out.get("required") or ())
        for key, flats in branches.items():
            for flat in flats:
                properties.update(flat.get("properties") or {})
            names = [set(flat.get("required") or ()) for flat in flats]
            if names:
                required |= set.union(*names) if key == "allOf" else set.intersection(*names)
        out["properties"] = properties
        if required:
            out["required"] = sorted(required)
        else:
            out.pop("required", None)
    out["type"] = "object"
    if not isinstance(out.get("properties"), Mapping):
        out["properties"] = {}
    return out


def _as_list(value: Any) -> list[Any]:
    return [v for v in value if isinstance(v, Mapping)] if isinstance(value, list) else []


def _bad(message: str, param: str) -> InvalidRequestError:
    return InvalidRequestError(message, param=param)


def _function_tool(raw: Any, param: str) -> ClientTool:
    if not isinstance(raw, Mapping):
        raise _bad(f"Invalid type for '{param}': expected an object.", param)
    kind = raw.get("type", "function")
    if kind == "function":
        # Chat nests the function; the Responses API does not.
        fn = raw.get("function") if "function" in raw else raw
        where = f"{param}.function" if "function" in raw else param
        if not isinstance(fn, Mapping):
            raise _bad(f"Invalid type for '{where}': expected an object.", where)
        return _tool(fn, where, "function")
    if kind == "custom":
        custom = raw.get("custom") if "custom" in raw else raw
        where = f"{param}.custom" if "custom" in raw else param
        if not isinstance(custom, Mapping):
            raise _bad(f"Invalid type for '{where}': expected an object.", where)
        # A free-form tool takes one string; Claude gets it as a property, and the
        # client gets the string back as the call's input.
        schema = {"type": "object", "properties": {"input": {
            "type": "string", "description": _custom_input_note(custom)}},
            "required": ["input"]}
        return _tool({**custom, "parameters": schema}, where, "custom")
    raise InvalidRequestError(
        f"Invalid value for '{param}.type': tools of type {excerpt(str(kind))} are not "
        "supported; use 'function'.", param=f"{param}.type", code="unsupported_parameter")


def _custom_input_note(custom: Mapping[str, Any]) -> str:
    fmt = custom.get("format")
    if isinstance(fmt, Mapping) and fmt.get("type") == "grammar":
        definition = fmt.get("definition")
        syntax = fmt.get("syntax", "lark")
        if isinstance(definition, str):
            return f"The raw input, which must match this {syntax} grammar:\n{definition}"
    return "The raw input for the tool, as free-form text."


def _tool(fn: Mapping[str, Any], param: str, kind: str) -> ClientTool:
    name = fn.get("name")
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise _bad(f"Invalid '{param}.name': {excerpt(str(name))}. Expected a string that "
                   "matches the pattern '^[a-zA-Z0-9_-]+$' of at most 64 characters.",
                   f"{param}.name")
    description = fn.get("description") or ""
    if not isinstance(description, str):
        raise _bad(f"Invalid type for '{param}.description': expected a string.",
                   f"{param}.description")
    parameters = fn.get("parameters")
    if parameters is not None and not isinstance(parameters, Mapping):
        raise _bad(f"Invalid type for '{param}.parameters': expected an object.",
                   f"{param}.parameters")
    return ClientTool(name=name, description=description,
                      parameters=normalize_schema(parameters), kind=kind)


def client_tools(
    tools: Sequence[Any] | None,
    tool_choice: Any = None,
    *,
    parallel: bool | None = None,
    functions: Sequence[Any] | None = None,
    function_call: Any = None,
) -> ToolSet | None:
    """The request's client tools, or None when it offers none for this turn.

    Accepts Chat's ``tools`` (``{"type": "function", "function": {...}}``), the Responses
    API's flat ones and ``custom`` tools, and the legacy ``functions``/``function_call``.
    ``tool_choice: "none"`` offers none: the CLI has no way to list tools it must not use.

    Raises:
        InvalidRequestError: a malformed tool, a duplicate name, or a ``tool_choice`` that
            names no offered function.
    """
    param = "tools"
    listed: list[ClientTool] = []
    if functions and not tools:
        param = "functions"
        listed = [_tool(f, f"functions[{i}]", "function") if isinstance(f, Mapping)
                  else _tool({}, f"functions[{i}]", "function")
                  for i, f in enumerate(functions)]
        tool_choice = _legacy_choice(function_call) if tool_choice is None else tool_choice
    else:
        listed = [_function_tool(t, f"tools[{i}]") for i, t in enumerate(tools or ())]
    seen: set[str] = set()
    for i, tool in enumerate(listed):
        if tool.name in seen:
            raise _bad(f"Duplicate tool name {excerpt(tool.name)} in '{param}'.",
                       f"{param}[{i}].name")
        seen.add(tool.name)
    choice = _choice(tool_choice, seen)
    if choice == "none" or not listed:
        return None
    return ToolSet(tools=tuple(listed), choice=choice, parallel=parallel is not False)


def _legacy_choice(function_call: Any) -> Any:
    if isinstance(function_call, Mapping):
        return {"type": "function", "function": {"name": function_call.get("name")}}
    return function_call


def _choice(tool_choice: Any, names: set[str]) -> str:
    if tool_choice is None:
        return "auto"
    if isinstance(tool_choice, str):
        if tool_choice in ("auto", "none", "required"):
            return tool_choice
        raise InvalidRequestError(
            f"Invalid value for 'tool_choice': {excerpt(tool_choice)}. Supported values are: "
            "'none', 'auto' and 'required', or an object naming a function.",
            param="tool_choice")
    if isinstance(tool_choice, Mapping):
        kind = tool_choice.get("type")
        fn = tool_choice.get("function")
        name = fn.get("name") if isinstance(fn, Mapping) else tool_choice.get("name")
        if kind in ("function", "custom") and isinstance(name, str):
            if name not in names:
                raise InvalidRequestError(
                    f"Invalid value for 'tool_choice': the function {excerpt(name)} is not "
                    "among the request's tools.", param="tool_choice")
            return name
        if kind == "allowed_tools":
            mode = tool_choice.get("mode", "auto")
            return "required" if mode == "required" else "auto"
        if kind in ("auto", "none", "required"):
            return str(kind)
    raise InvalidRequestError("Invalid type for 'tool_choice': expected 'none', 'auto', "
                              "'required' or an object naming a function.",
                              param="tool_choice", code="invalid_type")


def output_format(response_format: Any, param: str = "response_format"
                  ) -> JsonSchemaFormat | None:
    """The JSON object a ``response_format`` asks for, or None for plain text.

    ``json_object`` is any object: the CLI's structured output with ``{"type": "object"}``.

    Raises:
        InvalidRequestError: an unknown type, or a ``json_schema`` without a schema object.
    """
    if response_format is None:
        return None
    if not isinstance(response_format, Mapping):
        raise InvalidRequestError(f"Invalid type for '{param}': expected an object.",
                                  param=param, code="invalid_type")
    kind = response_format.get("type")
    if kind in ("text", None):
        return None
    if kind == "json_object":
        return JsonSchemaFormat(schema={"type": "object"}, name="json_object")
    if kind == "json_schema":
        # Chat nests it under "json_schema"; Responses' text.format is flat.
        spec = response_format.get("json_schema", response_format)
        where = f"{param}.json_schema" if "json_schema" in response_format else param
        if spec is response_format and "schema" not in spec and param == "response_format":
            # Chat's form is nested: that is what is missing (Responses' is flat).
            raise InvalidRequestError(f"Missing required parameter: '{param}.json_schema'.",
                                      param=f"{param}.json_schema",
                                      code="missing_required_parameter")
        if not isinstance(spec, Mapping) or not isinstance(spec.get("schema"), Mapping):
            raise InvalidRequestError(f"Missing required parameter: '{where}.schema'.",
                                      param=f"{where}.schema", code="missing_required_parameter")
        name = spec.get("name")
        return JsonSchemaFormat(schema=normalize_schema(spec["schema"]),
                                name=name if isinstance(name, str) else "response")
    raise InvalidRequestError(
        f"Invalid value for '{param}.type': {excerpt(str(kind))}. Supported values are: "
        "'text', 'json_object' and 'json_schema'.", param=f"{param}.type")
