"""The response cache: identical stateless questions answered once (``cache.enabled``).

The rule for what may be cached (the caller enforces the parts only it can see):

- only non-streaming requests (a stream's timing is part of what a client asked for);
- only stateless requests: no ``conversation_id`` in the body or ``x-conversation-id``
  header, since a conversation's next turn resumes a Claude Code session and its answer
  depends on that session, not only on the request;
- only tool-free requests: no client ``tools``/``tool_choice``/``functions``
  (`is_cacheable_request`), and only turns that ran no agentic tool (Bash, Read, MCP ...),
  because those answers depend on the machine's state at the time: the caller checks the
  finished turn before `ResponseCache.put`;
- only successful completions; errors are never stored.

The key (`key_for`) is the sha256 of one canonical JSON document holding the whole request
body that can change the answer (model, every message, the system prompt, tools, sampling
fields even when ignored today) and a fingerprint of the server-side options (CLI version,
model map, permission mode, tools, system-prompt mode ...). JSON with sorted keys is an
unambiguous encoding: no two different inputs share a serialisation, unlike joined strings.
A hit is handed back with a fresh ``id`` and ``created`` (`refreshed`) and ``x-cache: hit``.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Mapping
from typing import Any

import attrs
from cachetools import TTLCache

from ..settings.sections import CacheSettings

__all__ = [
    "ResponseCache", "canonical_request", "is_cacheable_request", "options_fingerprint",
    "refreshed",
]

# Fields that change how an answer is delivered or billed, never what it says.
_TRANSPORT_FIELDS = frozenset({"stream", "stream_options", "user", "metadata", "store"})
_TOOL_FIELDS = ("tools", "tool_choice", "functions", "function_call")


def _canonical_json(value: object) -> bytes:
    # allow_nan=False: NaN is not JSON, and float("nan") != itself would make keys unstable.
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False, default=_encode_other).encode()


def _encode_other(value: object) -> object:
    cls = type(value)
    if attrs.has(cls):
        fields = {f.name: getattr(value, f.name) for f in attrs.fields(cls)}
        return {"__type__": cls.__qualname__, **fields}
    if isinstance(value, frozenset | set):
        return sorted(value, key=repr)  # set order varies between runs
    if isinstance(value, Mapping):
        return dict(value)
    raise TypeError(f"cannot fingerprint a {type(value).__name__}")


def is_cacheable_request(body: Mapping[str, Any], *, conversation_id: str | None) -> bool:
    """Whether a chat request (its parsed JSON body) may be served from the cache at all."""
    if body.get("stream") or conversation_id or body.get("conversation_id"):
        return False
    if any(body.get(f) for f in _TOOL_FIELDS):
        return False
    messages = body.get("messages")
    if not isinstance(messages, list):
        return False
    # A history that already holds tool calls or results came from a tool-using exchange;
    # one with an assistant turn may continue a stored conversation's session.
    return not any(isinstance(m, Mapping) and (m.get("role") in ("tool", "function", "assistant")
                                               or m.get("tool_calls")) for m in messages)


def canonical_request(body: Mapping[str, Any]) -> dict[str, Any]:
    """The request body minus the fields that cannot change the answer."""
    return {k: v for k, v in body.items() if k not in _TRANSPORT_FIELDS}


def options_fingerprint(*parts: object) -> str:
    """A stable fingerprint of server-side options, e.g. ``(gw.options, cli_version)``.

    attrs instances (such as ``PlanOptions``) are encoded field by field, so any option
    that changes makes a new fingerprint; the fingerprint hides values (e.g. extra_env).
    """
    return hashlib.sha256(_canonical_json(list(parts))).hexdigest()


def refreshed(completion: Mapping[str, Any], *, completion_id: str,
              created: int) -> dict[str, Any]:
    """A cached completion as a new response: same answer, its own ``id`` and ``created``."""
    return {**completion, "id": completion_id, "created": created}


class ResponseCache:
    """An LRU of completions whose entries also expire ``cache.ttl_seconds`` after storing.

    Disabled (the default), `get` always misses without counting and `put` stores nothing.
    Trio runs every request on one thread, so no lock is needed.
    """

    def __init__(self, settings: CacheSettings, *,
                 timer: Callable[[], float] = time.monotonic) -> None:
        self.enabled = settings.enabled
        self._entries: TTLCache[str, Any] = TTLCache(
            maxsize=settings.max_entries, ttl=settings.ttl_seconds, timer=timer
        )
        self.hits = 0
        self.misses = 0
        self.stores = 0

    @staticmethod
    def key_for(request_body_canonical: Mapping[str, Any], options_fingerprint: str) -> str:
        """The cache key: sha256 over canonical JSON of the request and the options."""
        document = {"options": options_fingerprint, "request": request_body_canonical}
        return hashlib.sha256(_canonical_json(document)).hexdigest()

    def get(self, key: str) -> Any | None:
        """The stored value (a hit, counted), or None (a miss, counted when enabled)."""
        if not self.enabled:
            return None
        value = self._entries.get(key)
        if value is None:
            self.misses += 1
        else:
            self.hits += 1
        return value

    def put(self, key: str, value: Any) -> None:
        """Store ``value`` (not None); evicts the least recently used entry when full."""
        if self.enabled and value is not None:
            self._entries[key] = value
            self.stores += 1

    def __len__(self) -> int:
        self._entries.expire()
        return len(self._entries)

    def counters(self) -> dict[str, int | bool]:
        """For /stats and /metrics."""
        return {"enabled": self.enabled, "entries": len(self), "hits": self.hits,
                "misses": self.misses, "stores": self.stores}
