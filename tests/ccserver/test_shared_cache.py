"""The response cache in a real Redis: shared by gateways, expiring by TTL, and never a
failed request when Redis is down; then a hit across two gateways through the ASGI app."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
import redis
import trio

from ccserver.app import App
from ccserver.cluster import KEY_PREFIX
from ccserver.cluster.link import RedisLink
from ccserver.core.cache import ResponseCache
from ccserver.settings.sections import CacheSettings
from tests.support.asgi_client import lifespan, request
from tests.support.redis import open_link, running_redis
from tests.support.replay import ReplayCLI
from tests.support.settings import settings_under

ENTRY = {"id": "chatcmpl-1", "object": "chat.completion", "created": 1,
         "choices": [{"index": 0, "message": {"role": "assistant", "content": "héllo"}}]}



def shared(link: RedisLink, **settings: Any) -> ResponseCache:
    return ResponseCache(CacheSettings(**{"enabled": True, **settings}), link=link)


async def test_an_entry_stored_by_one_gateway_is_a_hit_on_another(redis_url: str) -> None:
    async with open_link(redis_url) as link_a, open_link(redis_url) as link_b:
        a, b = shared(link_a), shared(link_b)
        assert await b.get("k1") is None
        await a.put("k1", ENTRY)
        assert await b.get("k1") == ENTRY
        # Each gateway counts its own figures; none counts the other's entries.
        assert a.counters() == {"enabled": True, "backend": "redis", "hits": 0, "misses": 0,
                                "stores": 1}
        assert b.counters() == {"enabled": True, "backend": "redis", "hits": 1, "misses": 1,
                                "stores": 0}
    ttl = redis.Redis.from_url(redis_url).pttl(f"{KEY_PREFIX}cache:k1")
    assert 0 < ttl <= 3_600_000  # the default ttl_seconds, in ms


async def test_entries_expire_after_the_ttl(redis_url: str) -> None:
    async with open_link(redis_url) as link:
        cache = shared(link, ttl_seconds=0.2)
        await cache.put("k", ENTRY)
        name = f"{KEY_PREFIX}cache:k"
        assert 0 < await link.call(lambda r: r.pttl(name)) <= 200
        while await link.call(lambda r: r.exists(name)):  # Redis expires it; no timing here
            await trio.sleep(0.05)
        assert await cache.get("k") is None


async def test_a_disabled_cache_does_not_touch_redis(redis_url: str) -> None:
    async with open_link(redis_url) as link:
        cache = ResponseCache(CacheSettings(), link=link)
        await cache.put("k", ENTRY)
        assert await cache.get("k") is None
        assert await link.call(lambda r: r.dbsize()) == 0


async def test_redis_down_is_a_miss_and_a_skipped_store_logged_once(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="ccserver.cache")
    with running_redis(tmp_path / "r") as server:
        async with open_link(server.url, timeout=0.5) as link:
            cache = shared(link)
            await cache.put("k", ENTRY)
            server.stop()
            assert await cache.get("k") is None
            await cache.put("k2", ENTRY)
            await cache.put("k3", ENTRY)
            assert cache.counters()["misses"] == 1 and cache.counters()["stores"] == 1
            warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
            assert len(warnings) == 1 and "going on without" in warnings[0].getMessage()
            await trio.to_thread.run_sync(server.start)
            assert await cache.get("k") == ENTRY  # appendfsync always: it was kept
            assert "answers again" in caplog.records[-1].getMessage()


async def test_a_value_that_is_not_json_is_a_miss(redis_url: str) -> None:
    async with open_link(redis_url) as link:
        await link.call(lambda r: r.set(f"{KEY_PREFIX}cache:k", b"\xff not json"))
        cache = shared(link)
        assert await cache.get("k") is None and cache.counters()["misses"] == 1


BODY = b'{"model": "sonnet", "messages": [{"role": "user", "content": "hi"}]}'


async def test_a_question_answered_by_one_gateway_is_a_hit_on_the_other(
        tmp_path: Path, redis_url: str, replay_cli: ReplayCLI) -> None:
    # Configured alike, as gateways behind one load balancer are: the same options, the
    # same key. (Their SQLite store is one file here; the conversation is not continued.)
    settings = settings_under(tmp_path)(
        claude={"command": replay_cli.command, "extra_env": replay_cli.env},
        pool={"size": 0, "idle_seconds": 0}, cache={"enabled": True},
        conversation={"store_url": redis_url})
    a, b = App(settings), App(settings)
    async with lifespan(a), lifespan(b):
        first = await request(a, "POST", "/v1/chat/completions", body=BODY)
        assert first.status == 200 and first.header("x-cache") == "miss"
        second = await request(b, "POST", "/v1/chat/completions", body=BODY)
        assert second.status == 200 and second.header("x-cache") == "hit"
        assert second.json()["choices"] == first.json()["choices"]
        assert second.json()["id"] != first.json()["id"]
    assert len(replay_cli.runs()) == 1  # one CLI turn for both answers
