"""Session transcripts that travel between gateways through the shared store.

The CLI keeps a conversation's session in a transcript file on the disk of the gateway
that ran it; `--resume` on another gateway needs that file there. So after each turn,
the gateway that ran it uploads the transcript (`publish`), and a gateway about to run a
turn whose latest state it did not make itself downloads it first (`bring`).

What says "latest": the conversation's ``updated_at``, which every recorded turn moves.
The upload is stamped with it, and a gateway remembers the one its own copy (and its
live process) holds. A stamp that differs from the store's conversation means the copy
is old: the live process, if any, is stopped (``on_stale``) and the file replaced.

When to upload: the CLI writes a turn into its transcript some tens of milliseconds
after it answers, so the upload waits until the file holds the turn's last assistant
message (`TurnFinished.transcript_mark`), off the response's path, in the background.
The conversation's shared lock is held until the upload is done (`SharedLocks.retain`),
so no other gateway resumes from a transcript without the turn. A gateway that dies
before its upload leaves an older stamp behind; `Records.bring` then rebuilds the
session from the stored messages instead.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable
from typing import Any

import trio
from redis.asyncio import Redis

from ..cluster import KEY_PREFIX
from ..cluster.link import RedisLink
from ..errors import StoreUnavailable
from .locks import ConversationLocks
from .sessions import SessionFiles
from .store import Conversation

__all__ = ["TranscriptShare"]

log = logging.getLogger("ccserver.conversations")

# KEYS[1] the transcript; ARGV data, stamp, gateway, ttl ms. An older stamp never
# overwrites a newer one (two uploads of one conversation may finish out of order).
_UPLOAD = """
local stamp = redis.call('HGET', KEYS[1], 'stamp')
if stamp and tonumber(stamp) > tonumber(ARGV[2]) then return 0 end
redis.call('HSET', KEYS[1], 'data', ARGV[1], 'stamp', ARGV[2], 'gateway', ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return 1
"""


class TranscriptShare:
    """Uploads this gateway's transcripts after its turns and brings others' in."""

    def __init__(self, link: RedisLink, files: SessionFiles, locks: ConversationLocks, *,
                 gateway_id: str, keep_seconds: float,
                 on_stale: Callable[[str], Awaitable[None]], mark_wait: float = 10.0,
                 prefix: str = KEY_PREFIX) -> None:
        self._link, self._files, self._locks = link, files, locks
        self._gateway, self._on_stale = gateway_id, on_stale
        self._keep_ms = int(keep_seconds * 1000)
        self._mark_wait, self._prefix = mark_wait, prefix + "transcript:"
        #: Conversation id -> the conversation as this gateway's own copy holds it.
        self._held: dict[str, Conversation] = {}
        self._uploads, self._queued = trio.open_memory_channel[
            tuple[Conversation, str | None]](math.inf)
        self.counters = {"uploaded": 0, "downloaded": 0, "upload_failures": 0}
        self._pending = 0
        self._idle = trio.Event()
        self._idle.set()

    def current(self, c: Conversation) -> bool:
        """Whether this gateway's copy of ``c``'s session is its latest state."""
        held = self._held.get(c.id)
        return held is not None and held.updated_at == c.updated_at

    def known(self) -> list[Conversation]:
        """The conversations this gateway holds a copy of, as it last saw them."""
        return list(self._held.values())

    def drop(self, conversation_id: str) -> None:
        """This gateway's copy of the conversation is gone (or no longer counts)."""
        self._held.pop(conversation_id, None)

    async def bring(self, c: Conversation) -> bool:
        """Make this gateway's copy of ``c``'s session its latest state, from the store.
        The caller holds ``c``'s lock. False when the store has no upload of that state
        (the gateway that ran the turn died before uploading): the caller rebuilds it.

        Raises:
            StoreUnavailable: the store did not answer.
        """
        # Whatever this gateway has of c is older: a process bound to it holds the old
        # session in memory, and would answer from it.
        await self._on_stale(c.id)
        data, stamp = await self._link.call(
            lambda r: r.hmget(self._prefix + c.id, ["data", "stamp"]))
        if not isinstance(data, bytes) or stamp is None or float(stamp) != c.updated_at:
            return False
        await self._files.write(c.cwd, c.session_id, data)
        self._held[c.id] = c
        self.counters["downloaded"] += 1
        return True

    def rebuilt(self, c: Conversation) -> None:
        """``c``'s session was rebuilt here from the store's messages: it is current."""
        self._held[c.id] = c

    def publish(self, c: Conversation, mark: str | None) -> None:
        """After a recorded turn (the caller holds ``c``'s lock): upload its transcript
        once the CLI has written the turn, keeping the shared lock until then."""
        self._held[c.id] = c
        assert self._locks.shared is not None
        self._locks.shared.retain(c.id)
        if self._pending == 0:
            self._idle = trio.Event()
        self._pending += 1
        self._uploads.send_nowait((c, mark))

    async def flush(self, timeout: float) -> None:
        """Wait up to ``timeout`` seconds for the uploads queued so far (a gateway shutting
        down shares its last turns rather than leaving them to be rebuilt)."""
        with trio.move_on_after(timeout):
            await self._idle.wait()

    async def unshare(self, conversation_id: str) -> None:
        """``conversation_id`` was removed: its upload goes too."""
        self._held.pop(conversation_id, None)
        await self._link.call(lambda r: r.delete(self._prefix + conversation_id))

    async def run(self) -> None:
        """Upload what `publish` queued, each in its own task, for the server's lifetime."""
        async with trio.open_nursery() as nursery:
            async for c, mark in self._queued:
                nursery.start_soon(self._upload, c, mark)

    async def _upload(self, c: Conversation, mark: str | None) -> None:
        try:
            data = await self._written(c, mark)
            if data is None:
                log.warning("conversation %s: the CLI did not write its turn into the "
                            "transcript within %g s; not shared", c.id, self._mark_wait)
                self.counters["upload_failures"] += 1
                return
            await self._link.call(self._store(c, data))
            self.counters["uploaded"] += 1
        except StoreUnavailable as exc:
            self.counters["upload_failures"] += 1
            log.warning("conversation %s: transcript not shared (%s); another gateway "
                        "would rebuild the session from its messages", c.id, exc)
        finally:
            with trio.CancelScope(shield=True):
                assert self._locks.shared is not None
                await self._locks.shared.release(c.id)
            self._pending -= 1
            if self._pending == 0:
                self._idle.set()

    async def _written(self, c: Conversation, mark: str | None) -> bytes | None:
        """The transcript once it holds ``mark`` (polled: the CLI gives no signal)."""
        path = self._files.transcript(c.cwd, c.session_id)
        needle = mark.encode() if mark else b""
        with trio.move_on_after(self._mark_wait):
            pause = 0.005
            while True:
                data = await trio.to_thread.run_sync(_read, path)
                if data is not None and needle in data:
                    return data
                await trio.sleep(pause)
                pause = min(pause * 2, 0.1)
        return None

    def _store(self, c: Conversation, data: bytes) -> Callable[[Redis], Awaitable[Any]]:
        async def store(r: Redis) -> Any:
            return await r.eval(_UPLOAD, 1, self._prefix + c.id, data, repr(c.updated_at),
                                self._gateway, self._keep_ms)
        return store


def _read(path: Any) -> bytes | None:
    try:
        data: bytes = path.read_bytes()
    except FileNotFoundError:
        return None
    return data
