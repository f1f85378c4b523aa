"""`ConversationStore` in a shared Redis (or Valkey), for several gateways.

Every method is one `RedisLink.call`, one round trip: a plain command for single-key reads,
a Lua script (redis_scripts.py) for writes that touch several keys, which Redis runs
atomically, and for reads that follow an index to the conversations. The key layout is in
redis_scripts.py; values are JSON, keys sit under a prefix (``ccs:`` by default) so that
one Redis can hold other data, or two stores.

Durability: every write is acknowledged by Redis before the method returns, so a gateway
answers only after Redis applied the change. Whether it survives a crash of Redis itself
is Redis's own persistence: an append-only file with ``appendfsync always`` gives what
SQLite's synchronous=FULL gives (fsynced before the acknowledgement); the default
``everysec`` may lose the last second; without persistence a restarted Redis is empty.

The scripts derive some keys from stored data (a conversation's old fingerprint entry, its
responses), so the store needs a single Redis (or one primary with replicas), not a
Redis Cluster.

Failures (refused, reset, timed out, a Redis that is loading) are `StoreUnavailable` from
the link: a 503 for the request. The client resends a command once after a lost connection
or a timeout, which may come after Redis applied it: writes are upserts, so sending one
twice changes nothing, except add_turn, which carries a token so that it appends once, and
delete, whose resend reports the conversation as already gone.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Sequence
from typing import Any

import attrs
from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from ..cluster import KEY_PREFIX
from ..cluster.link import RedisLink
from . import redis_scripts as lua
from .store import Conversation, StoredMessage

__all__ = ["REDIS_SCHEMA_VERSION", "RedisStore"]

#: The key layout's version, recorded in ``<prefix>schema`` by the first gateway.
REDIS_SCHEMA_VERSION = 1


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _score(value: float) -> str:
    return repr(float(value))  # the shortest text that reads back as the same double


def _text(raw: bytes | str) -> str:
    return raw.decode() if isinstance(raw, bytes) else raw


def _conversation(raw: bytes | str) -> Conversation:
    return Conversation(**json.loads(raw))


def _conversations(raws: Sequence[bytes | None]) -> list[Conversation]:
    return [_conversation(raw) for raw in raws if raw is not None]


class _CountedRead:
    """`RedisStore.get_counted` queued after a shared lock's take (`CountedRead`)."""

    def __init__(self, record: str, messages: str) -> None:
        self._record, self._messages = record, messages
        self.value: tuple[Conversation | None, int] | None = None

    def queue(self, pipe: Pipeline) -> None:
        pipe.hget(self._record, "v")
        pipe.llen(self._messages)

    def answered(self, results: list[Any]) -> None:
        raw, count = results
        self.value = (None if raw is None else _conversation(raw)), int(count)


class RedisStore:
    """`ConversationStore` in Redis through ``link``, its keys under ``prefix``.

    The link belongs to the gateway (it runs it); the store only calls through it.
    """

    def __init__(self, link: RedisLink, *, prefix: str = KEY_PREFIX) -> None:
        self.link, self.prefix = link, prefix

    def _key(self, kind: str, name: str = "") -> str:
        return f"{self.prefix}{kind}{name}"

    async def open(self) -> None:
        """Record the key layout's version, or check the one another gateway recorded.

        Raises:
            RuntimeError: Redis holds a newer layout than this server knows.
            StoreUnavailable: Redis does not answer.
        """
        found = await self.link.call(
            lambda r: lua.SCHEMA.run(r, [self._key("schema")], [str(REDIS_SCHEMA_VERSION)]))
        version = int(found)
        if version > REDIS_SCHEMA_VERSION:
            raise RuntimeError(
                f"the shared store has layout version {version} under {self.prefix!r}; this "
                f"server knows up to {REDIS_SCHEMA_VERSION}. Use a newer server or another "
                "prefix.")

    async def close(self) -> None:
        pass  # the link is the gateway's

    def _upsert(self, c: Conversation) -> tuple[list[str], list[str]]:
        fields = attrs.asdict(c)
        fields["created_at"], fields["updated_at"] = float(c.created_at), float(c.updated_at)
        keys = [self._key("c:", c.id), self._key("created"), self._key("updated")]
        args = [self.prefix, c.id, _dumps(fields), _score(c.created_at),
                _score(c.updated_at), "0" if c.fingerprint is None else "1",
                c.fingerprint or ""]
        return keys, args

    async def put(self, conversation: Conversation) -> None:
        """Insert or update the conversation; its messages stay."""
        keys, args = self._upsert(conversation)
        await self.link.call(lambda r: lua.PUT.run(r, keys, args))

    async def get(self, conversation_id: str) -> Conversation | None:
        raw = await self.link.call(lambda r: r.hget(self._key("c:", conversation_id), "v"))
        return None if raw is None else _conversation(raw)

    async def find(self, fingerprint: str) -> Conversation | None:
        """The newest (by updated_at) of the conversations with this history."""
        raw = await self.link.call(
            lambda r: lua.FIND.run(r, [self._key("f:", fingerprint)], [self.prefix]))
        return None if raw is None else _conversation(raw)

    async def page(self, *, limit: int, after: str | None) -> tuple[list[Conversation], bool]:
        """Newest first by (created_at, id); ``after`` is the last id of the previous page."""
        args = [self.prefix, str(limit), "0" if after is None else "1", after or ""]
        raws = await self.link.call(lambda r: lua.PAGE.run(r, [self._key("created")], args))
        return _conversations(raws[:limit]), len(raws) > limit

    async def expired(self, before: float) -> list[Conversation]:
        """The conversations last updated before ``before``."""
        args = [self.prefix, "(" + _score(before)]
        raws = await self.link.call(lambda r: lua.EXPIRED.run(r, [self._key("updated")], args))
        return _conversations(raws)

    async def messages(self, conversation_id: str) -> list[StoredMessage]:
        raws = await self.link.call(lambda r: r.lrange(self._key("m:", conversation_id), 0, -1))
        out = []
        for raw in raws:
            role, parts, at = json.loads(raw)
            out.append(StoredMessage(role=role, parts=tuple(tuple(p) for p in parts),
                                     created_at=at))
        return out

    async def get_counted(self, conversation_id: str) -> tuple[Conversation | None, int]:
        """The conversation and how many messages it holds, pipelined: one round trip."""
        read = self.counted_read(conversation_id)

        async def run(r: Redis) -> list[Any]:
            pipe = r.pipeline(transaction=False)
            read.queue(pipe)
            return await pipe.execute()

        read.answered(await self.link.call(run))
        assert read.value is not None
        return read.value

    def counted_read(self, conversation_id: str) -> _CountedRead:
        return _CountedRead(self._key("c:", conversation_id), self._key("m:", conversation_id))

    async def add_turn(
        self, conversation: Conversation, messages: Sequence[StoredMessage]
    ) -> None:
        """Store the conversation's new state and append its new messages, atomically."""
        keys, args = self._upsert(conversation)
        keys.append(self._key("m:", conversation.id))
        args.append(secrets.token_hex(12))  # the same on the client's retry: applied once
        args.extend(_dumps([m.role, m.parts, float(m.created_at)]) for m in messages)
        await self.link.call(lambda r: lua.ADD_TURN.run(r, keys, args))

    async def delete(self, conversation_id: str) -> bool:
        """Remove the conversation, its messages and its responses; whether it existed."""
        keys = [self._key("c:", conversation_id), self._key("created"), self._key("updated"),
                self._key("m:", conversation_id), self._key("cr:", conversation_id)]
        existed = await self.link.call(
            lambda r: lua.DELETE.run(r, keys, [self.prefix, conversation_id]))
        return bool(existed)

    async def put_response(self, response_id: str, conversation_id: str, created_at: float,
                           body: str) -> None:
        """Store a Responses API object (JSON text); it goes with its conversation."""
        keys = [self._key("r:", response_id), self._key("cr:", conversation_id)]
        args = [self.prefix, response_id, conversation_id, _score(created_at), body]
        await self.link.call(lambda r: lua.PUT_RESPONSE.run(r, keys, args))

    async def get_response(self, response_id: str) -> tuple[str, str] | None:
        """(conversation id, body) of a stored response, or None."""
        cid, body = await self.link.call(
            lambda r: r.hmget(self._key("r:", response_id), ["c", "v"]))
        if cid is None or body is None:
            return None
        return _text(cid), _text(body)
