"""Removing conversations: one on request (``DELETE``), and those idle past the timeout.

Kept apart from `Conversations` (which decides and locks turns): the `Janitor` shares
its locks and `Records`, and holds a conversation's lock while removing it, so no turn
can start on a conversation half removed. Before the files go, ``on_remove`` lets
the owner of the conversation's live process stop it (the gateway wires in the pool).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import trio

from ..errors import ConversationBusy
from .locks import ConversationLocks
from .records import Records
from .store import Conversation

__all__ = ["Janitor"]

# The conversations logger still: the sweep's messages are about conversations.
log = logging.getLogger("ccserver.conversations")


class Janitor:
    """Removes conversations: their record, transcript, session files and directory."""

    def __init__(self, records: Records, locks: ConversationLocks, *,
                 on_remove: Callable[[str], Awaitable[None]]) -> None:
        self._records, self._locks = records, locks
        self._on_remove = on_remove

    async def delete(self, conversation_id: str) -> None:
        """Remove one conversation now; 404 if unknown, 409 while it answers."""
        c = await self._records.get(conversation_id)
        if not await self._locks.acquire(conversation_id, 0):
            raise ConversationBusy(conversation_id, 0)
        await self._remove_locked(c)

    async def sweep_expired(self) -> int:
        """Delete conversations idle past the timeout (skipping any that is answering)."""
        records = self._records
        timeout = records.settings.session_timeout_minutes * 60
        removed = 0
        for c in await records.store.expired(records.clock() - timeout):
            if await self._locks.acquire(c.id, 0):
                await self._remove_locked(c)
                removed += 1
        records.counters["expired"] += removed
        return removed

    async def sweep_moved(self) -> int:
        """With a shared store: this gateway's copies of conversations that another
        gateway went on with, or removed. A live process here holds an old session, so it
        stops (it would otherwise idle, or hold tool calls, for many minutes); the files of
        a removed conversation go too, or they would stay on this disk for ever."""
        records = self._records
        if records.share is None:
            return 0
        dropped = 0
        for held in records.share.known():
            if not await self._locks.local.acquire(held.id, 0):
                continue  # a turn runs here now: this copy is the current one
            try:
                now = records.live(await records.store.get(held.id))
                if now is not None and now.updated_at == held.updated_at:
                    continue
                with trio.CancelScope(shield=True):
                    await self._on_remove(held.id)
                    records.forget(held.id)
                    if now is None:
                        await records.remove_files(held)
                dropped += 1
            finally:
                self._locks.local.release(held.id)
        return dropped

    async def sweep_forever(self) -> None:
        interval = min(60.0, self._records.settings.session_timeout_minutes * 30)
        while True:
            try:
                await self.sweep_expired()
                await self.sweep_moved()
            except Exception:  # a disk or store error must not stop the server's tasks
                log.exception("sweeping expired conversations failed; retrying later")
            await trio.sleep(interval)

    async def _remove_locked(self, c: Conversation) -> None:
        """Remove ``c``, whose lock the caller took: no turn can start on it meanwhile."""
        try:
            with trio.CancelScope(shield=True):  # half a removal would leave orphans
                await self._on_remove(c.id)
                await self._records.remove(c)
        finally:
            with trio.CancelScope(shield=True):
                await self._locks.release(c.id)
