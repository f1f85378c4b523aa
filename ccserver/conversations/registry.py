"""Conversations: which CLI session a request continues, one turn at a time.

The rule (README, "Conversations"):

1. A request naming a conversation (body ``conversation_id`` or header
   ``x-conversation-id``) continues it: its CLI session is resumed and only the request's
   last message is sent. An unknown or expired id is a 404 before any CLI runs.
2. A request without one continues the conversation whose whole history (system prompt
   and turns) equals the request's history minus its new turn: its last message, or its
   trailing tool results (which answer the calls the stored history ends with).
3. Otherwise a new conversation starts. Its earlier turns, if any, are written as a CLI
   session transcript that the CLI resumes (reference §5.3); a history that cannot be
   written that way (images, an assistant turn first) is quoted in the prompt instead.

One turn runs per conversation at a time: a second waits ``busy_wait_seconds``, then 409.
A failed turn is rolled back in the transcript, so the next turn starts clean; a new
conversation whose first turn fails or is refused goes entirely (`Records.settle`).

This module is the rule and the locks; the records themselves (making, seeding,
completing, settling a conversation) are `Records` (records.py), which it is given.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import trio

from ccproto import (
    ChatCompletionRequest,
    HistoryMessage,
    InvalidRequestError,
    SessionPlan,
    fingerprint,
    new_turn_start,
    request_history,
)

from ..errors import ConversationBusy
from .locks import ConversationLocks
from .records import Records
from .store import Conversation, CountedRead
from .ticket import Identity, Ticket

__all__ = ["Conversations", "starts_afresh"]


def starts_afresh(request: ChatCompletionRequest, conversation_id: str | None) -> bool:
    """Whether ``request`` starts a conversation with no earlier turns (`claim_turn`
    then takes a warm process's `Identity`)."""
    return not conversation_id and len(request_history(request)[1]) == 1


class Conversations:
    """Which conversation a request continues (the rule above), one turn at a time."""

    def __init__(self, records: Records, locks: ConversationLocks | None = None) -> None:
        self.records = records
        self.settings = records.settings
        #: One lock per conversation (and its gateway's in the shared store, if any): a
        #: turn, a removal and the sweep take it.
        self.locks = locks or ConversationLocks()

    @asynccontextmanager
    async def claim_turn(
        self,
        request: ChatCompletionRequest,
        *,
        conversation_id: str | None,
        model: str,
        identity: Identity | None = None,
    ) -> AsyncIterator[Ticket]:
        """Decide and lock the conversation a request continues, for one turn; roll the
        turn back unless it was recorded (`complete`).

        The request must already be valid (the caller plans it once without a session).
        A new conversation with no earlier turns (`starts_afresh`) takes ``identity``, if
        given: that of a warm CLI process started for it. Unless the turn completes,
        such a conversation is removed again when the block ends; the caller stops the
        turn's process before that.
        """
        system, turns = request_history(request)
        if not turns:
            raise InvalidRequestError("'messages' must contain a user message", param="messages")
        ticket = await self._ticket(conversation_id, system, turns, model, identity)
        conversation = ticket.conversation
        try:
            # Another gateway may have run its last turn: its session comes here first.
            if (brought := await self.records.bring(conversation)) is not conversation:
                ticket.conversation = conversation = brought
                ticket.session = self._make_ticket(brought, ()).session
            # A server killed mid-turn may have left half a turn behind.
            await self.records.ready(conversation)
            yield ticket
        finally:
            # Shielded: a cancelled turn must still be rolled back (a new conversation
            # removed) and its lock released.
            with trio.CancelScope(shield=True):
                try:
                    await self.records.settle(ticket)
                finally:
                    await self.locks.release(conversation.id)

    async def _ticket(self, conversation_id: str | None, system: str | None,
                      turns: tuple[HistoryMessage, ...], model: str,
                      identity: Identity | None) -> Ticket:
        start = new_turn_start([t.role for t in turns])
        if conversation_id:
            # The lock first, then the record: one read, and a deleted conversation is
            # never continued. An unknown id takes a lock nobody holds, and 404s at once.
            read = self.records.store.counted_read(conversation_id)
            async with self._holding(conversation_id, read):
                conversation, stored = await self.records.get_counted(conversation_id, read)
                self._check_length(stored + len(turns) - start)
                self.records.counters["resumed"] += 1
                return self._make_ticket(conversation, turns[start:])
        self._check_length(len(turns))
        if start > 0:
            digest = fingerprint(system, turns[:start])
            found = self.records.live(await self.records.store.find(digest))
            if found is not None:
                read = self.records.store.counted_read(found.id)
                async with self._holding(found.id, read):
                    current = (read.value[0] if read is not None and read.value is not None
                               else await self.records.store.get(found.id))
                    if current is not None and current.fingerprint == digest:
                        self.records.counters["matched"] += 1
                        return self._make_ticket(current, turns[start:])
                    await self.locks.release(found.id)  # it moved on meanwhile: start afresh
        return await self._start(system, turns, start, model,
                                 identity if len(turns) == 1 else None)

    @asynccontextmanager
    async def _holding(self, conversation_id: str, read: CountedRead | None = None
                       ) -> AsyncIterator[None]:
        """Take the conversation's lock for the turn: kept when the block ends normally,
        released when it raises (a 400, a store error, a cancelled client)."""
        await self.locks.acquire(conversation_id, self.settings.busy_wait_seconds,
                                 busy=ConversationBusy, reads=read)
        try:
            yield
        except BaseException:
            with trio.CancelScope(shield=True):
                await self.locks.release(conversation_id)
            raise

    async def _start(self, system: str | None, turns: tuple[HistoryMessage, ...], start: int,
                     model: str, identity: Identity | None) -> Ticket:
        """A new conversation for the turn, with its earlier turns (`seed_earlier`)."""
        c = await self.records.create(model=model, system_prompt=system, metadata={},
                              identity=identity)
        earlier = turns[:start]
        async with self._holding(c.id):
            try:
                if earlier:
                    c = await self.records.seed_earlier(c, earlier, model)
            except BaseException:
                # Shielded: a seeding that failed or was cancelled leaves no conversation.
                with trio.CancelScope(shield=True):
                    await self.records.remove(c)
                raise
            ticket = self._make_ticket(c, turns[start:])
            ticket.new_conversation = True
            return ticket

    def _make_ticket(self, c: Conversation, new_turns: tuple[HistoryMessage, ...]) -> Ticket:
        session = SessionPlan(session_id=c.session_id, resume=c.started, cwd=c.cwd,
                              system_prompt=c.system_prompt)
        return Ticket(conversation=c, session=session, new_turns=new_turns)

    def _check_length(self, messages: int) -> None:
        limit = self.settings.max_history_messages
        if messages > limit:
            raise InvalidRequestError(
                f"The conversation would hold {messages} messages; the limit is {limit}. "
                "Start a new conversation.",
                param="messages", code="context_length_exceeded",
            )
