"""One lock per key (a conversation id, say), made on demand and dropped when unused.

Keys come and go (conversations are created and expire), so a lock exists only while
someone holds it or waits for it; the dict never grows with every key ever seen.
"""

from __future__ import annotations

from collections.abc import Callable

import trio

__all__ = ["KeyedLocks"]


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
