"""The gateway's connection to a shared Redis (or Valkey), bridged from Trio.

The maintained client is asyncio's (redis-py's ``redis.asyncio``), so it runs on an
asyncio loop that trio-asyncio opens inside the Trio run: `RedisLink.run` owns that loop
for the server's lifetime, and any Trio task calls into it with `RedisLink.call`. The loop
is handed over explicitly rather than through trio-asyncio's context variable, because
Hypercorn starts request tasks in its own nurseries, which never inherit it.

Every call is bounded: the client's socket timeouts, and a Trio deadline around the whole
call (a connect that hangs, a pool that waits). Whatever goes wrong on the way (refused,
reset, timed out, a Redis that is loading or out of memory) becomes `StoreUnavailable`, a
503 for the request. Nothing is kept between calls but the client's connection pool, which
reconnects by itself, so the gateway recovers as soon as Redis is back.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import trio
import trio_asyncio
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from ..errors import StoreUnavailable

__all__ = ["RedisLink", "redact"]

T = TypeVar("T")
log = logging.getLogger("ccserver.cluster")


def redact(url: str) -> str:
    """``url`` without its password, for messages and logs."""
    scheme, sep, rest = url.partition("://")
    if "@" in rest:
        rest = "***@" + rest.rsplit("@", 1)[1]
    return scheme + sep + rest


class RedisLink:
    """One Redis client on one asyncio loop inside Trio; ``call`` from any Trio task."""

    def __init__(self, url: str, *, timeout: float) -> None:
        self.url, self.timeout = url, timeout
        self._loop: Any = None
        self._client: Redis | None = None

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
                  ) -> None:
        """Open the loop and the client, check that Redis answers, and keep both until
        cancelled.

        Raises:
            RuntimeError: Redis does not answer at start-up (the server does not start).
        """
        refused: StoreUnavailable | None = None
        async with trio_asyncio.open_loop() as loop:
            # One immediate retry: the first command on a pooled connection that Redis
            # closed (it restarted) fails, and the retry reconnects.
            client = Redis.from_url(
                self.url, socket_timeout=self.timeout, socket_connect_timeout=self.timeout,
                retry=Retry(NoBackoff(), 1), client_name="ccserver")
            self._loop, self._client = loop, client
            try:
                await self.call(lambda r: r.ping())
            except StoreUnavailable as exc:
                refused = exc  # raised outside the loop, which would wrap it in a group
            else:
                log.info("shared store: %s", redact(self.url))
                task_status.started()
                await trio.sleep_forever()
            finally:
                self._client = None
                with trio.move_on_after(self.timeout) as scope:
                    scope.shield = True
                    await trio_asyncio.aio_as_trio(client.aclose)()
        raise RuntimeError(
            f"the shared store at {redact(self.url)} does not answer ({refused}); start it, "
            'or set conversation.store_url to "" for the embedded SQLite store')

    async def health(self) -> dict[str, Any]:
        """Whether Redis answers a PING within the timeout, for /health."""
        try:
            with trio.fail_after(self.timeout):
                await self.call(lambda r: r.ping())
        except (StoreUnavailable, trio.TooSlowError) as exc:
            reason = str(exc) or f"no answer within {self.timeout:g} s"
            return {"url": redact(self.url), "ok": False, "error": reason}
        return {"url": redact(self.url), "ok": True}

    async def call(self, command: Callable[[Redis], Awaitable[T]]) -> T:
        """``command(client)`` on the asyncio loop, within the timeout.

        Raises:
            StoreUnavailable: Redis refused, failed or did not answer in time.
        """
        client = self._client
        if client is None:
            raise StoreUnavailable("the shared store is not connected")

        async def run() -> T:
            return await command(client)

        # The socket timeouts bound each read; this bounds the whole call (connect, the
        # pool's wait, the retry) a little above them.
        with trio.move_on_after(self.timeout * 2 + 1) as scope:
            try:
                return await self._loop.run_aio_coroutine(run())  # type: ignore[no-any-return]
            except (RedisError, OSError) as exc:
                raise StoreUnavailable(
                    f"The shared conversation store did not answer: {_reason(exc)}") from exc
        assert scope.cancelled_caught
        raise StoreUnavailable(
            f"The shared conversation store did not answer within {self.timeout * 2 + 1:g} s")


def _reason(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text[:200]
