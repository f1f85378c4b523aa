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

Where the entries live: in this process, or in the shared Redis when conversations live
there (`ResponseCache` with a link), so that a question answered by one gateway is a hit on
all of them.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

import attrs
from cachetools import TTLCache

from ..cluster import KEY_PREFIX
from ..cluster.link import RedisLink
from ..errors import StoreUnavailable
from ..settings.sections import CacheSettings

__all__ = [
    "ResponseCache", "canonical_request", "is_cacheable_request", "options_fingerprint",
    "refreshed",
]

log = logging.getLogger("ccserver.cache")

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
    """Completions kept ``cache.ttl_seconds`` after storing: in memory, or in Redis.

    In memory (no ``link``): an LRU of at most ``cache.max_entries`` entries. In Redis
    (``link``, when conversations live there): one key per entry, ``<prefix>cache:<key>``
    holding the completion's JSON, set with ``PX`` = the TTL, shared by every gateway on that
    Redis. ``max_entries`` does not apply there, since no LRU spans gateways: the TTL bounds
    the entries (one per distinct question asked within it), and Redis's own ``maxmemory``
    with an ``allkeys-lru`` or ``volatile-ttl`` policy can bound the memory they take.

    Hits, misses and stores are counted per gateway in both cases. A cache in Redis never
    fails a request: a get that fails is a miss, a put that fails is skipped; the first
    failure after a success is logged, the next ones are not until one succeeds again.
    Disabled (the default), `get` always misses without counting and `put` stores nothing.
    Trio runs every request on one thread, so no lock is needed.
    """

    def __init__(self, settings: CacheSettings, *, link: RedisLink | None = None,
                 prefix: str = KEY_PREFIX, timer: Callable[[], float] = time.monotonic) -> None:
        self.enabled = settings.enabled
        self.link = link
        self._prefix = f"{prefix}cache:"
        self._ttl_ms = max(1, round(settings.ttl_seconds * 1000))
        self._entries: TTLCache[str, Any] = TTLCache(
            maxsize=settings.max_entries, ttl=settings.ttl_seconds, timer=timer
        )
        self._failing = False
        self.hits = 0
        self.misses = 0
        self.stores = 0

    @staticmethod
    def key_for(request_body_canonical: Mapping[str, Any], options_fingerprint: str) -> str:
        """The cache key: sha256 over canonical JSON of the request and the options."""
        document = {"options": options_fingerprint, "request": request_body_canonical}
        return hashlib.sha256(_canonical_json(document)).hexdigest()

    async def get(self, key: str) -> Any | None:
        """The stored value (a hit, counted), or None (a miss, counted when enabled)."""
        if not self.enabled:
            return None
        value = self._entries.get(key) if self.link is None else await self._fetch(key)
        if value is None:
            self.misses += 1
        else:
            self.hits += 1
        return value

    async def put(self, key: str, value: Any) -> None:
        """Store ``value`` (not None); in memory, evicts the least recently used when full."""
        if not self.enabled or value is None:
            return
        if self.link is None:
            self._entries[key] = value
        else:
            data = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
            name, ttl = self._prefix + key, self._ttl_ms
            try:
                await self.link.call(lambda r: r.set(name, data, px=ttl))
            except StoreUnavailable as exc:
                self._failed("store", exc)
                return
            self._answered()
        self.stores += 1

    async def _fetch(self, key: str) -> Any | None:
        assert self.link is not None
        name = self._prefix + key
        try:
            raw = await self.link.call(lambda r: r.get(name))
        except StoreUnavailable as exc:
            self._failed("read", exc)
            return None
        self._answered()
        try:
            return None if raw is None else json.loads(raw)
        except ValueError:  # not written by this cache: as good as absent
            return None

    def _failed(self, what: str, exc: StoreUnavailable) -> None:
        if not self._failing:
            self._failing = True
            log.warning("response cache: could not %s an entry, going on without (%s)",
                        what, exc)

    def _answered(self) -> None:
        if self._failing:
            self._failing = False
            log.info("response cache: the shared store answers again")

    def __len__(self) -> int:
        """Entries in memory (none when the cache is in Redis)."""
        self._entries.expire()
        return len(self._entries)

    def counters(self) -> dict[str, int | bool | str]:
        """For /stats and /metrics: this gateway's figures. In Redis, no ``entries`` (the
        gateways' common count is not this gateway's) but ``"backend": "redis"``."""
        if self.link is not None:
            return {"enabled": self.enabled, "backend": "redis", "hits": self.hits,
                    "misses": self.misses, "stores": self.stores}
        return {"enabled": self.enabled, "entries": len(self), "hits": self.hits,
                "misses": self.misses, "stores": self.stores}
