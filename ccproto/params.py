"""OpenAI's limits on request parameters, checked even where the gateway ignores the value.

The CLI cannot honour ``temperature``, ``top_p``, the penalties, ``logprobs`` ... and the
gateway accepts and ignores them (openai-wire.md §4 item 14). A value OpenAI would refuse
is still refused: a client that sends ``temperature: 7`` has a bug, and a 200 hides it.
The ranges are the OpenAPI document's (CreateChatCompletionRequest, CreateResponse); the
messages and codes follow OpenAI's (``Invalid 'top_p': decimal above maximum value ...``,
code ``decimal_above_max_value``, ``param`` naming the field).

``metadata`` gets OpenAI's limits too (16 keys, keys up to 64 characters, string values up
to 512) where it is stored: Responses and ``POST /v1/conversations``. Chat's is ignored,
so only its type is checked there (converter.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from .errors import InvalidRequestError
from .jsonbody import excerpt

__all__ = ["CHAT_LIMITS", "RESPONSES_LIMITS", "Limit", "check_limits", "check_metadata"]

Kind = Literal["integer", "number", "boolean"]
#: (kind, minimum or None, maximum or None)
Limit = tuple[Kind, float | None, float | None]

_SAMPLING: dict[str, Limit] = {
    "temperature": ("number", 0, 2),
    "top_p": ("number", 0, 1),
    "top_logprobs": ("integer", 0, 20),
}

CHAT_LIMITS: Mapping[str, Limit] = {
    **_SAMPLING,
    "presence_penalty": ("number", -2, 2),
    "frequency_penalty": ("number", -2, 2),
    "logprobs": ("boolean", None, None),
    "n": ("integer", 1, 128),
    "max_tokens": ("integer", 1, None),
    "max_completion_tokens": ("integer", 1, None),
    "seed": ("integer", None, None),
}

RESPONSES_LIMITS: Mapping[str, Limit] = {
    **_SAMPLING,
    "max_output_tokens": ("integer", 16, None),
    "max_tool_calls": ("integer", 0, None),
}

MAX_METADATA_KEYS = 16
MAX_METADATA_KEY, MAX_METADATA_VALUE = 64, 512

_WORD = {"integer": "an integer", "number": "a decimal", "boolean": "a boolean"}


def _type_of(value: Any) -> str:
    return {bool: "boolean", int: "integer", float: "decimal", str: "string",
            list: "array", dict: "object"}.get(type(value), type(value).__name__)


def _fits(kind: Kind, value: Any) -> bool:
    if kind == "boolean":
        return isinstance(value, bool)
    # bool is an int subclass, but true where a number belongs is a client bug.
    if isinstance(value, bool):
        return False
    return isinstance(value, int) if kind == "integer" else isinstance(value, int | float)


def check_limits(data: Mapping[str, Any], limits: Mapping[str, Limit]) -> None:
    """Refuse the first parameter of ``data`` outside its ``limits`` (null passes).

    Raises:
        InvalidRequestError: a wrong type (code ``invalid_type``) or a value out of range
            (``integer_below_min_value``, ``decimal_above_max_value`` ...).
    """
    for name, (kind, low, high) in limits.items():
        value = data.get(name)
        if value is None:
            continue
        if not _fits(kind, value):
            raise InvalidRequestError(
                f"Invalid type for '{name}': expected {_WORD[kind]}, but got "
                f"{_type_of(value)} instead.", param=name, code="invalid_type")
        shown = excerpt(str(value), 32)[1:-1]
        word = "integer" if kind == "integer" else "decimal"
        if low is not None and value < low:
            raise InvalidRequestError(
                f"Invalid '{name}': {word} below minimum value. Expected a value >= {low:g}, "
                f"but got {shown} instead.", param=name, code=f"{word}_below_min_value")
        if high is not None and value > high:
            raise InvalidRequestError(
                f"Invalid '{name}': {word} above maximum value. Expected a value <= {high:g}, "
                f"but got {shown} instead.", param=name, code=f"{word}_above_max_value")


def check_metadata(value: Any) -> dict[str, str]:
    """``metadata`` as a dict (``{}`` for null) within OpenAI's limits.

    Raises:
        InvalidRequestError: not an object of strings, or over a limit.
    """
    if value is None:
        return {}
    ok = isinstance(value, dict) and len(value) <= MAX_METADATA_KEYS and all(
        isinstance(v, str) and len(k) <= MAX_METADATA_KEY and len(v) <= MAX_METADATA_VALUE
        for k, v in value.items())
    if not ok:
        raise InvalidRequestError(
            f"Invalid value for 'metadata': expected an object of at most "
            f"{MAX_METADATA_KEYS} string values (keys up to {MAX_METADATA_KEY} characters, "
            f"values up to {MAX_METADATA_VALUE})", param="metadata")
    return dict(value)
