"""One cattrs converter for the OpenAI wire: tolerant on input, exact on output.

Input: unknown keys are ignored, content may be a string, null or a list of parts, and
scalars are checked strictly (cattrs' defaults would turn ``"false"`` into True and ``2.7``
into 2). Errors become `InvalidRequestError` naming the field, e.g. ``messages[0].role``.
Output: every field is written, except the optional ones in `_OMIT_WHEN_NONE`, which
OpenAI leaves out rather than sending null (clients choke on ``tool_calls: null``).
"""

from __future__ import annotations

import json
import re
from typing import Any, Literal, TypeVar, get_args, get_origin

import attrs
import cattrs
from cattrs.errors import IterableValidationError, IterableValidationNote
from cattrs.gen import make_dict_unstructure_fn, override
from cattrs.preconf.json import JsonConverter
from cattrs.preconf.json import make_converter as _make_json_converter

from .errors import InvalidRequestError
from .jsonbody import load_object
from .openai_types import (
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionRequest,
    ChatMessage,
    ContentPart,
    Delta,
    FunctionCallDelta,
    ImagePart,
    OtherPart,
    TextPart,
    ToolCallDeltaOut,
)
from .params import CHAT_LIMITS, check_limits

__all__ = ["dumps", "make_converter", "structure_request"]

T = TypeVar("T")

# Optional response fields that are left out when None instead of being sent as null.
# Inner classes first: a class's hook is built with the hooks its fields have by then.
_OMIT_WHEN_NONE: dict[type, tuple[str, ...]] = {
    FunctionCallDelta: ("name",),
    ToolCallDeltaOut: ("id", "type"),
    Delta: ("role", "content", "reasoning_content", "tool_calls"),
    ChatMessage: ("reasoning_content", "tool_calls"),
    ChatCompletionChunk: ("conversation_id",),
    ChatCompletion: ("conversation_id",),
}


def _strict(kind: type[T], label: str) -> Any:
    def hook(value: Any, _: Any) -> T:
        # bool is an int subclass: a boolean where a number is expected is a client bug.
        if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
            raise ValueError(f"expected {label}, got {type(value).__name__}")
        return value

    return hook


def _structure_float(value: Any, _: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"expected a number, got {type(value).__name__}")
    return float(value)


def _register_scalars(c: JsonConverter) -> None:
    c.register_structure_hook(str, _strict(str, "a string"))
    c.register_structure_hook(bool, _strict(bool, "a boolean"))
    c.register_structure_hook(int, _strict(int, "an integer"))
    c.register_structure_hook(float, _structure_float)


def _is(union: Any) -> Any:
    return lambda t: t == union


def _register_content(c: JsonConverter) -> None:
    def part(value: Any, _: Any) -> ContentPart:
        if not isinstance(value, dict):
            raise ValueError("expected a content part object")
        kind = value.get("type")
        if kind == "text":
            return c.structure(value, TextPart)
        if kind == "image_url":
            return c.structure(value, ImagePart)
        if not isinstance(kind, str):
            raise ValueError("content part needs a string 'type'")
        return OtherPart(type=kind, raw=value)

    def _structure_parts(values: list[Any]) -> tuple[ContentPart, ...]:
        parts: list[ContentPart] = []
        for i, v in enumerate(values):
            try:
                parts.append(part(v, ContentPart))
            except Exception as exc:
                # Tag the failure with its index, as cattrs does for its own lists, so the
                # error names content[i] rather than just content.
                exc.__notes__ = [IterableValidationNote(f"Structuring part @ index {i}", i, Any)]
                raise IterableValidationError("invalid content part", [exc], list) from None
        return tuple(parts)

    def content(value: Any, _: Any) -> str | tuple[ContentPart, ...] | None:
        if value is None or isinstance(value, str):
            return value
        if isinstance(value, list):
            return _structure_parts(value)
        raise ValueError("expected a string, null or a list of content parts")

    def str_or_list(value: Any, _: Any) -> str | tuple[str, ...] | None:
        if value is None or isinstance(value, str):
            return value
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return tuple(value)
        raise ValueError("expected a string or a list of strings")

    def str_list(value: Any, _: Any) -> tuple[str, ...] | None:
        # cattrs would take a bare string as a sequence of one-letter names.
        if value is None or (isinstance(value, list) and all(isinstance(v, str) for v in value)):
            return None if value is None else tuple(value)
        raise ValueError("expected a list of strings")

    def str_or_dict(value: Any, _: Any) -> str | dict[str, Any] | None:
        if value is None or isinstance(value, str | dict):
            return value
        raise ValueError("expected a string or an object")

    c.register_structure_hook(ContentPart, part)
    # Unions are matched by predicate: cattrs' own union handling would otherwise run first.
    for union, hook in (
        (str | tuple[ContentPart, ...] | None, content),
        (str | tuple[str, ...] | None, str_or_list),
        (tuple[str, ...] | None, str_list),
        (str | dict[str, Any] | None, str_or_dict),
    ):
        c.register_structure_hook_func(_is(union), hook)


def _register_wire_policy(c: JsonConverter) -> None:
    for cls, names in _OMIT_WHEN_NONE.items():
        overrides: dict[str, Any] = {name: override(omit_if_default=True) for name in names}
        c.register_unstructure_hook(cls, make_dict_unstructure_fn(cls, c, **overrides))


def make_converter() -> JsonConverter:
    """A fresh converter with every hook registered, leaf types first."""
    c = _make_json_converter(omit_if_default=False, forbid_extra_keys=False)
    _register_scalars(c)
    _register_content(c)
    _register_wire_policy(c)
    return c


_CONVERTER = make_converter()
_PATH_PART = re.compile(r"^\$\.?")


def _format(exc: BaseException, type_: Any) -> str:
    if isinstance(exc, KeyError):
        return "required field missing"
    if get_origin(type_) is Literal:
        return "must be one of " + ", ".join(repr(v) for v in get_args(type_))
    if isinstance(exc, ValueError) and str(exc):
        return str(exc)
    return "invalid value"


def structure_request(body: bytes | str) -> ChatCompletionRequest:
    """Parse and validate a Chat Completions request body (`load_object` decodes it).

    Raises:
        InvalidRequestError: not JSON, not an object, a field of the wrong shape or out of
            OpenAI's range (`params`), or no messages; the message and ``param`` name the
            first offending field.
    """
    data = load_object(body)
    check_limits(data, CHAT_LIMITS)
    # Chat's metadata is accepted and ignored (nothing stores it), and clients and proxies
    # send values OpenAI would refuse (numbers, nested objects, more than 16 keys): only
    # its type is checked. Responses and conversations store theirs: full limits there.
    if not isinstance(data.get("metadata"), dict | None):
        raise InvalidRequestError("Invalid type for 'metadata': expected an object.",
                                  param="metadata", code="invalid_type")
    # A null is an absent field (openai-clients.md, "Nulls are sent"): SDK callers pass
    # stream=None, and a strict bool would refuse it.
    data = {key: value for key, value in data.items() if value is not None}
    if isinstance(options := data.get("stream_options"), dict):
        data["stream_options"] = {k: v for k, v in options.items() if v is not None}
    request = _structure(data)
    if not request.messages:
        raise InvalidRequestError("Invalid 'messages': empty array. Expected an array with "
                                  "minimum length 1, but got an empty array instead.",
                                  param="messages", code="empty_array")
    if request.n not in (None, 1):
        raise InvalidRequestError("Only n=1 is supported", param="n",
                                  code="unsupported_parameter")
    return request


def _structure(data: dict[str, Any]) -> ChatCompletionRequest:
    try:
        return _CONVERTER.structure(data, ChatCompletionRequest)
    except (cattrs.BaseValidationError, ValueError, TypeError, KeyError) as exc:
        problems = cattrs.transform_error(exc, path="$", format_exception=_format)
        first = problems[0] if problems else str(exc)
        detail, _, where = first.partition(" @ ")
        param = _PATH_PART.sub("", where) or None
        raise InvalidRequestError(
            f"Invalid value for '{param}': {detail}" if param else f"Invalid request: {detail}",
            param=param,
        ) from None


def dumps(obj: Any) -> bytes:
    """Serialize a response model as compact JSON bytes."""
    if attrs.has(type(obj)):
        obj = _CONVERTER.unstructure(obj)
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode()
