"""Cold starts: at most K new CLI processes starting at once, the rest wait in order.

A CLI's start-up (loading its code, reading its settings, up to its first stdout line)
costs about one CPU-second, and nothing of it can be shared. When a burst of new
conversations starts every CLI at once, they split the cores between them and all finish
starting near the end, so nobody gets an answer early. With at most as many starting as
the cores can serve (``claude.max_cold_starts``, by default two per core: a start-up
also waits on disk and pipes, settings/startup.py has the figures), the first ones are
ready after about one start-up's time and the total is the same, so the burst's first
answers come early and the last no later.

A slot is held from the spawn until the process's first stdout line (it is ready: the
CPU-heavy part is over), or until it is gone, never for the whole turn. Warm and bound
processes start nothing, so they never wait. Warm refills take no slot: the pool starts
one only while a slot is free and no turn waits for one (`free_for_refill`), so refills
never make a turn wait behind them.
"""

from __future__ import annotations

import trio

from ..errors import Busy
from .admission import acquire_until

__all__ = ["ColdStarts"]


class ColdStarts:
    """The limit on CLI processes starting at once, with a FIFO queue
    (`trio.CapacityLimiter` serves its waiters in arrival order).

    Args:
        limit: processes allowed to start at once (``claude.max_cold_starts``, resolved).
    """

    def __init__(self, limit: int) -> None:
        self._limiter = trio.CapacityLimiter(limit)

    @property
    def limit(self) -> int:
        return int(self._limiter.total_tokens)

    @property
    def running(self) -> int:
        return self._limiter.borrowed_tokens

    @property
    def waiting(self) -> int:
        return self._limiter.statistics().tasks_waiting

    def free_for_refill(self) -> bool:
        """Whether a warm refill may start now: a slot is free and no turn waits."""
        return self._limiter.available_tokens > 0 and self.waiting == 0

    async def acquire(self, owner: object, *, deadline: float, retry_after: float) -> None:
        """Take a slot for ``owner``, waiting in line until ``deadline`` at most.

        Cancellable: a waiter cancelled (its client gone) leaves the line and holds nothing.

        Raises:
            Busy: no slot freed up by ``deadline`` (the request's queue timeout).
        """
        # The deadline covers the wait only: the start itself is bounded by the turn's own.
        if not await acquire_until(self._limiter, owner, deadline):
            raise Busy(
                "The server is starting as many Claude Code processes as its CPUs can serve, "
                "and none became free in time; retry shortly",
                retry_after=retry_after,
            )

    def release(self, owner: object) -> None:
        """Give back ``owner``'s slot (it must hold one)."""
        self._limiter.release_on_behalf_of(owner)
