"""Scripting for the fake Anthropic API: find a `[[fake {...}]]` directive and pick a step.

Theory of operation. The fake keeps no conversation state. A test writes a directive into the
prompt it hands to the Claude Code CLI, and the CLI sends the whole history on every request, so
each request carries its own script:

* The directive lives in the text of a user message (string content or a top-level text block;
  tool_result blocks are skipped so that tool output can never script the fake). The CLI prepends
  system-reminder blocks and appends tool_result / continuation user messages, so we take the
  LAST user message that has one, and the last directive inside it.
* The step index is the number of assistant messages after that user message: 0 for the first
  request of a turn, 1 after one tool round trip or one max_tokens continuation, and so on.
* ``{"steps": [...]}`` picks ``steps[min(k, len - 1)]``; any other top-level key is a default
  shared by every step. Without ``steps`` the directive itself is the only step.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from typing import Any

import attrs

from .steps import DirectiveError, Step, parse_step

__all__ = ["Selection", "find_selection"]

_MARKER = re.compile(r"\[\[fake\s+")
_CLOSER = re.compile(r"\s*\]\]")
_DECODER = json.JSONDecoder()


@attrs.frozen(kw_only=True)
class Selection:
    step: Step
    #: Effective step index (clamped to the last step).
    index: int
    #: Canonical JSON of the directive; with ``index`` it keys the ``times`` bookkeeping.
    key: str


def find_selection(messages: object) -> Selection | None:
    """Return the step the directive in ``messages`` scripts for this request, or None."""
    if not isinstance(messages, list):
        return None
    for pos in range(len(messages) - 1, -1, -1):
        message = messages[pos]
        if not isinstance(message, dict) or message.get("role") != "user":
            continue
        directive = None
        for text in _texts(message):
            directive = _last_directive(text) or directive
        if directive is None:
            continue
        k = sum(
            1 for m in messages[pos + 1 :] if isinstance(m, dict) and m.get("role") == "assistant"
        )
        return _select(directive, k)
    return None


def _texts(message: Mapping[str, Any]) -> Iterator[str]:
    content = message.get("content")
    if isinstance(content, str):
        yield content
    elif isinstance(content, list):
        for block in content:
            if isinstance(block, dict) and block.get("type") == "text":
                text = block.get("text")
                if isinstance(text, str):
                    yield text


def _last_directive(text: str) -> dict[str, Any] | None:
    found: dict[str, Any] | None = None
    pos = 0
    # Resume scanning after each directive: a directive may itself contain one (e.g. an Agent
    # tool_use whose prompt scripts the subagent), and that inner one is the subagent's business.
    while match := _MARKER.search(text, pos):
        try:
            obj, end = _DECODER.raw_decode(text, match.end())
        except json.JSONDecodeError as exc:
            raise DirectiveError(f"[[fake ...]] does not hold valid JSON: {exc}") from None
        if not isinstance(obj, dict):
            raise DirectiveError("[[fake ...]] must hold a JSON object")
        closer = _CLOSER.match(text, end)
        if closer is None:
            raise DirectiveError("[[fake {...}]] is missing its closing ]]")
        found, pos = obj, closer.end()
    return found


def _select(directive: dict[str, Any], k: int) -> Selection:
    key = json.dumps(directive, sort_keys=True)
    if "steps" not in directive:
        return Selection(step=parse_step(directive), index=0, key=key)
    steps = directive["steps"]
    if not isinstance(steps, list) or not steps or not all(isinstance(s, dict) for s in steps):
        raise DirectiveError('"steps" must be a non-empty list of objects')
    index = min(k, len(steps) - 1)
    defaults = {name: value for name, value in directive.items() if name != "steps"}
    return Selection(step=parse_step({**defaults, **steps[index]}), index=index, key=key)
