"""OpenAI messages -> what the CLI is given: a system prompt and one stream-json user turn.

Policy (documented in the README):

* ``system`` and ``developer`` messages, wherever they stand, are joined in order with a
  blank line and become the run's system prompt.
* The last message must come from the user (or be a tool result); it becomes the turn.
* Image parts of the last user message become image blocks in place, between its text
  blocks (`images.image_block` checks them). Images in earlier messages cannot be given to
  the CLI as images inside the quoted history, so they are refused with a 400.
* Earlier turns are left out when the run resumes a CLI session that holds them (the
  caller says so). Otherwise they are not dropped: they go first in the same user
  message, as a ``<conversation_history>`` text block that quotes each turn with its
  role, which Claude Code sees as context rather than as its own earlier turns.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import attrs

from .errors import InvalidRequestError
from .images import ImageLimits, check_image_count, image_block
from .jsonbody import excerpt
from .openai_types import ChatCompletionRequest, ImagePart, Message, OtherPart, TextPart

__all__ = ["RESULT_ROLES", "Prompt", "build_prompt", "new_turn_start", "user_line"]

_HISTORY_INTRO = (
    "The conversation so far, oldest turn first. It is context for the message after it; "
    "answer that message."
)


@attrs.frozen(kw_only=True)
class Prompt:
    system: str | None
    #: Anthropic content blocks of the single user turn sent on stdin.
    content: tuple[dict[str, Any], ...]
    #: ``content`` without the tool results quoted before the user's message: what is sent
    #: when those results answer a live turn's calls instead. None: no results come first.
    content_after_results: tuple[dict[str, Any], ...] | None = None


def _text_of(message: Message, index: int) -> str:
    content = message.content
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    texts: list[str] = []
    for j, part in enumerate(content):
        if isinstance(part, TextPart):
            texts.append(part.text)
        else:
            _unsupported(part, index, j)
    return "\n".join(texts)


def _unsupported(part: ImagePart | OtherPart | TextPart, i: int, j: int) -> None:
    if isinstance(part, ImagePart):
        raise InvalidRequestError(
            "Images are only supported in the last user message; an image in an earlier "
            "message cannot be delivered to Claude Code",
            param=f"messages[{i}].content[{j}]",
            code="unsupported_content",
        )
    raise InvalidRequestError(
        f"Content parts of type {excerpt(part.type)} are not supported",
        param=f"messages[{i}].content[{j}].type",
        code="unsupported_content",
    )


def _quote(message: Message, index: int) -> str:
    """One earlier turn, as it appears inside the history block."""
    text = _text_of(message, index)
    if message.role == "assistant" and message.tool_calls:
        calls = [
            f"(called {c.get('function', {}).get('name', '?')} "
            f"with {c.get('function', {}).get('arguments', '')})"
            for c in message.tool_calls
            if isinstance(c, dict)
        ]
        text = "\n".join(filter(None, [text, *calls]))
    label: str = message.role
    if message.role in ("tool", "function"):
        label = f"tool result {message.tool_call_id or message.name or ''}".rstrip()
    return f"[{label}]\n{text}"


def _final_blocks(message: Message, index: int, limits: ImageLimits) -> list[dict[str, Any]]:
    """The last user message as text and image blocks, in the client's order."""
    content = message.content
    if not isinstance(content, tuple):
        return [{"type": "text", "text": _text_of(message, index)}]
    count = sum(isinstance(p, ImagePart) for p in content)
    check_image_count(count, param=f"messages[{index}].content", limits=limits)
    blocks: list[dict[str, Any]] = []
    texts: list[str] = []
    for j, part in enumerate(content):
        if isinstance(part, TextPart):
            texts.append(part.text)
            continue
        if not isinstance(part, ImagePart):
            _unsupported(part, index, j)
            continue
        # Adjacent text parts are joined with a newline, as `_text_of` joins them; the API
        # refuses empty text blocks, so blank runs next to an image are left out.
        if "".join(texts).strip():
            blocks.append({"type": "text", "text": "\n".join(texts)})
        texts = []
        param = f"messages[{index}].content[{j}]"
        blocks.append(image_block(part.image_url.url, param=param, limits=limits))
    if "".join(texts).strip() or not blocks:
        blocks.append({"type": "text", "text": "\n".join(texts)})
    return blocks


def build_prompt(
    request: ChatCompletionRequest,
    *,
    inline_history: bool = True,
    image_limits: ImageLimits | None = None,
) -> Prompt:
    """Split a request's messages into the system prompt and the user turn.

    ``inline_history`` False drops the earlier turns: the resumed session has them.

    Raises:
        InvalidRequestError: no messages, the last one is not from the user or a tool,
            or a content part the CLI cannot take (see `images` for the image checks).
    """
    if not request.messages:
        raise InvalidRequestError("'messages' must contain at least one message",
                                  param="messages")
    system: list[str] = []
    history: list[str] = []
    turns = [(i, m) for i, m in enumerate(request.messages)]
    for i, m in turns:
        if m.role in ("system", "developer"):
            text = _text_of(m, i)
            if text:
                system.append(text)
    conversation = [(i, m) for i, m in turns if m.role not in ("system", "developer")]
    if not conversation:
        raise InvalidRequestError("'messages' must contain a user message", param="messages")
    last_index, last = conversation[-1]
    if last.role not in ("user", "tool", "function"):
        raise InvalidRequestError(
            f"The last message must be from the user, not '{last.role}'",
            param=f"messages[{last_index}].role",
        )
    tail = new_turn_start([m.role for _, m in conversation])
    for i, m in conversation[:tail] if inline_history else ():
        history.append(_quote(m, i))
    blocks: list[dict[str, Any]] = []
    if history:
        body = "\n\n".join(history)
        blocks.append({
            "type": "text",
            "text": f"<conversation_history>\n{_HISTORY_INTRO}\n\n{body}\n</conversation_history>",
        })
    results = [_quote(m, i) for i, m in conversation[tail:] if m.role in RESULT_ROLES]
    quoted = [{"type": "text", "text": "\n\n".join(results)}] if results else []
    if last.role == "user":
        final = _final_blocks(last, last_index, image_limits or ImageLimits())
    else:
        final, quoted = quoted, []
    if len(final) == 1 and final[0]["type"] == "text" and not final[0]["text"].strip():
        raise InvalidRequestError("The last message has no text", param=f"messages[{last_index}]")
    # Results before a user message go in as text unless a live turn takes them.
    return Prompt(system="\n\n".join(system) or None, content=(*blocks, *quoted, *final),
                  content_after_results=(*blocks, *final) if quoted else None)


#: The roles of messages that carry a tool's result.
RESULT_ROLES = ("tool", "function")


def new_turn_start(roles: Sequence[str]) -> int:
    """Where a request's new turn begins, given its messages' roles (system ones left out):
    its last message, with the tool results right before it. Results answer one message's
    calls together; a user message may follow them (a client that ends its run on a call,
    as agent frameworks' output tools do, sends the next question after the results)."""
    start = len(roles) - 1
    if start >= 0 and roles[start] in ("user", *RESULT_ROLES):
        while start > 0 and roles[start - 1] in RESULT_ROLES:
            start -= 1
    return max(start, 0)


def user_line(content: tuple[dict[str, Any], ...]) -> bytes:
    """One stream-json input line carrying a user turn (reference §6.1)."""
    message = {"type": "user", "message": {"role": "user", "content": list(content)}}
    return json.dumps(message, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"
