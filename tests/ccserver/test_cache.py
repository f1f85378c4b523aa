"""The response cache: key coverage and unambiguity, LRU + TTL, the cacheability rule."""

from __future__ import annotations

from typing import Any

import attrs
import pytest

from ccserver.core.cache import (
    ResponseCache,
    canonical_request,
    is_cacheable_request,
    options_fingerprint,
    refreshed,
)
from ccserver.settings.sections import CacheSettings

BODY: dict[str, Any] = {
    "model": "sonnet",
    "messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}],
}


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@attrs.frozen
class Options:
    model_map: dict[str, str] = attrs.Factory(dict)
    tools: str = "default"


def cache(clock: Clock | None = None, **settings: Any) -> ResponseCache:
    settings.setdefault("enabled", True)
    return ResponseCache(CacheSettings(**settings), timer=clock or Clock())


def key(body: dict[str, Any], options: str = "o") -> str:
    return ResponseCache.key_for(canonical_request(body), options)


def test_key_ignores_field_order_and_transport_fields() -> None:
    reordered = {"messages": BODY["messages"], "model": "sonnet", "stream": False, "user": "u1"}
    assert key(BODY) == key(reordered)
    assert len(key(BODY)) == 64


@pytest.mark.parametrize("change", [
    {"model": "opus"},
    {"messages": [{"role": "system", "content": "be long"}, {"role": "user", "content": "hi"}]},
    {"messages": [{"role": "user", "content": "hi"}]},
    {"messages": [{"role": "developer", "content": "be brief"}, {"role": "user", "content": "hi"}]},
    {"tools": [{"type": "function", "function": {"name": "f"}}]},
    {"reasoning_effort": "high"},
    {"temperature": 0.2},
])
def test_every_answer_changing_field_changes_the_key(change: dict[str, Any]) -> None:
    assert key(BODY) != key({**BODY, **change})


def test_key_is_unambiguous_where_joined_strings_are_not() -> None:
    a = {"model": "m", "messages": [{"role": "user", "content": "ab"}, {"role": "user", "content": "c"}]}
    b = {"model": "m", "messages": [{"role": "user", "content": "a"}, {"role": "user", "content": "bc"}]}
    assert key(a) != key(b)
    assert key(BODY, "o1") != key(BODY, "o2")
    # The request and the fingerprint are separate fields, not concatenated text.
    assert ResponseCache.key_for({"x": "1"}, "2") != ResponseCache.key_for({"x": "12"}, "")


def test_options_fingerprint_follows_every_option() -> None:
    base = options_fingerprint(Options(), "2.1.197")
    assert base == options_fingerprint(Options(), "2.1.197")
    assert base != options_fingerprint(Options(tools=""), "2.1.197")
    assert base != options_fingerprint(Options(model_map={"gpt-4o": "opus"}), "2.1.197")
    assert base != options_fingerprint(Options(), "2.1.198")


async def test_hits_misses_and_stores_are_counted() -> None:
    c = cache()
    k = key(BODY)
    assert await c.get(k) is None
    await c.put(k, {"id": "chatcmpl-1", "created": 1, "choices": []})
    assert await c.get(k) == {"id": "chatcmpl-1", "created": 1, "choices": []}
    assert c.counters() == {"enabled": True, "entries": 1, "hits": 1, "misses": 1, "stores": 1}


async def test_entries_expire_after_the_ttl() -> None:
    clock = Clock()
    c = cache(clock, ttl_seconds=10.0)
    await c.put("k", "v")
    clock.now = 9.9
    assert await c.get("k") == "v"
    clock.now = 10.1
    assert await c.get("k") is None and len(c) == 0


async def test_least_recently_used_goes_first_beyond_max_entries() -> None:
    c = cache(max_entries=2)
    await c.put("a", 1)
    await c.put("b", 2)
    assert await c.get("a") == 1  # a is now the most recently used
    await c.put("c", 3)
    assert await c.get("b") is None and await c.get("a") == 1 and await c.get("c") == 3


async def test_disabled_cache_stores_and_counts_nothing() -> None:
    c = ResponseCache(CacheSettings())
    await c.put("k", "v")
    assert await c.get("k") is None
    assert c.counters() == {"enabled": False, "entries": 0, "hits": 0, "misses": 0, "stores": 0}


@pytest.mark.parametrize(("body", "conversation_id", "cacheable"), [
    (BODY, None, True),
    ({**BODY, "stream": True}, None, False),
    (BODY, "conv_1", False),
    ({**BODY, "conversation_id": "conv_1"}, None, False),
    ({**BODY, "tools": [{"type": "function"}]}, None, False),
    ({**BODY, "tools": []}, None, True),
    ({**BODY, "tool_choice": "auto"}, None, False),
    ({**BODY, "messages": [{"role": "assistant", "tool_calls": [{"id": "c"}]}, {"role": "tool", "content": "x"}]}, None, False),
    ({"model": "sonnet"}, None, False),
])
def test_which_requests_may_use_the_cache(body: dict[str, Any], conversation_id: str | None,
                                          cacheable: bool) -> None:
    assert is_cacheable_request(body, conversation_id=conversation_id) is cacheable


def test_a_hit_is_served_with_a_fresh_id_and_created() -> None:
    stored = {"id": "chatcmpl-old", "created": 1, "object": "chat.completion", "choices": [1]}
    fresh = refreshed(stored, completion_id="chatcmpl-new", created=99)
    assert fresh == {**stored, "id": "chatcmpl-new", "created": 99}
    assert stored["id"] == "chatcmpl-old"  # the stored entry is untouched
