"""Conversation records: making one, seeding its history, recording a turn, settling one
that failed.

`Records` is the record keeping that `Conversations` (registry) is given: it decides
which conversation a request continues and locks it for the turn. What it keeps:

* A new conversation becomes permanent only with its first completed turn. Until then
  its row, its stored earlier messages, its seeded transcript and its own working
  directory exist so the turn can run, and a first turn that fails or never runs (refused
  with 429 or 503, cancelled by its client, its CLI failed) removes them all again
  (`remove`): a refused request must not leave a conversation that lists for a day.
* A failed later turn is rolled back in the transcript; the conversation stays.
* With a shared store, a conversation whose last turn another gateway ran gets that
  gateway's session here first (`bring`, transcripts.py).

The caller stops the turn's CLI process before `settle`: the files of a live process are
never cut or removed.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import attrs
import trio

from ccproto import Fingerprint, HistoryMessage, ToolCall, tool_calls_part

from ..errors import ConversationNotFound
from ..settings.sections import ConversationSettings
from .recall import Recall
from .sessions import SessionFiles
from .store import Conversation, ConversationStore, CountedRead, StoredMessage
from .ticket import Identity, Ticket
from .transcripts import TranscriptShare

__all__ = ["Records"]

log = logging.getLogger("ccserver.conversations")


class Records:
    """The conversations' store and session files, kept consistent with each other."""

    def __init__(self, store: ConversationStore, files: SessionFiles,
                 settings: ConversationSettings, *, workspace: Path,
                 cli_version: Callable[[], str], clock: Callable[[], float] = time.time,
                 ) -> None:
        self.store, self.files, self.settings = store, files, settings
        self.workspace = workspace
        #: The CLI's version, for the transcript lines the gateway writes.
        self.cli_version = cli_version
        self.clock = clock
        self.counters = {"created": 0, "resumed": 0, "matched": 0, "seeded": 0, "expired": 0}
        #: Sessions shared with other gateways, when the store is shared (gateway.py).
        self.share: TranscriptShare | None = None
        self.recall = Recall()

    def live(self, c: Conversation | None) -> Conversation | None:
        """``c`` unless it is missing or idle past the timeout (expired counts as gone)."""
        timeout = self.settings.session_timeout_minutes * 60
        return c if c is not None and self.clock() - c.updated_at < timeout else None

    async def get(self, conversation_id: str) -> Conversation:
        conversation = self.live(await self.store.get(conversation_id))
        if conversation is None:
            raise ConversationNotFound(conversation_id)
        return conversation

    async def get_counted(self, conversation_id: str, read: CountedRead | None = None
                          ) -> tuple[Conversation, int]:
        """`get`, and how many messages the conversation holds, in one store read (none
        when ``read`` was answered with the conversation's lock)."""
        if read is not None and read.value is not None:
            found, count = read.value
        else:
            found, count = await self.store.get_counted(conversation_id)
        conversation = self.live(found)
        if conversation is None:
            raise ConversationNotFound(conversation_id)
        return conversation, count

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
        who = identity or self.new_identity()
        conversation = Conversation(
            id=who.conversation_id, session_id=who.session_id, cwd=who.cwd, model=model,
            system_prompt=system_prompt, metadata=metadata, created_at=now, updated_at=now,
        )
        await self.store.put(conversation)
        self.counters["created"] += 1
        if identity is not None:
            # A warm process started as it runs in its directory and was sent nothing yet.
            self.recall.left_clean(conversation.id, 0)
        return conversation

    async def ready(self, c: Conversation) -> None:
        """Make ``c``'s working directory and transcript ready for its next turn: the
        directory exists, and the transcript holds its completed turns only (a server
        killed mid-turn may have left half a turn behind, `SessionFiles.roll_back`).

        Both are known, with no disk to read, for a conversation this process left clean
        (`Recall`): not after a restart, nor while a turn runs, nor after a roll-back that
        failed. Transcripts are written only by this server's CLIs, one turn at a time.
        """
        if self.recall.take_clean(c):
            return
        await trio.to_thread.run_sync(lambda: Path(c.cwd).mkdir(parents=True, exist_ok=True))
        await self.files.roll_back(c.cwd, c.session_id, c.turns)

    async def seed_earlier(self, c: Conversation, earlier: tuple[HistoryMessage, ...],
                           model: str) -> Conversation:
        """Give a new conversation its ``earlier`` turns: a seeded transcript when they can
        be written as one, and stored messages either way (an unseedable history is quoted
        in the turn's prompt instead)."""
        if await self.files.seed(c.cwd, c.session_id, earlier, model=model,
                                 version=self.cli_version(), now=self.clock()):
            c = attrs.evolve(c, started=True)
            self.counters["seeded"] += 1
        await self.store.add_turn(c, self._stored(earlier))
        if self.share is not None:
            self.share.rebuilt(c)  # written here just now: nothing to bring
        return c

    async def bring(self, c: Conversation) -> Conversation:
        """Make ``c``'s session here its latest state when another gateway ran its last
        turn (`TranscriptShare`); the caller holds its lock. Without an upload of that
        state, the session is rebuilt from the stored messages; a history that cannot be
        written as a transcript (images) goes on without its earlier turns, logged.

        Returns:
            ``c``, or ``c`` as not started when its session could not be rebuilt.
        """
        share = self.share
        if share is None or not c.started or share.current(c):
            return c
        self.recall.forget(c.id)  # the file is replaced: `ready` checks it again
        if await share.bring(c):
            return c
        earlier = tuple(HistoryMessage(m.role, m.parts) for m in await self.store.messages(c.id))
        if await self.files.seed(c.cwd, c.session_id, earlier, model=c.model or "default",
                                 version=self.cli_version(), now=self.clock()):
            log.warning("conversation %s: its last turn's transcript was never shared; "
                        "the session was rebuilt from its stored messages", c.id)
        else:
            log.warning("conversation %s: its last turn's transcript was never shared and "
                        "its history cannot be written as one; it goes on without it", c.id)
            c = attrs.evolve(c, started=False)
        share.rebuilt(c)
        return c

    async def remove(self, c: Conversation) -> None:
        """Remove a conversation as if it never was: its row and messages, transcript,
        session files and own working directory. The caller holds its lock, and its
        process is stopped: removal on request or expiry (`Janitor`), or a new
        conversation whose first turn never completed."""
        self.forget(c.id)
        await self.store.delete(c.id)
        if self.share is not None:
            await self.share.unshare(c.id)
        await self.remove_files(c)

    def forget(self, conversation_id: str) -> None:
        """What this process remembers of a conversation (another gateway went on with it,
        or removed it): its next turn here reads everything afresh."""
        self.recall.forget(conversation_id)
        if self.share is not None:
            self.share.drop(conversation_id)

    async def remove_files(self, c: Conversation) -> None:
        """``c``'s transcript, session files and own working directory on this machine."""
        own = Path(c.cwd) if Path(c.cwd) != self.workspace else None
        await self.files.remove(c.cwd, c.session_id, own)

    async def settle(self, ticket: Ticket) -> None:
        """After the turn, its CLI stopped (or kept by the pool): a new conversation whose
        first turn did not complete goes; another failed turn is rolled back."""
        c = ticket.conversation
        if ticket.completed:
            return
        if ticket.new_conversation:
            await self.remove(c)
            return
        await self.files.roll_back(c.cwd, c.session_id, c.turns)
        if c.started != await self.files.exists(c.cwd, c.session_id):
            await self.store.put(attrs.evolve(c, started=not c.started))
        self.recall.left_clean(c.id, c.turns)

    async def _digest(self, c: Conversation) -> Fingerprint:
        """The fingerprint state of ``c``'s stored history: kept from its last turn here,
        or read (the whole history) when this process did not record that turn."""
        if (kept := self.recall.digest(c)) is not None:
            return kept
        digest = Fingerprint(c.system_prompt)
        digest.add(HistoryMessage(m.role, m.parts) for m in await self.store.messages(c.id))
        return digest

    def _stored(self, turns: tuple[HistoryMessage, ...]) -> list[StoredMessage]:
        now = self.clock()
        return [StoredMessage(role=t.role, parts=t.parts, created_at=now) for t in turns]

    async def complete(self, ticket: Ticket, reply: str, model: str, *,
                       calls: tuple[ToolCall, ...] = (), prompted: bool = True,
                       mark: str | None = None) -> Conversation:
        """Record a finished turn's messages and the history's new fingerprint.

        A turn that paused for client tool results (``calls``) is recorded the same way:
        its answer so far is the assistant message that calls them. ``prompted`` False:
        this turn sent no prompt (it answered held calls), so the session holds no more
        prompts than before (what `SessionFiles.roll_back` counts). ``mark`` says when
        the CLI has written the turn into its transcript, for sharing it.

        The session now exists: the CLI writes the transcript shortly after its result.
        """
        with trio.CancelScope(shield=True):  # the turn happened: never lose its record
            c = ticket.conversation
            parts: tuple[tuple[str, str], ...] = (("text", reply),) if reply else ()
            if calls:
                parts += (("tool_calls", tool_calls_part(
                    [(call.call_id, call.name, call.arguments) for call in calls])),)
            new = (*ticket.new_turns, HistoryMessage("assistant", parts))
            digest = await self._digest(c)
            digest.add(new)
            c = attrs.evolve(
                c, turns=c.turns + prompted, updated_at=self.clock(), model=model,
                fingerprint=digest.hexdigest(), started=True,
            )
            await self.store.add_turn(c, self._stored(new))
            self.recall.keep_digest(c, digest)
            if self.share is not None:
                self.share.publish(c, mark)
        self.recall.left_clean(c.id, c.turns)
        ticket.conversation, ticket.completed = c, True
        return c
