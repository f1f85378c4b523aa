"""Admission: at most N running turns, a bounded queue, then 429 with Retry-After.

This is one of the cap's two books, both set from ``claude.max_concurrent_sessions``
(pool/pool.py says why both stay): it counts turns that run a CLI process, and is the
only place a request *waits* for capacity, since only it can tell the client when to
come back. The pool's own count also takes in idle, starting and exiting processes,
and it makes room by retiring idle ones rather than by waiting.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import trio

from ..errors import Busy

__all__ = ["Admission", "acquire_until"]


class Admission:
    """Hands out CLI slots: one per running turn.

    Args:
        max_live: turns allowed to run at once (``claude.max_concurrent_sessions``).
        max_queued: requests allowed to wait for a slot; one more is refused at once.
        queue_timeout: how long a request may wait before it is refused.
    """

    def __init__(self, *, max_live: int, max_queued: int, queue_timeout: float) -> None:
        self._limiter = trio.CapacityLimiter(max_live)
        self.max_queued = max_queued
        self.queue_timeout = queue_timeout

    @property
    def live(self) -> int:
        return self._limiter.borrowed_tokens

    @property
    def queued(self) -> int:
        return self._limiter.statistics().tasks_waiting

    @property
    def retry_after(self) -> float:
        """The ``Retry-After`` of a refusal: a quarter of the queue timeout, at least 1 s."""
        return max(1.0, self.queue_timeout / 4)

    @asynccontextmanager
    async def slot(self, *, deadline: float | None = None) -> AsyncIterator[None]:
        """Hold one CLI slot for the duration of the block.

        Args:
            deadline: wait for a slot until then (``trio.current_time()`` based); by
                default ``queue_timeout`` from now. A caller that waits for more than this
                slot (a cold-start slot too) passes one deadline for all its waits.

        Raises:
            Busy: the queue is full, or no slot freed up by the deadline.
        """
        if self._limiter.available_tokens == 0 and self.queued >= self.max_queued:
            raise Busy(
                "The server is running as many Claude Code sessions as it allows and its "
                "queue is full; retry shortly",
                retry_after=self.retry_after,
            )
        if deadline is None:
            deadline = trio.current_time() + self.queue_timeout
        token = object()
        if not await acquire_until(self._limiter, token, deadline):
            raise Busy(
                f"No Claude Code session slot became free within {self.queue_timeout:g} s; "
                "retry shortly",
                retry_after=self.retry_after,
            )
        try:
            yield
        finally:
            self._limiter.release_on_behalf_of(token)


async def acquire_until(limiter: trio.CapacityLimiter, owner: object, deadline: float) -> bool:
    """Take one of ``limiter``'s tokens for ``owner``, waiting in line until ``deadline``
    at most (the wait only: never what the token is then held for); False if none came.
    Cancellable: a waiter cancelled leaves the line holding nothing."""
    with trio.move_on_at(deadline):
        await limiter.acquire_on_behalf_of(owner)
        return True
    return False
