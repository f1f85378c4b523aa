"""Cluster stats against a real redis-server: gateways publish their figures, any gateway adds
them up, a gateway that stops drops out, and /stats answers while Redis is down."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
import trio

from ccserver.app import App
from ccserver.cluster import KEY_PREFIX
from ccserver.cluster.link import RedisLink
from ccserver.cluster.stats import ClusterStats, add_up
from ccserver.errors import StoreUnavailable
from tests.support.asgi_client import lifespan, request
from tests.support.redis import open_link, running_redis
from tests.support.settings import SettingsFactory


def figures(requests: int, live: int, cost: float) -> dict[str, Any]:
    return {"uptime_seconds": 12.5, "requests": {"total": requests,
                                                 "by_endpoint": {"POST /chat": {"200": requests}}},
            "cost_usd": cost, "latency_seconds": {"count": requests, "p50": 0.5},
            "processes": {"live": live, "queued": 0},
            "cache": {"enabled": True, "backend": "redis", "hits": 1},
            "broken": {"error": "store closed"}}


async def wait_gone(link: RedisLink, key: str) -> None:
    while await link.call(lambda r: r.exists(key)):  # Redis expires it; no timing here
        await trio.sleep(0.05)


def test_add_up_sums_every_numeric_leaf_but_flags_and_unsummed_parts() -> None:
    total = add_up([figures(3, 1, 0.1), figures(4, 2, 0.2), {"processes": 7, "new": {"x": 1}}])
    assert total == {"requests": {"total": 7, "by_endpoint": {"POST /chat": {"200": 7}}},
                     "cost_usd": 0.3, "processes": {"live": 3, "queued": 0},
                     "cache": {"hits": 2}, "new": {"x": 1}}


async def test_two_gateways_publish_and_either_reads_both_added_up(redis_url: str) -> None:
    async with open_link(redis_url) as link_a, open_link(redis_url) as link_b:
        a = ClusterStats(link_a, "gw_a", lambda: figures(3, 1, 0.25))
        b = ClusterStats(link_b, "gw_b", lambda: figures(5, 2, 0.5))
        assert await a.publish() and await b.publish()
        for reader in (a, b):
            view = await reader.read()
            assert view["gateways"] == ["gw_a", "gw_b"] and view["count"] == 2
            assert view["totals"]["requests"]["total"] == 8
            assert view["totals"]["processes"] == {"live": 3, "queued": 0}
            assert view["totals"]["cost_usd"] == 0.75
            assert "uptime_seconds" not in view["totals"]
        # Its own figures count as given (fresh), not as last published.
        view = await a.read(figures(10, 0, 0.0))
        assert view["totals"]["requests"]["total"] == 15
        ttl = await link_a.call(lambda r: r.pttl(f"{KEY_PREFIX}gw:gw_a"))
        assert 0 < ttl <= 15_000  # three intervals of 5 s


async def test_a_gateway_whose_key_expired_is_gone(redis_url: str) -> None:
    async with open_link(redis_url) as link:
        gone = ClusterStats(link, "gw_gone", lambda: figures(3, 1, 0.0), interval=0.05)
        here = ClusterStats(link, "gw_here", lambda: figures(5, 2, 0.0))
        assert await gone.publish() and await here.publish()
        await wait_gone(link, f"{KEY_PREFIX}gw:gw_gone")
        view = await here.read()
        assert view["gateways"] == ["gw_here"] and view["totals"]["requests"]["total"] == 5
        # Its id is cleaned out of the index too.
        assert await link.call(lambda r: r.smembers(f"{KEY_PREFIX}gateways")) == {b"gw_here"}


async def test_run_publishes_until_cancelled_and_survives_redis_down(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="ccserver.cluster")
    key = f"{KEY_PREFIX}gw:gw_1"
    with running_redis(tmp_path / "r") as server:
        async with open_link(server.url, timeout=0.5) as link:
            stats = ClusterStats(link, "gw_1", lambda: figures(1, 0, 0.0), interval=0.05)
            async with trio.open_nursery() as nursery:
                await nursery.start(stats.run)
                while not await link.call(lambda r: r.exists(key)):
                    await trio.sleep(0.02)
                server.stop()
                with pytest.raises(StoreUnavailable):
                    await stats.read()
                # The loop goes on through failures (logged once) until Redis is back.
                while not any("could not publish" in r.getMessage() for r in caplog.records):
                    await trio.sleep(0.02)
                await trio.sleep(0.2)
                await trio.to_thread.run_sync(server.start)
                while not any("published again" in r.getMessage() for r in caplog.records):
                    await trio.sleep(0.02)
                assert await link.call(lambda r: r.exists(key))
                nursery.cancel_scope.cancel()
            warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
            assert len(warnings) == 1


async def test_stats_shows_this_gateway_and_the_cluster(
        make_settings: SettingsFactory, redis_url: str) -> None:
    settings = make_settings(claude={"command": "/nonexistent/claude"}, pool={"size": 0},
                             conversation={"store_url": redis_url})
    a, b = App(settings), App(settings)
    for app in (a, b):
        assert app.gateway.cluster_stats is not None
        app.gateway.cluster_stats.interval = 0.05  # publish often: the test waits less
    async with lifespan(a), lifespan(b):
        await request(a, "GET", "/v1/models")
        await request(b, "GET", "/v1/models")
        await request(b, "GET", "/v1/models")
        while True:  # until b published what it served (a counts its own figures live)
            body = (await request(a, "GET", "/stats")).json()
            totals = body["cluster"]["totals"]["requests"]["by_endpoint"]
            if body["cluster"]["count"] == 2 and totals["GET /models"]["200"] == 3:
                break
            await trio.sleep(0.02)
        assert body["gateway"] == a.gateway.gateway_id
        assert sorted(body["cluster"]["gateways"]) == sorted(
            [a.gateway.gateway_id, b.gateway.gateway_id])
        # This gateway's figures as before; the totals count the other's.
        assert body["requests"]["by_endpoint"]["GET /models"] == {"200": 1}
        assert body["cache"] == {"enabled": False, "backend": "redis", "hits": 0, "misses": 0,
                                 "stores": 0}
        metrics = (await request(a, "GET", "/metrics")).body.decode()
        assert "ccserver_cluster" not in metrics and a.gateway.gateway_id not in metrics


async def test_stats_answers_with_this_gateways_figures_while_redis_is_down(
        make_settings: SettingsFactory, tmp_path: Path) -> None:
    with running_redis(tmp_path / "r") as server:
        app = App(make_settings(claude={"command": "/nonexistent/claude"}, pool={"size": 0},
                                conversation={"store_url": server.url,
                                              "store_timeout_seconds": 0.5}))
        async with lifespan(app):
            server.stop()
            response = await request(app, "GET", "/stats")
            assert response.status == 200
            body = response.json()
            assert body["gateway"] == app.gateway.gateway_id
            assert "did not answer" in body["cluster"]["error"]
            assert body["processes"] == {"live": 0, "queued": 0}
