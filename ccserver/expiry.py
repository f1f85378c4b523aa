"""Removing conversations: one on request (``DELETE``), and those idle past the timeout.

Kept apart from `Conversations` (which decides and locks turns); these use its lock,
store and session files, and hold a conversation's lock while removing it, so no turn
can start on a conversation half removed.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

import trio

from .errors import ConversationBusy
from .store import Conversation

if TYPE_CHECKING:
    from .conversations import Conversations

__all__ = ["delete", "sweep_expired", "sweep_forever"]

# The conversations logger still: the sweep's messages are about conversations.
log = logging.getLogger("ccserver.conversations")


async def delete(convs: Conversations, conversation_id: str) -> None:
    c = await convs.get(conversation_id)
    if not await convs.locks.acquire(conversation_id, 0):
        raise ConversationBusy(conversation_id, 0)
    await _remove_locked(convs, c)


async def _remove_locked(convs: Conversations, c: Conversation) -> None:
    """Remove ``c``, whose lock the caller took: no turn can start on it meanwhile."""
    try:
        with trio.CancelScope(shield=True):  # half a removal would leave orphans
            if convs.on_remove is not None:
                await convs.on_remove(c.id)
            await convs.store.delete(c.id)
            own = Path(c.cwd) if Path(c.cwd) != convs.workspace else None
            await convs.files.remove(c.cwd, c.session_id, own)
    finally:
        convs.locks.release(c.id)


async def sweep_expired(convs: Conversations) -> int:
    """Delete conversations idle past the timeout (skipping any that is answering)."""
    timeout = convs.settings.session_timeout_minutes * 60
    removed = 0
    for c in await convs.store.expired(convs.clock() - timeout):
        if await convs.locks.acquire(c.id, 0):
            await _remove_locked(convs, c)
            removed += 1
    convs.counters["expired"] += removed
    return removed


async def sweep_forever(convs: Conversations) -> None:
    interval = min(60.0, convs.settings.session_timeout_minutes * 30)
    while True:
        try:
            await sweep_expired(convs)
        except Exception:  # a disk or store error must not stop the server's tasks
            log.exception("sweeping expired conversations failed; retrying later")
        await trio.sleep(interval)
