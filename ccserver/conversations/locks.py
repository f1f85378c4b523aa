"""One lock per key (a conversation id, say), made on demand and dropped when unused, and
the conversation lock that adds the shared store's lock to it.

Keys come and go (conversations are created and expire), so a lock exists only while
someone holds it or waits for it; the dict never grows with every key ever seen.
"""

from __future__ import annotations

from collections.abc import Callable

import trio

from ..cluster.locks import Reads, SharedLocks

__all__ = ["ConversationLocks", "KeyedLocks"]


class KeyedLocks:
    def __init__(self) -> None:
        self._locks: dict[str, trio.Lock] = {}

    async def acquire(self, key: str, wait: float, *,
                      busy: Callable[[str, float], BaseException] | None = None) -> bool:
        """Take ``key``'s lock, waiting up to ``wait`` seconds for its holder.

        Returns False on timeout, or raises ``busy(key, wait)`` if that is given.
        """
        lock = self._locks.setdefault(key, trio.Lock())
        try:
            lock.acquire_nowait()
            return True
        except trio.WouldBlock:
            pass
        with trio.move_on_after(wait):
            await lock.acquire()
            return True
        self._forget(key, lock)
        if busy is not None:
            raise busy(key, wait)
        return False

    def release(self, key: str) -> None:
        lock = self._locks[key]
        lock.release()
        self._forget(key, lock)

    def locked(self, key: str) -> bool:
        lock = self._locks.get(key)
        return lock is not None and lock.locked()

    def _forget(self, key: str, lock: trio.Lock) -> None:
        if not lock.locked() and not lock.statistics().tasks_waiting:
            self._locks.pop(key, None)


class ConversationLocks:
    """A conversation's lock in this gateway, and in the shared store when there is one.

    The local lock comes first, so turns of one conversation in this gateway queue in
    Trio, and at most one of them asks Redis; handing over to the next local turn keeps
    the shared lock (its holder count never drops to zero in between).
    """

    def __init__(self, shared: SharedLocks | None = None) -> None:
        self.local = KeyedLocks()
        self.shared = shared

    async def acquire(self, key: str, wait: float, *,
                      busy: Callable[[str, float], BaseException] | None = None,
                      reads: Reads | None = None) -> bool:
        """Both locks within ``wait`` seconds: False on timeout, or ``busy(key, wait)``
        raised if given. ``reads`` go with the shared lock's take (`SharedLocks.acquire`).

        Raises:
            StoreUnavailable: the shared store did not answer.
        """
        deadline = trio.current_time() + wait
        if not await self.local.acquire(key, wait, busy=busy):
            return False
        if self.shared is None:
            return True
        try:
            taken = await self.shared.acquire(
                key, max(0.0, deadline - trio.current_time()), reads)
        except BaseException:
            self.local.release(key)
            raise
        if taken:
            return True
        self.local.release(key)
        if busy is not None:
            raise busy(key, wait)
        return False

    async def release(self, key: str) -> None:
        self.local.release(key)
        if self.shared is not None:
            await self.shared.release(key)

    def locked(self, key: str) -> bool:
        return self.local.locked(key)
