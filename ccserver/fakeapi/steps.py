"""The steps a fake-API directive can script, and their validation.

A step is one scripted API response: content (thinking, text, tool calls), usage overrides,
timing, and at most one fault. `parse_step` turns the JSON a test wrote into a `Step`; unknown
keys are rejected because a typo such as ``drop-after`` would otherwise turn a failure test into
a silent success.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any, Literal, cast

import attrs

__all__ = [
    "DEFAULT_TEXT",
    "DirectiveError",
    "ErrorSpec",
    "HangPoint",
    "MidstreamError",
    "Step",
    "ToolUse",
    "parse_step",
    "split_words",
]

#: What the fake says when no directive is present.
DEFAULT_TEXT = "Hello from the fake Anthropic API."

HangPoint = Literal["before_headers", "after_message_start", "after_chunks"]
_HANG_POINTS: tuple[HangPoint, ...] = ("before_headers", "after_message_start", "after_chunks")

_STEP_KEYS = frozenset(
    {
        "text", "chunks", "thinking", "tool_use", "tool_uses", "stop_reason", "usage", "model",
        "delay_ms", "first_delay_ms", "error", "midstream_error", "drop_after", "hang", "times",
    }
)  # fmt: skip
_FAULT_KEYS = ("error", "midstream_error", "drop_after", "hang")
_USAGE_KEYS = frozenset(
    {"input_tokens", "output_tokens", "cache_read_input_tokens", "cache_creation_input_tokens"}
)


class DirectiveError(ValueError):
    """The directive is malformed; the fake answers 400 with this message."""


@attrs.frozen(kw_only=True)
class ToolUse:
    name: str
    input: Mapping[str, Any]
    #: None means "make one up" (the server draws a fresh ``toolu_fake_...`` id).
    id: str | None = None


@attrs.frozen(kw_only=True)
class ErrorSpec:
    status: int
    type: str | None = None
    message: str | None = None
    headers: tuple[tuple[str, str], ...] = ()


@attrs.frozen(kw_only=True)
class MidstreamError:
    after: int = 1
    type: str = "overloaded_error"
    message: str = "Overloaded"


@attrs.frozen(kw_only=True)
class Step:
    #: Exact text deltas; None means "no text block".
    chunks: tuple[str, ...] | None = None
    thinking: str | None = None
    tool_uses: tuple[ToolUse, ...] = ()
    stop_reason: str = "end_turn"
    usage: Mapping[str, int] = attrs.field(factory=dict)
    model: str | None = None
    delay_ms: int = 0
    first_delay_ms: int = 0
    error: ErrorSpec | None = None
    midstream_error: MidstreamError | None = None
    drop_after: int | None = None
    hang: HangPoint | None = None
    #: Only the first N matching requests get the fault; None = every request.
    times: int | None = None


def split_words(text: str, per: int = 2) -> tuple[str, ...]:
    """Split into deltas of ``per`` words; the deltas concatenate back to ``text`` exactly."""
    words = re.findall(r"\s*\S+\s*", text)
    if not words:
        return (text,) if text else ()
    return tuple("".join(words[i : i + per]) for i in range(0, len(words), per))


def parse_step(raw: Mapping[str, Any]) -> Step:
    """Validate one step object and normalise it into a `Step`."""
    unknown = sorted(set(raw) - _STEP_KEYS)
    if unknown:
        raise DirectiveError(f"unknown directive keys: {', '.join(unknown)}")
    faults = [name for name in _FAULT_KEYS if name in raw]
    if len(faults) > 1:
        raise DirectiveError(f"one fault per step, got: {', '.join(faults)}")
    if "text" in raw and "chunks" in raw:
        raise DirectiveError('give "text" or "chunks", not both')
    if "tool_use" in raw and "tool_uses" in raw:
        raise DirectiveError('give "tool_use" or "tool_uses", not both')

    chunks: tuple[str, ...] | None = None
    if "text" in raw:
        chunks = split_words(_typed(raw, "text", str))
    elif "chunks" in raw:
        chunks = tuple(_str_list(raw["chunks"], "chunks"))
    tool_specs: list[Any] = (
        [raw["tool_use"]] if "tool_use" in raw else _typed(raw, "tool_uses", list, [])
    )
    tool_uses = tuple(_tool_use(spec) for spec in tool_specs)
    thinking = _typed(raw, "thinking", str, None)
    if chunks is None and thinking is None and not tool_uses:
        chunks = split_words(DEFAULT_TEXT)

    error = _error(raw["error"]) if "error" in raw else None
    times = _typed(raw, "times", int, None)
    if isinstance(raw.get("error"), dict) and "times" in raw["error"]:
        times = _typed(raw["error"], "times", int)
    hang = raw.get("hang")
    if hang is not None and hang not in _HANG_POINTS:
        raise DirectiveError(f'"hang" must be one of {", ".join(_HANG_POINTS)}')
    usage = _typed(raw, "usage", dict, {})
    if set(usage) - _USAGE_KEYS or not all(type(v) is int for v in usage.values()):
        raise DirectiveError(f'"usage" takes integer {", ".join(sorted(_USAGE_KEYS))}')
    return Step(
        chunks=chunks,
        thinking=thinking,
        tool_uses=tool_uses,
        stop_reason=_typed(raw, "stop_reason", str, "tool_use" if tool_uses else "end_turn"),
        usage=usage,
        model=_typed(raw, "model", str, None),
        delay_ms=_typed(raw, "delay_ms", int, 0),
        first_delay_ms=_typed(raw, "first_delay_ms", int, 0),
        error=error,
        midstream_error=_midstream(raw["midstream_error"]) if "midstream_error" in raw else None,
        drop_after=_typed(raw, "drop_after", int, None),
        hang=cast("HangPoint | None", hang),
        times=times,
    )


_MISSING: Any = object()


def _typed(raw: Mapping[str, Any], name: str, kind: type[Any], default: Any = _MISSING) -> Any:
    if name not in raw:
        if default is _MISSING:
            raise DirectiveError(f'"{name}" is required')
        return default
    value = raw[name]
    # bool is an int subclass, but `"delay_ms": true` is a mistake worth reporting.
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise DirectiveError(f'"{name}" must be of type {kind.__name__}')
    return value


def _str_list(value: object, name: str) -> Sequence[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise DirectiveError(f'"{name}" must be a list of strings')
    return value


def _tool_use(spec: object) -> ToolUse:
    if not isinstance(spec, dict) or set(spec) - {"name", "input", "id"}:
        raise DirectiveError('a tool use is {"name": str, "input": {...}, "id"?: str}')
    return ToolUse(
        name=_typed(spec, "name", str),
        input=_typed(spec, "input", dict, {}),
        id=_typed(spec, "id", str, None),
    )


def _error(spec: object) -> ErrorSpec:
    if isinstance(spec, int) and not isinstance(spec, bool):
        return ErrorSpec(status=spec)
    if not isinstance(spec, dict) or set(spec) - {"status", "type", "message", "headers", "times"}:
        raise DirectiveError('"error" is a status or {"status", "type"?, "message"?, "headers"?}')
    headers = _typed(spec, "headers", dict, {})
    if not all(isinstance(v, str) for v in headers.values()):
        raise DirectiveError('"error.headers" values must be strings')
    return ErrorSpec(
        status=_typed(spec, "status", int),
        type=_typed(spec, "type", str, None),
        message=_typed(spec, "message", str, None),
        headers=tuple((name.lower(), value) for name, value in headers.items()),
    )


def _midstream(spec: object) -> MidstreamError:
    if not isinstance(spec, dict) or set(spec) - {"after", "type", "message"}:
        raise DirectiveError('"midstream_error" is {"after"?, "type"?, "message"?}')
    return MidstreamError(
        after=_typed(spec, "after", int, 1),
        type=_typed(spec, "type", str, "overloaded_error"),
        message=_typed(spec, "message", str, "Overloaded"),
    )
