"""Conversations: which CLI session a request continues, one turn at a time.

The rule (README, "Conversations"):

1. A request naming a conversation (body ``conversation_id`` or header
   ``x-conversation-id``) continues it: its CLI session is resumed and only the request's
   last message is sent. An unknown or expired id is a 404 before any CLI runs.
2. A request without one continues the conversation whose whole history (system prompt
   and turns) equals the request's history minus its last message.
3. Otherwise a new conversation starts. Its earlier turns, if any, are written as a CLI
   session transcript that the CLI resumes (reference §5.3); a history that cannot be
   written that way (images, an assistant turn first) is quoted in the prompt instead.

One turn runs per conversation at a time: a second waits ``busy_wait_seconds``, then 409.
A failed turn is rolled back in the transcript, so the next turn starts clean.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import NamedTuple

import attrs
import trio

from ccproto import (
    ChatCompletionRequest,
    HistoryMessage,
    InvalidRequestError,
    SessionPlan,
    fingerprint,
    request_history,
)

from ..errors import ConversationBusy, ConversationNotFound
from ..settings.sections import ConversationSettings
from .locks import KeyedLocks
from .sessions import SessionFiles
from .store import Conversation, ConversationStore, StoredMessage

__all__ = ["Conversations", "Identity", "Ticket", "starts_afresh"]


class Identity(NamedTuple):
    """Who a new conversation is, chosen before it exists (a warm process is started as it)."""

    conversation_id: str
    session_id: str
    cwd: str
    #: ``cwd`` is its own (``isolate_workspaces``), not shared: removable if it never comes.
    own_cwd: bool = False


def starts_afresh(request: ChatCompletionRequest, conversation_id: str | None) -> bool:
    """Whether ``request`` starts a conversation with no earlier turns (`claim_turn`
    then takes a warm process's `Identity`)."""
    return not conversation_id and len(request_history(request)[1]) == 1


@attrs.define(kw_only=True)
class Ticket:
    """One turn of one conversation, held under that conversation's lock."""

    conversation: Conversation
    session: SessionPlan
    #: The request's messages the conversation does not hold yet (its new user turn).
    new_turns: tuple[HistoryMessage, ...]
    completed: bool = False


class Conversations:
    def __init__(self, store: ConversationStore, files: SessionFiles,
                 settings: ConversationSettings, *, workspace: Path,
                 cli_version: Callable[[], str], clock: Callable[[], float] = time.time,
                 ) -> None:
        self.store, self.files, self.settings = store, files, settings
        self.workspace = workspace
        self._cli_version = cli_version
        self.clock = clock
        #: One lock per conversation: a turn, a removal and the sweep take it.
        self.locks = KeyedLocks()
        self.counters = {"created": 0, "resumed": 0, "matched": 0, "seeded": 0, "expired": 0}

    def _live(self, c: Conversation | None) -> Conversation | None:
        timeout = self.settings.session_timeout_minutes * 60
        return c if c is not None and self.clock() - c.updated_at < timeout else None

    async def get(self, conversation_id: str) -> Conversation:
        conversation = self._live(await self.store.get(conversation_id))
        if conversation is None:
            raise ConversationNotFound(conversation_id)
        return conversation

    def new_identity(self) -> Identity:
        """A new conversation's id, CLI session id and working directory."""
        conversation_id = f"conv_{uuid.uuid4().hex}"
        own = self.settings.isolate_workspaces
        cwd = self.workspace / conversation_id if own else self.workspace
        return Identity(conversation_id, str(uuid.uuid4()), str(cwd), own_cwd=own)

    async def create(self, *, model: str | None, system_prompt: str | None,
                     metadata: dict[str, str], identity: Identity | None = None
                     ) -> Conversation:
        now = self.clock()
        identity = identity or self.new_identity()
        conversation = Conversation(
            id=identity.conversation_id, session_id=identity.session_id,
            cwd=identity.cwd, model=model, system_prompt=system_prompt,
            metadata=metadata, created_at=now, updated_at=now,
        )
        await self.store.put(conversation)
        self.counters["created"] += 1
        return conversation

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
        given: that of a warm CLI process started for it.
        """
        system, turns = request_history(request)
        if not turns:
            raise InvalidRequestError("'messages' must contain a user message", param="messages")
        ticket = await self._ticket(conversation_id, system, turns, model, identity)
        conversation = ticket.conversation
        try:
            await trio.to_thread.run_sync(
                lambda: Path(conversation.cwd).mkdir(parents=True, exist_ok=True))
            # A server killed mid-turn may have left half a turn behind.
            await self.files.roll_back(conversation.cwd, conversation.session_id,
                                       conversation.turns)
            yield ticket
        finally:
            # Shielded: a cancelled turn must still be rolled back and its lock released.
            with trio.CancelScope(shield=True):
                try:
                    await self._settle(ticket)
                finally:
                    self.locks.release(conversation.id)

    async def _settle(self, ticket: Ticket) -> None:
        """After the turn, its CLI stopped (or kept by the pool): roll a failed turn back."""
        c = ticket.conversation
        if not ticket.completed:
            await self.files.roll_back(c.cwd, c.session_id, c.turns)
            if c.started != await self.files.exists(c.cwd, c.session_id):
                await self.store.put(attrs.evolve(c, started=not c.started))

    async def _ticket(self, conversation_id: str | None, system: str | None,
                      turns: tuple[HistoryMessage, ...], model: str,
                      identity: Identity | None) -> Ticket:
        if conversation_id:
            await self.get(conversation_id)
            async with self._holding(conversation_id):
                conversation = await self.get(conversation_id)  # it may be gone by now
                stored = len(await self.store.messages(conversation_id))
                self._check_length(stored + 1)
                self.counters["resumed"] += 1
                return self._make_ticket(conversation, turns[-1:])
        self._check_length(len(turns))
        if len(turns) > 1:
            digest = fingerprint(system, turns[:-1])
            found = self._live(await self.store.find(digest))
            if found is not None:
                async with self._holding(found.id):
                    current = await self.store.get(found.id)
                    if current is not None and current.fingerprint == digest:
                        self.counters["matched"] += 1
                        return self._make_ticket(current, turns[-1:])
                    self.locks.release(found.id)  # it moved on meanwhile: start afresh
        return await self._start(system, turns, model, identity if len(turns) == 1 else None)

    @asynccontextmanager
    async def _holding(self, conversation_id: str) -> AsyncIterator[None]:
        """Take the conversation's lock for the turn: kept when the block ends normally,
        released when it raises (a 400, a store error, a cancelled client)."""
        await self.locks.acquire(conversation_id, self.settings.busy_wait_seconds,
                                 busy=ConversationBusy)
        try:
            yield
        except BaseException:
            self.locks.release(conversation_id)
            raise

    async def _start(self, system: str | None, turns: tuple[HistoryMessage, ...],
                     model: str, identity: Identity | None) -> Ticket:
        """A new conversation; its earlier turns: a seeded transcript, and stored messages."""
        c = await self.create(model=model, system_prompt=system, metadata={},
                              identity=identity)
        earlier = turns[:-1]
        async with self._holding(c.id):
            if earlier and await self.files.seed(c.cwd, c.session_id, earlier, model=model,
                                                 version=self._cli_version(), now=self.clock()):
                c = attrs.evolve(c, started=True)
                self.counters["seeded"] += 1
            if earlier:
                # Stored either way: a seeded history is in the transcript, an unseedable
                # one is quoted in this turn's prompt.
                await self.store.add_turn(c, self._stored(earlier))
            return self._make_ticket(c, turns[-1:])

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

    def _stored(self, turns: tuple[HistoryMessage, ...]) -> list[StoredMessage]:
        now = self.clock()
        return [StoredMessage(role=t.role, parts=t.parts, created_at=now) for t in turns]

    async def complete(self, ticket: Ticket, reply: str, model: str) -> Conversation:
        """Record a finished turn's messages and the history's new fingerprint.

        The session now exists: the CLI writes the transcript shortly after its result.
        """
        with trio.CancelScope(shield=True):  # the turn happened: never lose its record
            c = ticket.conversation
            new = (*ticket.new_turns, HistoryMessage("assistant", (("text", reply),)))
            earlier = await self.store.messages(c.id)
            history = [HistoryMessage(m.role, m.parts) for m in earlier] + list(new)
            c = attrs.evolve(
                c, turns=c.turns + 1, updated_at=self.clock(), model=model,
                fingerprint=fingerprint(c.system_prompt, history), started=True,
            )
            await self.store.add_turn(c, self._stored(new))
        ticket.conversation, ticket.completed = c, True
        return c
