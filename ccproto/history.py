"""Conversation history: fingerprints for stateless clients, and seeding a CLI session.

Most OpenAI clients never send an id: they resend the whole history each turn. The server
recognises a continuation by fingerprint: a stored conversation whose history (system
prompt, then every message with its role, as `HistoryMessage` values) equals the request's
history minus its last user message. Text is compared exactly, except that a string and a
list of text parts holding the same text are the same content.

A history that matches nothing starts a new CLI session seeded with the earlier messages
as a transcript file in the CLI's own session format (protocol reference §5.3), which the
CLI then resumes: the model sees them as real user and assistant messages. Only text
histories that alternate from a user message can be written that way; anything else is
quoted inline.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import attrs

from .openai_types import ChatCompletionRequest, ImagePart, Message, TextPart
from .prompt import RESULT_ROLES, new_turn_start

__all__ = [
    "Fingerprint",
    "HistoryMessage",
    "fingerprint",
    "munge_cwd",
    "request_history",
    "seed_transcript",
    "seedable",
    "tool_calls_part",
    "tool_result_entries",
    "tool_results",
]


@attrs.frozen
class HistoryMessage:
    """One message of a conversation, normalised: role and its parts.

    ``parts`` holds ``("text", str)`` and ``("image", url)``; adjacent text parts are
    joined with a newline, as the prompt builder joins them.
    """

    role: str
    parts: tuple[tuple[str, str], ...]

    @property
    def text(self) -> str | None:
        """The whole content when it is text only, else None (a tool result's call id is
        no content)."""
        parts = [(kind, value) for kind, value in self.parts if kind != "tool_call_id"]
        if all(kind == "text" for kind, _ in parts):
            return "\n".join(value for _, value in parts)
        return None


def _parts(message: Message) -> tuple[tuple[str, str], ...]:
    content = message.content
    if not content:
        # An assistant message that only calls tools comes back with null or "".
        return ()
    if isinstance(content, str):
        return (("text", content),)
    parts: list[tuple[str, str]] = []
    for part in content:
        if isinstance(part, TextPart):
            if parts and parts[-1][0] == "text":
                parts[-1] = ("text", parts[-1][1] + "\n" + part.text)
            else:
                parts.append(("text", part.text))
        elif isinstance(part, ImagePart):
            parts.append(("image", part.image_url.url))
        else:
            parts.append((part.type, json.dumps(part.raw, sort_keys=True)))
    return tuple(parts)


def request_history(
    request: ChatCompletionRequest,
) -> tuple[str | None, tuple[HistoryMessage, ...]]:
    """(system prompt, conversation messages) of a request, the last message included.

    The system prompt is the system and developer messages joined as `build_prompt` joins
    them; tool calls an assistant message made are part of that message.
    """
    system: list[str] = []
    messages: list[HistoryMessage] = []
    for message in request.messages:
        if message.role in ("system", "developer"):
            text = HistoryMessage(message.role, _parts(message)).text
            if text:
                system.append(text)
            continue
        parts = _parts(message)
        if message.tool_calls:
            parts += (("tool_calls", tool_calls_part(_client_calls(message.tool_calls))),)
        if message.role in RESULT_ROLES:
            parts += (("tool_call_id", message.tool_call_id or message.name or ""),)
        messages.append(HistoryMessage(message.role, parts))
    return "\n\n".join(system) or None, tuple(messages)


def _client_calls(calls: Sequence[Any]) -> list[tuple[str, str, str]]:
    out = []
    for call in calls:
        fn = call.get("function") if isinstance(call, dict) else None
        fn = fn if isinstance(fn, dict) else {}
        out.append((str(call.get("id", "")) if isinstance(call, dict) else "",
                    str(fn.get("name", "")), str(fn.get("arguments", ""))))
    return out


def tool_calls_part(calls: Sequence[tuple[str, str, str]]) -> str:
    """An assistant message's tool calls ``(id, name, arguments)`` as a history part.

    Arguments are compared as JSON values, not text: clients that parse them and send
    them back re-serialised (LangChain does) still continue their conversation.
    """
    canonical = []
    for call_id, name, arguments in calls:
        try:
            value: Any = json.loads(arguments)
        except ValueError:
            value = arguments
        canonical.append([call_id, name, value])
    return json.dumps(canonical, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def tool_results(request: ChatCompletionRequest) -> dict[str, str] | None:
    """The results the tool messages of the request's new turn carry (`new_turn_start`),
    by ``tool_call_id`` (the text of each), or None when it has none."""
    conversation = [m for m in request.messages if m.role not in ("system", "developer")]
    start = new_turn_start([m.role for m in conversation])
    results = {m.tool_call_id or m.name or "":
               "\n".join(value for kind, value in _parts(m) if kind == "text")
               for m in conversation[start:] if m.role in RESULT_ROLES}
    return results or None


def fingerprint(system: str | None, messages: Sequence[HistoryMessage]) -> str:
    """A digest of a history; equal histories, and only those, have equal digests.

    JSON of nested lists is an unambiguous encoding: no two histories serialise alike.
    The digest is of ``[system, [[role, parts], ...]]`` as compact JSON.
    """
    digest = Fingerprint(system)
    digest.add(messages)
    return digest.hexdigest()


def _compact(value: object) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


class Fingerprint:
    """`fingerprint` built one turn at a time: a conversation's next digest from its last
    one's state and the new messages, without its whole history.

    Compact JSON of a list is its items' JSON joined by commas between brackets, so the
    hash can take the document's bytes up to the closing brackets as messages come, and
    `hexdigest` closes a copy.
    """

    def __init__(self, system: str | None) -> None:
        self._hash = hashlib.sha256(b"[" + _compact(system) + b",[")
        self._count = 0

    def add(self, messages: Iterable[HistoryMessage]) -> None:
        for m in messages:
            if self._count:
                self._hash.update(b",")
            self._hash.update(_compact([m.role, [list(p) for p in m.parts]]))
            self._count += 1

    def copy(self) -> Fingerprint:
        other = Fingerprint.__new__(Fingerprint)
        other._hash, other._count = self._hash.copy(), self._count
        return other

    def hexdigest(self) -> str:
        closed = self._hash.copy()
        closed.update(b"]]")
        return closed.hexdigest()


def seedable(messages: Sequence[HistoryMessage]) -> list[tuple[str, str]] | None:
    """Earlier messages as alternating (role, text) pairs from a user message, or None.

    Consecutive messages of one role are joined with a blank line; tool results count as
    user messages. None when a message is not plain text or the history opens with the
    assistant, since a transcript cannot hold either faithfully.
    """
    merged: list[tuple[str, str]] = []
    for message in messages:
        text = message.text
        if text is None:
            return None
        role = "assistant" if message.role == "assistant" else "user"
        if merged and merged[-1][0] == role:
            merged[-1] = (role, merged[-1][1] + "\n\n" + text)
        else:
            merged.append((role, text))
    if merged and merged[0][0] != "user":
        return None
    return merged


def munge_cwd(cwd: str) -> str:
    """The CLI's project folder name for a working directory (reference §5.1)."""
    return re.sub(r"[^A-Za-z0-9]", "-", cwd)


def seed_transcript(
    pairs: Sequence[tuple[str, str]],
    *,
    session_id: str,
    cwd: str,
    version: str,
    model: str,
    timestamp: str,
    uuids: Iterator[str],
) -> bytes:
    """A session transcript holding ``pairs`` as user and assistant messages.

    The caller supplies ids and the ISO timestamp, keeping this pure. The lines carry the
    fields the CLI's own transcripts carry (reference §5.3), chained by ``parentUuid``.
    """
    lines: list[bytes] = []
    parent: str | None = None
    for role, text in pairs:
        uuid = next(uuids)
        message: dict[str, Any]
        if role == "user":
            message = {"role": "user", "content": text}
        else:
            message = {
                "id": f"msg_{uuid.replace('-', '')}", "type": "message", "role": "assistant",
                "model": model, "content": [{"type": "text", "text": text}],
                "stop_reason": "end_turn", "stop_sequence": None,
                "usage": {"input_tokens": 0, "output_tokens": 0},
            }
        record = {
            "parentUuid": parent, "isSidechain": False, "type": role, "uuid": uuid,
            "timestamp": timestamp, "sessionId": session_id, "cwd": cwd,
            "userType": "external", "version": version, "message": message,
        }
        lines.append(json.dumps(record, ensure_ascii=False, separators=(",", ":")).encode())
        parent = uuid
    return b"".join(line + b"\n" for line in lines)


def tool_result_entries(
    transcript: bytes,
    results: Mapping[str, str],
    *,
    session_id: str,
    cwd: str,
    version: str,
    timestamp: str,
    uuids: Iterator[str],
) -> bytes | None:
    """Transcript lines that answer the calls a session's last message made with
    ``results`` (tool use id -> text), for a CLI that resumes the session to go on.

    When the process that held a turn's calls is gone, a new one resumes the session, and
    the CLI drops an assistant message whose calls have no result. With these lines after
    it (the shape the CLI writes itself for a tool result, one per call, each chained to
    the one before) and ``CLAUDE_CODE_RESUME_INTERRUPTED_TURN``, the resumed CLI sends the
    genuine ``tool_use``/``tool_result`` pair upstream and goes on with no prompt
    (client-tools reference §12; measured with the pinned CLI).

    None when the results do not answer exactly the calls of the transcript's last
    assistant message, or some call already has a result (an abandoned turn's rejection):
    the caller then sends the results as text.
    """
    entries = []
    for line in transcript.splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict) and entry.get("type") in ("user", "assistant"):
            entries.append(entry)
    calls: list[str] = []
    parent: str | None = None
    message_id: object = None
    for entry in reversed(entries):
        message: dict[str, Any] = entry.get("message") or {}
        if not isinstance(message, dict):
            message = {}
        content = message.get("content")
        if entry["type"] == "user":
            break  # the last message is over: before it, or answered (or rejected) after
        if calls and message.get("id") != message_id:
            break
        message_id = message.get("id")
        ids = [b.get("id") for b in (content if isinstance(content, list) else ())
               if isinstance(b, dict) and b.get("type") == "tool_use"]
        if ids and parent is None:
            parent = entry.get("uuid")
        calls[:0] = [i for i in ids if isinstance(i, str)]
    if not calls or sorted(calls) != sorted(results) or not isinstance(parent, str):
        return None
    lines = []
    for call_id in calls:
        uuid = next(uuids)
        content = [{"type": "text", "text": results[call_id]}]
        record = {
            "parentUuid": parent, "isSidechain": False, "type": "user",
            "message": {"role": "user", "content": [
                {"tool_use_id": call_id, "type": "tool_result", "content": content}]},
            "uuid": uuid, "timestamp": timestamp, "toolUseResult": content,
            "userType": "external", "cwd": cwd, "sessionId": session_id, "version": version,
        }
        lines.append(json.dumps(record, ensure_ascii=False, separators=(",", ":")).encode())
        parent = uuid
    return b"".join(line + b"\n" for line in lines)
