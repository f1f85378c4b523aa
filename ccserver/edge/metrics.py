"""Request statistics for ``GET /stats`` (JSON) and ``GET /metrics`` (Prometheus text).

`Stats.record` is called once per request by the app, with what the handler published in
``scope["ccserver.log"]``. Live state owned elsewhere (CLI processes, the cache, the pool,
conversations; the gateway adds them) is read when asked through ``extra_sources``: each
is a callable returning a flat-ish dict of numbers, shown under its name in /stats and as
``ccserver_<name>_<key>`` in /metrics (gauges, or counters for keys named in `add_source`).

Each `Stats` owns its own Prometheus ``CollectorRegistry``: the global default registry
would mix several gateways (tests build many) and refuse the second one's metric names.
"""

from __future__ import annotations

import collections
import logging
import math
import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import prometheus_client as prom
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

__all__ = ["METRICS_CONTENT_TYPE", "Source", "Stats", "percentile"]

log = logging.getLogger("ccserver")

METRICS_CONTENT_TYPE = prom.CONTENT_TYPE_LATEST
Source = Callable[[], Mapping[str, Any]]

# Latency percentiles come from the most recent requests: bounded memory, recent behaviour.
_WINDOW = 4096
# Seconds; CLI answers take from about a second to many minutes.
_BUCKETS = (0.005, 0.025, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900)
# Label values come from clients; anything else is folded in to keep label sets bounded.
_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD"})
_CORE = frozenset({"uptime_seconds", "requests", "tokens", "cost_usd", "latency_seconds"})
_NOT_NAME = re.compile(r"[^a-zA-Z0-9_]+")


def percentile(ordered: list[float], p: float) -> float:
    """Nearest-rank percentile of an ascending list (0.0 for an empty one)."""
    if not ordered:
        return 0.0
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def _summary(samples: Iterable[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {"count": len(ordered), **{f"p{p}": round(percentile(ordered, p), 6)
                                      for p in (50, 90, 99)}}


def _number(value: object) -> float | None:
    if isinstance(value, bool | int | float):
        return float(value)
    return None


def _flatten(prefix: str, values: Mapping[str, Any]) -> Iterator[tuple[str, str, float]]:
    """(metric name, key path, value) for every number in a source's (nested) dict."""
    for key, value in values.items():
        name = _NOT_NAME.sub("_", f"{prefix}_{key}").strip("_").lower()
        if isinstance(value, Mapping):
            yield from _flatten(name, value)
        elif (number := _number(value)) is not None:
            yield name, str(key), number


class Stats:
    """Counters since start-up, a latency window, and the sources read on demand."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._started = clock()
        #: name -> callable returning that part's numbers; see the module docstring.
        self.extra_sources: dict[str, Source] = {}
        self._counter_keys: dict[str, frozenset[str]] = {}
        self.requests: collections.Counter[tuple[str, int]] = collections.Counter()
        self.prompt_tokens = 0
        self.completion_tokens = 0
        self.cost_usd = 0.0
        self._latency: collections.deque[float] = collections.deque(maxlen=_WINDOW)
        self._latency_by: dict[str, collections.deque[float]] = {}

        self.registry = prom.CollectorRegistry(auto_describe=False)
        self._requests_total = prom.Counter(
            "ccserver_requests", "HTTP requests served, by route, method and status",
            ["endpoint", "method", "status"], registry=self.registry)
        self._tokens_total = prom.Counter(
            "ccserver_tokens", "Tokens reported by the CLI, by kind (prompt or completion)",
            ["kind"], registry=self.registry)
        self._cost_total = prom.Counter(
            "ccserver_cost_usd", "Cost in USD reported by the CLI", registry=self.registry)
        self._duration = prom.Histogram(
            "ccserver_request_duration_seconds", "Time from request to last byte, by route",
            ["endpoint"], buckets=_BUCKETS, registry=self.registry)
        self.registry.register(_LiveCollector(self))

    def add_source(self, name: str, source: Source, *, counters: Iterable[str] = ()) -> None:
        """Report ``source()`` under ``name``; keys in ``counters`` only ever grow."""
        if name in _CORE:
            raise ValueError(f"{name!r} is a built-in part of /stats")
        self.extra_sources[name] = source
        self._counter_keys[name] = frozenset(counters)

    @property
    def uptime(self) -> float:
        return self._clock() - self._started

    def record(self, *, endpoint: str, method: str, status: int, duration: float,
               log: Mapping[str, Any] | None = None) -> None:
        """Count one finished request; ``log`` is the handler's ``scope["ccserver.log"]``.

        ``endpoint`` is the route pattern (``/models/{}``), never the raw path, so the
        number of series stays bounded; "unmatched" for paths without a route.
        """
        method = method if method in _METHODS else "OTHER"
        label = f"{method} {endpoint}"
        self.requests[(label, status)] += 1
        self._requests_total.labels(endpoint, method, str(status)).inc()
        self._latency.append(duration)
        self._latency_by.setdefault(label, collections.deque(maxlen=_WINDOW)).append(duration)
        self._duration.labels(endpoint).observe(duration)
        log = log or {}
        prompt, completion = log.get("prompt_tokens"), log.get("completion_tokens")
        cost = log.get("cost_usd")
        if isinstance(prompt, int) and prompt > 0:
            self.prompt_tokens += prompt
            self._tokens_total.labels("prompt").inc(prompt)
        if isinstance(completion, int) and completion > 0:
            self.completion_tokens += completion
            self._tokens_total.labels("completion").inc(completion)
        if isinstance(cost, int | float) and cost > 0 and math.isfinite(cost):
            self.cost_usd += cost
            self._cost_total.inc(cost)

    def read_sources(self) -> dict[str, Mapping[str, Any]]:
        """Each extra source's current numbers; one that fails reports its error instead."""
        found: dict[str, Mapping[str, Any]] = {}
        for name, source in self.extra_sources.items():
            try:
                found[name] = source()
            except Exception as exc:  # a broken counter must not break /stats
                log.exception("stats source %r failed", name)
                found[name] = {"error": str(exc)}
        return found

    def snapshot(self) -> dict[str, Any]:
        """The /stats document."""
        by_endpoint: dict[str, dict[str, int]] = {}
        for (label, status), count in sorted(self.requests.items()):
            by_endpoint.setdefault(label, {})[str(status)] = count
        return {
            "uptime_seconds": round(self.uptime, 3),
            "requests": {"total": sum(self.requests.values()), "by_endpoint": by_endpoint},
            "tokens": {"prompt": self.prompt_tokens, "completion": self.completion_tokens},
            "cost_usd": round(self.cost_usd, 6),
            "latency_seconds": {
                **_summary(self._latency),
                "by_endpoint": {k: _summary(v) for k, v in sorted(self._latency_by.items())},
            },
            **self.read_sources(),
        }

    def prometheus(self) -> bytes:
        """The Prometheus text exposition of the same numbers."""
        return prom.generate_latest(self.registry)


class _LiveCollector(Collector):
    """Values read at scrape time: uptime and the extra sources."""

    def __init__(self, stats: Stats) -> None:
        self._stats = stats

    def describe(self) -> Iterable[Metric]:
        return []  # names vary with the sources; nothing to check for clashes up front

    def collect(self) -> Iterable[Metric]:
        yield GaugeMetricFamily("ccserver_uptime_seconds", "Seconds since the gateway started",
                                value=self._stats.uptime)
        for source, values in self._stats.read_sources().items():
            counters = self._stats._counter_keys.get(source, frozenset())
            for name, key, value in _flatten(f"ccserver_{source}", values):
                help_text = f"{source}: {key}"
                if key in counters:
                    yield CounterMetricFamily(name, help_text, value=value)
                else:
                    yield GaugeMetricFamily(name, help_text, value=value)
