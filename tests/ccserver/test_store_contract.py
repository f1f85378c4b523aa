"""The `ConversationStore` contract, run against both stores (SQLite and Redis), then what
only the Redis store has to show: a Redis lost and back, two gateways on one Redis,
retried writes, scripts after a restart, the layout version, prefixes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import attrs
import pytest
import redis
import trio

from ccserver.conversations import redis_scripts as lua
from ccserver.conversations.redis_store import REDIS_SCHEMA_VERSION, RedisStore
from ccserver.conversations.sqlite import SQLiteStore
from ccserver.conversations.store import Conversation, ConversationStore, StoredMessage
from ccserver.errors import StoreUnavailable
from tests.support.redis import open_link, running_redis


async def count(store: ConversationStore, conversation_id: str) -> int:
    """How many messages the store holds for the conversation."""
    return (await store.get_counted(conversation_id))[1]


@pytest.fixture(params=["sqlite", "redis"])
async def store(request: pytest.FixtureRequest, tmp_path: Path,
                redis_url: str) -> AsyncIterator[ConversationStore]:
    if request.param == "sqlite":
        sqlite = SQLiteStore(tmp_path / "db.sqlite3")
        await sqlite.open()
        yield sqlite
        await sqlite.close()
    else:
        async with open_link(redis_url) as link:
            shared = RedisStore(link)
            await shared.open()
            yield shared
            await shared.close()


def conv(id: str, *, created: float = 1.0, updated: float | None = None,
         **fields: Any) -> Conversation:
    return Conversation(id=id, session_id=f"s-{id}", cwd=f"/w/{id}", model=None,
                        system_prompt=None, created_at=created,
                        updated_at=created if updated is None else updated, **fields)


def msg(role: str, *texts: str, at: float = 1.0) -> StoredMessage:
    return StoredMessage(role=role, parts=tuple(("text", t) for t in texts), created_at=at)


async def ids(store: ConversationStore, *, limit: int, after: str | None
              ) -> tuple[list[str], bool]:
    page, more = await store.page(limit=limit, after=after)
    return [c.id for c in page], more


async def test_put_then_get_gives_every_field_back(store: ConversationStore) -> None:
    full = conv("c1", created=1700000000.123456, updated=1700000001.5, turns=3,
                fingerprint="fp1", started=True, metadata={"k": "v", "ключ": "值"})
    full = attrs.evolve(full, model="claude-x", system_prompt="Be brief.\n")
    await store.put(full)
    await store.put(conv("c2"))
    assert await store.get("c1") == full
    assert await store.get("c2") == conv("c2")
    assert await store.get("nope") is None


async def test_an_update_keeps_the_messages(store: ConversationStore) -> None:
    c = conv("c1")
    await store.add_turn(c, [msg("user", "hi"), msg("assistant", "hello", at=2)])
    await store.put(attrs.evolve(c, turns=1, updated_at=5.0))
    assert (await store.get("c1")) == attrs.evolve(c, turns=1, updated_at=5.0)
    assert await store.messages("c1") == [msg("user", "hi"), msg("assistant", "hello", at=2)]
    assert await count(store, "c1") == 2


async def test_turns_append_in_order_and_create_the_conversation(
        store: ConversationStore) -> None:
    c = conv("c1")
    await store.add_turn(c, [msg("user", "1"), msg("assistant", "2")])  # never put before
    await store.add_turn(attrs.evolve(c, turns=2), [msg("user", "3"), msg("assistant", "4")])
    await store.add_turn(attrs.evolve(c, turns=3), [])
    assert [m.parts[0][1] for m in await store.messages("c1")] == ["1", "2", "3", "4"]
    assert (await store.get("c1")) == attrs.evolve(c, turns=3)
    assert await count(store, "c1") == 4
    assert await count(store, "nope") == 0 and await store.messages("nope") == []
    got, held = await store.get_counted("c1")
    assert got is not None and got.id == "c1" and held == 4
    assert await store.get_counted("nope") == (None, 0)


async def test_a_long_history_in_one_turn(store: ConversationStore) -> None:
    history = [msg("user" if n % 2 == 0 else "assistant", str(n)) for n in range(2500)]
    await store.add_turn(conv("c1"), history)
    assert await store.messages("c1") == history
    assert await count(store, "c1") == 2500


async def test_unicode_large_and_odd_values_round_trip(store: ConversationStore) -> None:
    big = "x" * 1_000_000 + "é"
    odd = "ü 日本語 🎉 \u0000 \"quoted\" \\ ' ]] -- \n\r\t"
    parts = (("text", odd), ("image", "data:image/png;base64," + "A" * 1000), ("text", big))
    m = StoredMessage(role="user", parts=parts, created_at=1.25)
    # Ids come from clients: separators, braces, quotes and Lua in them are only data.
    for cid in ("c:1", "{c}", "x') redis.call('FLUSHALL') --", "日本", " "):
        c = attrs.evolve(conv(cid, fingerprint=cid), system_prompt=odd,
                         metadata={odd: odd})
        await store.add_turn(c, [m])
        assert await store.get(cid) == c
        assert await store.messages(cid) == [m]
        assert await store.find(cid) == c
        await store.put_response(f"resp {cid}", cid, 1.0, odd)
        assert await store.get_response(f"resp {cid}") == (cid, odd)
    assert len((await store.page(limit=10, after=None))[0]) == 5


async def test_find_gives_the_newest_of_equal_histories(store: ConversationStore) -> None:
    await store.put(conv("a", updated=5, fingerprint="fp"))
    await store.put(conv("b", updated=10, fingerprint="fp"))
    await store.put(conv("c", updated=7, fingerprint="fp"))
    await store.put(conv("d", updated=99, fingerprint="other"))
    await store.put(conv("e", updated=100))
    found = await store.find("fp")
    assert found is not None and found.id == "b"
    await store.put(conv("a", updated=20, fingerprint="fp"))
    found = await store.find("fp")
    assert found is not None and found.id == "a" and found.updated_at == 20
    assert await store.find("none") is None


async def test_a_changed_fingerprint_moves_the_index(store: ConversationStore) -> None:
    c = conv("c1", fingerprint="old")
    await store.put(c)
    await store.add_turn(attrs.evolve(c, fingerprint="new", updated_at=2.0), [msg("user", "x")])
    assert await store.find("old") is None
    found = await store.find("new")
    assert found is not None and found.id == "c1"
    await store.put(attrs.evolve(c, fingerprint=None, updated_at=3.0))
    assert await store.find("new") is None
    await store.put(attrs.evolve(c, fingerprint="old", updated_at=4.0))
    found = await store.find("old")
    assert found is not None and found.updated_at == 4.0


async def test_pages_are_newest_first_with_ties_by_id(store: ConversationStore) -> None:
    for cid, created in (("a", 1), ("b", 2), ("c", 2), ("d", 2), ("e", 3), ("f", 0.5)):
        await store.put(conv(cid, created=created, updated=100 - created))
    assert await ids(store, limit=10, after=None) == (["e", "d", "c", "b", "a", "f"], False)
    assert await ids(store, limit=2, after=None) == (["e", "d"], True)
    assert await ids(store, limit=2, after="d") == (["c", "b"], True)
    assert await ids(store, limit=2, after="b") == (["a", "f"], False)
    assert await ids(store, limit=3, after="c") == (["b", "a", "f"], False)
    assert await ids(store, limit=2, after="f") == ([], False)
    assert await ids(store, limit=2, after="unknown") == ([], False)
    # An update does not move a conversation in the pages: they go by created_at.
    await store.put(conv("a", created=1, updated=1000))
    assert await ids(store, limit=10, after=None) == (["e", "d", "c", "b", "a", "f"], False)


async def test_an_empty_store(store: ConversationStore) -> None:
    assert await store.page(limit=5, after=None) == ([], False)
    assert await store.expired(1e18) == []
    assert await store.find("fp") is None
    assert not await store.delete("nope")


async def test_expired_are_those_updated_strictly_before(store: ConversationStore) -> None:
    for cid, updated in (("a", 10), ("b", 20), ("c", 30)):
        await store.put(conv(cid, created=1, updated=updated))
    assert {c.id for c in await store.expired(20)} == {"a"}
    assert {c.id for c in await store.expired(30.5)} == {"a", "b", "c"}
    await store.put(conv("a", created=1, updated=40))
    assert {c.id for c in await store.expired(30.5)} == {"b", "c"}
    assert await store.expired(10) == []


async def test_delete_takes_everything_of_the_conversation(store: ConversationStore) -> None:
    c = conv("c1", fingerprint="fp")
    await store.add_turn(c, [msg("user", "hi")])
    await store.put_response("resp_1", "c1", 1.0, '{"id":"resp_1"}')
    await store.put_response("resp_2", "c1", 2.0, '{"id":"resp_2"}')
    await store.add_turn(conv("c2", fingerprint="fp"), [msg("user", "other")])
    await store.put_response("resp_3", "c2", 3.0, "{}")
    assert await store.delete("c1")
    assert not await store.delete("c1")
    assert await store.get("c1") is None
    assert await store.messages("c1") == [] and await count(store, "c1") == 0
    assert await store.get_response("resp_1") is None
    assert await store.get_response("resp_2") is None
    found = await store.find("fp")
    assert found is not None and found.id == "c2"  # the index entry went with c1
    assert await ids(store, limit=10, after=None) == (["c2"], False)
    assert [x.id for x in await store.expired(1e18)] == ["c2"]
    # The other conversation is untouched.
    assert await store.messages("c2") == [msg("user", "other")]
    assert await store.get_response("resp_3") == ("c2", "{}")
    # A deleted id can be used again, from nothing.
    await store.put(c)
    assert await store.get("c1") == c and await store.messages("c1") == []


async def test_a_response_lives_only_with_its_conversation(store: ConversationStore) -> None:
    assert await store.get_response("resp_1") is None
    await store.put_response("resp_1", "c1", 1700000000.0, '{"id":"resp_1"}')
    await store.put_response("resp_1", "c1", 1700000000.0, '{"id":"resp_1","v":2}')
    assert await store.get_response("resp_1") == ("c1", '{"id":"resp_1","v":2}')
    # Stored again for another conversation: it follows that one now.
    await store.put_response("resp_2", "c1", 1.0, "a")
    await store.put_response("resp_2", "c2", 1.0, "b")
    await store.put_response("resp_3", "c2", 1.0, "c")
    # A response whose conversation was never stored goes when that id is deleted.
    assert not await store.delete("c1")
    assert await store.get_response("resp_1") is None
    assert await store.get_response("resp_2") == ("c2", "b")
    assert not await store.delete("c2")
    assert await store.get_response("resp_2") is None
    assert await store.get_response("resp_3") is None


# What only the Redis store has to show.


async def test_redis_lost_gives_store_unavailable_then_works_again(tmp_path: Path) -> None:
    with running_redis(tmp_path / "r") as server:
        async with open_link(server.url, timeout=1) as link:
            store = RedisStore(link)
            await store.open()
            await store.add_turn(conv("c1", fingerprint="fp"), [msg("user", "kept")])
            server.stop()
            for call in (lambda: store.get("c1"), lambda: store.put(conv("c2")),
                         lambda: store.add_turn(conv("c1"), [msg("user", "lost")]),
                         lambda: store.page(limit=5, after=None),
                         lambda: store.delete("c1")):
                with pytest.raises(StoreUnavailable):
                    await call()
            await trio.to_thread.run_sync(server.start)
            # Acknowledged writes are back (appendfsync always); scripts load again.
            assert await store.messages("c1") == [msg("user", "kept")]
            found = await store.find("fp")
            assert found is not None and found.id == "c1"
            await store.add_turn(conv("c1"), [msg("assistant", "more")])
            assert await count(store, "c1") == 2
            assert await store.delete("c1")


async def test_two_gateways_share_one_redis(redis_url: str) -> None:
    async with open_link(redis_url) as link_a, open_link(redis_url) as link_b:
        a, b = RedisStore(link_a), RedisStore(link_b)
        await a.open()
        await b.open()
        c = conv("c1", fingerprint="fp1")
        await a.add_turn(c, [msg("user", "on a")])
        assert await b.get("c1") == c
        await b.add_turn(attrs.evolve(c, turns=2, fingerprint="fp2", updated_at=3.0),
                         [msg("assistant", "on b")])
        assert [m.parts for m in await a.messages("c1")] == [(("text", "on a"),),
                                                            (("text", "on b"),)]
        assert await a.find("fp1") is None
        assert (await a.find("fp2")) == await b.get("c1")
        await b.put_response("resp_1", "c1", 1.0, "{}")
        assert await a.get_response("resp_1") == ("c1", "{}")
        assert await a.delete("c1")
        assert await b.get("c1") is None and await b.get_response("resp_1") is None
        assert not await b.delete("c1")


async def test_a_retried_turn_is_applied_once(redis_url: str) -> None:
    async with open_link(redis_url) as link:
        store = RedisStore(link)
        keys, args = store._upsert(conv("c1"))
        keys.append("ccs:m:c1")
        args += ["token-1", '["user",[["text","hi"]],1.0]']
        for _ in range(2):  # the client resends after a timeout that came after Redis ran it
            await link.call(lambda r: lua.ADD_TURN.run(r, keys, args))
        assert await count(store, "c1") == 1


async def test_scripts_run_after_redis_forgot_them(redis_url: str) -> None:
    async with open_link(redis_url) as link:
        store = RedisStore(link)
        await store.put(conv("c1", fingerprint="fp"))
        await link.call(lambda r: r.script_flush())
        await store.put(conv("c2", fingerprint="fp", updated=2))
        found = await store.find("fp")
        assert found is not None and found.id == "c2"


async def test_the_layout_version_is_recorded_and_a_newer_one_refused(redis_url: str) -> None:
    async with open_link(redis_url) as link:
        await RedisStore(link).open()
        assert redis.Redis.from_url(redis_url).get("ccs:schema") == str(
            REDIS_SCHEMA_VERSION).encode()
        redis.Redis.from_url(redis_url).set("new:schema", REDIS_SCHEMA_VERSION + 1)
        with pytest.raises(RuntimeError, match="layout version"):
            await RedisStore(link, prefix="new:").open()


async def test_prefixes_keep_two_stores_apart(redis_url: str) -> None:
    async with open_link(redis_url) as link:
        one, two = RedisStore(link, prefix="one:"), RedisStore(link, prefix="two:")
        await one.add_turn(conv("c1", fingerprint="fp"), [msg("user", "x")])
        assert await two.get("c1") is None and await two.find("fp") is None
        assert await two.page(limit=5, after=None) == ([], False)
        assert not await two.delete("c1")
        assert await count(one, "c1") == 1
        keys = redis.Redis.from_url(redis_url).keys("*")
        assert keys and all(k.startswith(b"one:") for k in keys)
