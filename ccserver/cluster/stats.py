"""The cluster's figures: every gateway publishes its /stats snapshot to the shared Redis,
and any gateway adds them up.

`ClusterStats.run` writes this gateway's snapshot (JSON) every ``interval`` seconds to
``<prefix>gw:<gateway_id>`` with an expiry of three intervals, and adds the id to the set
``<prefix>gateways``, the index that spares a SCAN over the whole keyspace. A gateway that
stops (or dies) stops refreshing its key, which expires: it drops out of the cluster within
three intervals. (No goodbye at shutdown: the link closes in the same cancelled nursery, so
a last write would race it.) `ClusterStats.read` takes the index, reads the keys still
there and removes the ids whose key expired (a gateway that writes between the two is
listed again at its next publish).

The totals add up every numeric leaf of the snapshots, key by key at any depth (requests,
tokens, cost, processes, cache and pool counters ...), except the top-level parts in
``unsummed`` (uptime and latency percentiles, which do not add up) and booleans (flags).

Publishing never fails the gateway: a failed write is logged (once, until one succeeds)
and the loop goes on.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Collection, Iterable, Mapping
from typing import Any

import trio
from redis.asyncio import Redis

from ..errors import StoreUnavailable
from . import KEY_PREFIX
from .link import RedisLink

__all__ = ["ClusterStats", "add_up"]

log = logging.getLogger("ccserver.cluster")

Snapshot = Callable[[], Mapping[str, Any]]

#: Parts of a /stats snapshot whose numbers do not add up across gateways.
UNSUMMED = frozenset({"uptime_seconds", "latency_seconds"})


def _number(value: object) -> float | int | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return value if math.isfinite(value) else None


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _add_into(total: dict[str, Any], part: Mapping[str, Any]) -> None:
    for key, value in part.items():
        if isinstance(value, Mapping):
            below = total.get(key)
            if not isinstance(below, dict):
                if below is not None:
                    continue  # a number here, a mapping elsewhere: not the same figure
                below = total[key] = {}
            _add_into(below, value)
        elif (number := _number(value)) is not None:
            current = total.get(key, 0)
            if isinstance(current, int | float):
                total[key] = current + number


def _rounded(total: dict[str, Any]) -> dict[str, Any]:
    # Float sums drift in the last digits (0.1 + 0.2); /stats rounds costs to 6 places.
    return {k: _rounded(v) if isinstance(v, dict) else round(v, 6) if isinstance(v, float)
            else v for k, v in total.items() if v != {}}


def add_up(snapshots: Iterable[Mapping[str, Any]], *,
           unsummed: Collection[str] = UNSUMMED) -> dict[str, Any]:
    """The sum of every numeric leaf of ``snapshots``, by key path; non-numbers dropped."""
    total: dict[str, Any] = {}
    for snapshot in snapshots:
        _add_into(total, {k: v for k, v in snapshot.items() if k not in unsummed})
    return _rounded(total)


class ClusterStats:
    """This gateway's figures published, and every live gateway's added up."""

    def __init__(self, link: RedisLink, gateway_id: str, snapshot: Snapshot, *,
                 interval: float = 5.0, prefix: str = KEY_PREFIX,
                 unsummed: Collection[str] = UNSUMMED) -> None:
        self.link, self.gateway_id, self.interval = link, gateway_id, interval
        self._snapshot = snapshot
        self._unsummed = unsummed
        self._prefix = f"{prefix}gw:"
        self._index = f"{prefix}gateways"
        self._failing = False

    def _key(self, gateway_id: str) -> str:
        return self._prefix + gateway_id

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
                  ) -> None:
        """Publish every ``interval`` seconds until cancelled."""
        task_status.started()
        while True:
            await self.publish()
            await trio.sleep(self.interval)

    async def publish(self) -> bool:
        """Write this gateway's snapshot now; False (logged) if Redis did not take it."""
        try:
            data = json.dumps(self._snapshot(), separators=(",", ":"), default=str)
        except Exception:  # a broken figure must not stop the publishing, nor the server
            log.exception("cluster stats: this gateway's snapshot failed")
            return False
        key, index, gateway_id = self._key(self.gateway_id), self._index, self.gateway_id
        ttl = max(1, round(self.interval * 3 * 1000))  # three intervals, in ms

        async def write(r: Redis) -> None:
            async with r.pipeline(transaction=True) as pipe:
                pipe.set(key, data, px=ttl)
                pipe.sadd(index, gateway_id)
                pipe.pexpire(index, ttl)
                await pipe.execute()

        try:
            await self.link.call(write)
        except StoreUnavailable as exc:
            if not self._failing:
                log.warning("cluster stats: could not publish this gateway's figures (%s); "
                            "trying again every %g s", exc, self.interval)
            self._failing = True
            return False
        if self._failing:
            log.info("cluster stats: published again")
        self._failing = False
        return True

    async def read(self, own: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The cluster view: ``{"gateways": [ids], "count": n, "totals": {...}}``.

        This gateway counts with ``own`` (or a fresh snapshot), not its last published one,
        so that its figures in /stats and in the totals agree.

        Raises:
            StoreUnavailable: Redis did not answer.
        """
        index, prefix = self._index, self._prefix

        async def fetch(r: Redis) -> list[tuple[str, bytes | str]]:
            ids = sorted(_text(m) for m in await r.smembers(index))
            values = await r.mget([prefix + i for i in ids]) if ids else []
            if dead := [i for i, v in zip(ids, values, strict=True) if v is None]:
                await r.srem(index, *dead)
            return [(i, v) for i, v in zip(ids, values, strict=True) if v is not None]

        published = await self.link.call(fetch)
        snapshots: dict[str, Mapping[str, Any]] = {}
        for gateway_id, raw in published:
            try:
                value = json.loads(raw)
            except ValueError:
                continue
            if isinstance(value, dict):
                snapshots[gateway_id] = value
        snapshots[self.gateway_id] = self._snapshot() if own is None else own
        return {"gateways": sorted(snapshots), "count": len(snapshots),
                "totals": add_up(snapshots.values(), unsummed=self._unsummed)}
