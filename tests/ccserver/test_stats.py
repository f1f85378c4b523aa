"""/stats and /metrics: counting, percentiles, sources, Prometheus text, the access log line."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from ccserver.app import ROUTES, App
from ccserver.edge.accesslog import access_line
from ccserver.edge.asgi import Receive, Scope, Send, send_json
from ccserver.edge.metrics import Stats, percentile
from ccserver.gateway import Gateway
from ccserver.settings import Settings
from tests.support.asgi_client import request


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def samples(stats: Stats) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(stats.prometheus().decode()):
        for s in family.samples:
            found[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return found


@pytest.mark.parametrize(("values", "p", "expected"), [
    ([], 50, 0.0), ([3.0], 99, 3.0), ([1.0, 2.0, 3.0, 4.0], 50, 2.0),
    ([float(i) for i in range(1, 101)], 90, 90.0), ([float(i) for i in range(1, 101)], 99, 99.0),
])
def test_percentile_is_nearest_rank(values: list[float], p: float, expected: float) -> None:
    assert percentile(values, p) == expected


def test_snapshot_counts_requests_tokens_cost_and_latency() -> None:
    clock = Clock()
    stats = Stats(clock=clock)
    for duration in (0.1, 0.2, 0.3, 0.4):
        stats.record(endpoint="/chat/completions", method="POST", status=200, duration=duration,
                     log={"model": "sonnet", "prompt_tokens": 10, "completion_tokens": 5,
                          "cost_usd": 0.25})
    stats.record(endpoint="/chat/completions", method="POST", status=429, duration=0.01)
    stats.record(endpoint="unmatched", method="BREW", status=404, duration=0.001)
    clock.now += 7.5
    snap = stats.snapshot()
    assert snap["uptime_seconds"] == 7.5
    assert snap["requests"] == {"total": 6, "by_endpoint": {
        "OTHER unmatched": {"404": 1}, "POST /chat/completions": {"200": 4, "429": 1}}}
    assert snap["tokens"] == {"prompt": 40, "completion": 20}
    assert snap["cost_usd"] == 1.0
    latency = snap["latency_seconds"]
    assert latency["count"] == 6 and latency["p50"] == 0.1 and latency["p99"] == 0.4
    assert latency["by_endpoint"]["POST /chat/completions"]["p90"] == 0.4


def test_bad_published_values_are_ignored() -> None:
    stats = Stats()
    stats.record(endpoint="/x", method="GET", status=200, duration=0.0,
                 log={"prompt_tokens": "12", "completion_tokens": -3, "cost_usd": float("nan")})
    assert stats.snapshot()["tokens"] == {"prompt": 0, "completion": 0}
    assert stats.snapshot()["cost_usd"] == 0.0


def test_extra_sources_appear_in_both_outputs() -> None:
    stats = Stats()
    stats.add_source("pool", lambda: {"warm": 3, "spawned": 7, "by_model": {"sonnet": 2}},
                     counters=("spawned",))
    stats.extra_sources["conversations"] = lambda: {"active": 4}

    def broken() -> dict[str, Any]:
        raise RuntimeError("store closed")

    stats.add_source("broken", broken)
    snap = stats.snapshot()
    assert snap["pool"] == {"warm": 3, "spawned": 7, "by_model": {"sonnet": 2}}
    assert snap["conversations"] == {"active": 4}
    assert snap["broken"] == {"error": "store closed"}
    found = samples(stats)
    assert found[("ccserver_pool_warm", ())] == 3
    assert found[("ccserver_pool_spawned_total", ())] == 7
    assert found[("ccserver_pool_by_model_sonnet", ())] == 2
    assert found[("ccserver_conversations_active", ())] == 4
    with pytest.raises(ValueError):
        stats.add_source("requests", lambda: {})


def test_prometheus_text_has_the_counters() -> None:
    stats = Stats()
    stats.record(endpoint="/models", method="GET", status=200, duration=0.02,
                 log={"prompt_tokens": 3, "completion_tokens": 4, "cost_usd": 0.5})
    found = samples(stats)
    assert found[("ccserver_requests_total",
                  (("endpoint", "/models"), ("method", "GET"), ("status", "200")))] == 1
    assert found[("ccserver_tokens_total", (("kind", "prompt"),))] == 3
    assert found[("ccserver_tokens_total", (("kind", "completion"),))] == 4
    assert found[("ccserver_cost_usd_total", ())] == 0.5
    assert found[("ccserver_request_duration_seconds_count", (("endpoint", "/models"),))] == 1
    assert ("ccserver_uptime_seconds", ()) in found


def test_each_stats_has_its_own_registry() -> None:
    a, b = Stats(), Stats()  # the global registry would refuse the second set of names
    a.record(endpoint="/models", method="GET", status=200, duration=0.0)
    assert not any(name == "ccserver_requests_total" for name, _ in samples(b))


async def published(gw: Gateway, scope: Scope, receive: Receive, send: Send,
                    headers: list[tuple[str, str]]) -> int:
    # What a chat handler does: publish its facts for the access log and the stats.
    scope["ccserver.log"] = {"conversation_id": "conv_7", "model": "sonnet", "prompt_tokens": 11,
                             "completion_tokens": 22, "cost_usd": 0.003}
    await send_json(send, 200, {"ok": True}, headers)
    return 200


async def test_the_app_records_every_request_and_logs_one_line(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="ccserver.access")
    monkeypatch.setitem(ROUTES, "/test-published", {"POST": published})
    app = App(Settings())
    await app.gateway.cache.put("k", "v")  # disabled by default: counts nothing
    await request(app, "POST", "/v1/test-published", headers=[("x-request-id", "req-abc")])
    await request(app, "GET", "/v1/models/sonnet")
    await request(app, "GET", "/v1/models/nope")
    await request(app, "GET", "/nowhere")
    snap = (await request(app, "GET", "/stats")).json()
    assert snap["requests"]["by_endpoint"] == {
        "POST /test-published": {"200": 1}, "GET /models/{}": {"200": 1, "404": 1},
        "GET unmatched": {"404": 1}}
    assert snap["tokens"] == {"prompt": 11, "completion": 22}
    assert snap["processes"] == {"live": 0, "queued": 0}
    assert snap["cache"]["enabled"] is False
    line = next(r.getMessage() for r in caplog.records if "req-abc" in r.getMessage())
    assert line.startswith("request_id=req-abc method=POST path=/v1/test-published status=200 ")
    assert "conversation_id=conv_7 model=sonnet prompt_tokens=11 completion_tokens=22" in line
    metrics = await request(app, "GET", "/metrics")
    assert metrics.status == 200
    assert (metrics.header("content-type") or "").startswith("text/plain")
    text = metrics.body.decode()
    assert 'ccserver_requests_total{endpoint="/models/{}",method="GET",status="404"} 1.0' in text
    assert "ccserver_processes_live 0.0" in text and "ccserver_cache_hits_total 0.0" in text


def test_access_line_quotes_what_could_break_it() -> None:
    line = access_line(request_id="r1", method="GET", path="/v1/x y\nforged=1", status=404,
                       duration=0.01234, published={"model": "a b", "secret": "no", "cost_usd": 0.5})
    assert line == ('request_id=r1 method=GET path="/v1/x y\\nforged=1" status=404 '
                    'duration_ms=12.3 model="a b" cost_usd=0.5')


async def cancelled_after_sending(gw: Gateway, scope: Scope, receive: Receive, send: Send,
                                  headers: list[tuple[str, str]]) -> int:
    # A handler cancelled by the disconnect Hypercorn reports during its last send.
    await send_json(send, 200, {"ok": True}, headers)
    return 499


async def test_a_response_sent_in_full_is_logged_with_its_status(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(ROUTES, "/test-sent", {"GET": cancelled_after_sending})
    app = App(Settings())
    assert (await request(app, "GET", "/test-sent")).status == 200
    assert app.gateway.stats.snapshot()["requests"]["by_endpoint"] == {"GET /test-sent": {"200": 1}}
