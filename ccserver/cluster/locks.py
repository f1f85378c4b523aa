"""Locks that several gateways share in Redis, one per key, each with an expiry.

A lock's value is its gateway's id, not a per-turn token: within a gateway, turns of one
conversation already queue on its local lock (`KeyedLocks`), so the Redis lock only says
which gateway may run the conversation. A gateway counts its own holders (a turn, the
transcript upload that follows it), so taking a lock it already holds costs no round trip,
and the lock goes back to Redis when the last holder lets go.

Expiry is what makes a crashed gateway harmless: `renew_forever` pushes every held lock's
expiry out every third of ``ttl``, all in one script call; a gateway that stops renewing
(killed, frozen, cut off) loses its locks ``ttl`` seconds later and another gateway can
take the conversation. Releasing deletes the key only if it still names this gateway.
"""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any, Protocol

import trio
from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from ..errors import StoreUnavailable
from . import KEY_PREFIX
from .link import RedisLink

__all__ = ["Reads", "SharedLocks"]

log = logging.getLogger("ccserver.cluster")

# KEYS[1] the lock; ARGV owner, ttl ms. 1 if this owner holds it now (taken or renewed).
_TAKE = """
local current = redis.call('GET', KEYS[1])
if current == false then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
elseif current == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
"""
# KEYS locks; ARGV owner. Deletes those the owner holds.
_RELEASE = """
for _, key in ipairs(KEYS) do
  if redis.call('GET', key) == ARGV[1] then redis.call('DEL', key) end
end
return 0
"""
# KEYS locks; ARGV owner, ttl ms. The keys the owner no longer holds (expired, taken).
_RENEW = """
local lost = {}
for _, key in ipairs(KEYS) do
  if redis.call('GET', key) == ARGV[1] then
    redis.call('PEXPIRE', key, ARGV[2])
  else
    table.insert(lost, key)
  end
end
return lost
"""


class Reads(Protocol):
    """Commands to run in the same round trip as taking a lock, atomically with it (so they
    see the state the lock now guards), and what they answered."""

    def queue(self, pipe: Pipeline) -> None: ...
    def answered(self, results: list[Any]) -> None: ...


class SharedLocks:
    """Per-key locks in Redis, owned by one gateway (``owner``), expiring after ``ttl``."""

    def __init__(self, link: RedisLink, owner: str, *, ttl: float,
                 prefix: str = KEY_PREFIX) -> None:
        self._link, self.owner, self.ttl = link, owner, ttl
        self._prefix = prefix + "lock:"
        #: How many holders each key has in this gateway.
        self._holders: Counter[str] = Counter()
        #: Locks let go while Redis was away: given back as soon as it answers again,
        #: rather than blocking their conversations until they expire.
        self._unreleased: set[str] = set()
        #: Giving those back and taking one of them again never interleave.
        self._mending = trio.Lock()

    def held(self, key: str) -> bool:
        return self._holders[key] > 0

    async def acquire(self, key: str, wait: float, reads: Reads | None = None) -> bool:
        """Take ``key`` for this gateway, waiting up to ``wait`` seconds for another
        gateway to let go; False on timeout. ``reads`` run with the take that succeeds
        (none when this gateway holds the lock already: the caller reads then).

        Raises:
            StoreUnavailable: Redis did not answer.
        """
        if self._holders[key]:
            self._holders[key] += 1
            return True
        if key in self._unreleased:
            async with self._mending:
                self._unreleased.discard(key)
                if await self._take(key, reads):
                    self._holders[key] += 1
                    return True
        deadline = trio.current_time() + wait
        pause = 0.005
        while not await self._take(key, reads):
            if trio.current_time() + pause > deadline:
                return False
            await trio.sleep(pause)  # polled: a turn lasts seconds, a wake-up channel
            pause = min(pause * 2, 0.1)  # would be one more thing to lose with Redis
        self._holders[key] += 1
        return True

    def retain(self, key: str) -> None:
        """One more holder of a lock this gateway holds (work that outlives the turn)."""
        assert self._holders[key], f"{key} is not held"
        self._holders[key] += 1

    async def release(self, key: str) -> None:
        """One holder fewer; the last one gives the lock back to Redis. A Redis that does
        not answer is logged: the lock then frees itself when it expires."""
        self._holders[key] -= 1
        if self._holders[key] > 0:
            return
        del self._holders[key]
        try:
            await self._eval(_RELEASE, [key], self.owner)
        except StoreUnavailable as exc:
            self._unreleased.add(key)
            log.warning("conversation lock %s not released (%s): retried while it lasts",
                        key, exc)

    async def renew_forever(self) -> None:
        """Keep this gateway's locks from expiring while it lives, and give back those
        that Redis missed."""
        tick = min(1.0, self.ttl / 3)
        since_renewal = 0.0
        while True:
            await trio.sleep(tick)
            since_renewal += tick
            if self._unreleased:
                await self._release_missed()
            keys = [k for k, n in self._holders.items() if n > 0]
            if not keys or since_renewal < self.ttl / 3:
                continue
            since_renewal = 0.0
            try:
                lost = await self._eval(_RENEW, keys, self.owner, int(self.ttl * 1000))
            except StoreUnavailable as exc:
                log.warning("conversation locks not renewed: %s", exc)
                continue
            for key in lost:
                # Nothing stops the turn in progress; it was longer than the store allowed.
                log.error("conversation lock %r expired while this gateway held it: another "
                          "gateway may run the conversation too", key)

    async def _release_missed(self) -> None:
        async with self._mending:
            keys = sorted(self._unreleased)
            try:
                await self._eval(_RELEASE, keys, self.owner)
            except StoreUnavailable:
                return  # still away; the expiry frees them at the latest
            self._unreleased.difference_update(keys)

    async def _take(self, key: str, reads: Reads | None) -> bool:
        if reads is None:
            return bool(await self._eval(_TAKE, [key], self.owner, int(self.ttl * 1000)))

        async def run(r: Redis) -> list[Any]:
            pipe = r.pipeline(transaction=True)  # MULTI ... EXEC: nothing in between
            pipe.eval(_TAKE, 1, self._prefix + key, self.owner, int(self.ttl * 1000))
            reads.queue(pipe)
            return await pipe.execute()

        taken, *results = await self._link.call(run)
        if taken:
            reads.answered(results)
        return bool(taken)

    async def _eval(self, script: str, keys: list[str], *args: str | int) -> Any:
        async def run(r: Redis) -> Any:
            return await r.eval(script, len(keys), *(self._prefix + k for k in keys), *args)

        return await self._link.call(run)
