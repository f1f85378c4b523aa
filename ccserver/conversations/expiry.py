"""Removing conversations: one on request (``DELETE``), and those idle past the timeout.

Kept apart from `Conversations` (which decides and locks turns): the `Janitor` uses its
lock, store and session files, and holds a conversation's lock while removing it, so no
turn can start on a conversation half removed. Before the files go, ``on_remove`` lets
the owner of the conversation's live process stop it (the gateway wires in the pool).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from pathlib import Path

import trio

from ..errors import ConversationBusy
from .registry import Conversations
from .store import Conversation

__all__ = ["Janitor"]

# The conversations logger still: the sweep's messages are about conversations.
log = logging.getLogger("ccserver.conversations")


class Janitor:
    """Removes conversations: their record, transcript, session files and directory."""

    def __init__(self, conversations: Conversations, *,
                 on_remove: Callable[[str], Awaitable[None]]) -> None:
        self._convs = conversations
        self._on_remove = on_remove

    async def delete(self, conversation_id: str) -> None:
        """Remove one conversation now; 404 if unknown, 409 while it answers."""
        c = await self._convs.get(conversation_id)
        if not await self._convs.locks.acquire(conversation_id, 0):
            raise ConversationBusy(conversation_id, 0)
        await self._remove_locked(c)

    async def sweep_expired(self) -> int:
        """Delete conversations idle past the timeout (skipping any that is answering)."""
        convs = self._convs
        timeout = convs.settings.session_timeout_minutes * 60
        removed = 0
        for c in await convs.store.expired(convs.clock() - timeout):
            if await convs.locks.acquire(c.id, 0):
                await self._remove_locked(c)
                removed += 1
        convs.counters["expired"] += removed
        return removed

    async def sweep_forever(self) -> None:
        interval = min(60.0, self._convs.settings.session_timeout_minutes * 30)
        while True:
            try:
                await self.sweep_expired()
            except Exception:  # a disk or store error must not stop the server's tasks
                log.exception("sweeping expired conversations failed; retrying later")
            await trio.sleep(interval)

    async def _remove_locked(self, c: Conversation) -> None:
        """Remove ``c``, whose lock the caller took: no turn can start on it meanwhile."""
        convs = self._convs
        try:
            with trio.CancelScope(shield=True):  # half a removal would leave orphans
                await self._on_remove(c.id)
                await convs.store.delete(c.id)
                own = Path(c.cwd) if Path(c.cwd) != convs.workspace else None
                await convs.files.remove(c.cwd, c.session_id, own)
        finally:
            convs.locks.release(c.id)
