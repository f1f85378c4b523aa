"""Conversation locks shared through a real Redis: one gateway at a time, a gateway's own
turns hand over without Redis, expiry frees a dead gateway's locks, renewal keeps a live
one's; and transcripts that travel with their conversation."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import attrs
import pytest
import trio

from ccproto import HistoryMessage
from ccserver.cluster.link import RedisLink
from ccserver.cluster.locks import SharedLocks
from ccserver.conversations.expiry import Janitor
from ccserver.conversations.locks import ConversationLocks
from ccserver.conversations.records import Records
from ccserver.conversations.redis_store import RedisStore
from ccserver.conversations.sessions import SessionFiles
from ccserver.conversations.sqlite import SQLiteStore
from ccserver.conversations.store import Conversation, ConversationStore, StoredMessage
from ccserver.conversations.transcripts import TranscriptShare
from ccserver.errors import ConversationBusy
from ccserver.settings.sections import ConversationSettings
from tests.support.redis import open_link, running_redis


@asynccontextmanager
async def linked(url: str) -> AsyncIterator[tuple[RedisLink, trio.Nursery]]:
    async with open_link(url) as link, trio.open_nursery() as nursery:
        yield link, nursery
        nursery.cancel_scope.cancel()


async def test_one_gateway_at_a_time_and_the_other_gets_busy(redis_url: str) -> None:
    async with linked(redis_url) as (link, _):
        a = ConversationLocks(SharedLocks(link, "gw_a", ttl=30))
        b = ConversationLocks(SharedLocks(link, "gw_b", ttl=30))
        assert await a.acquire("conv_1", 0)
        with pytest.raises(ConversationBusy):
            await b.acquire("conv_1", 0.05, busy=ConversationBusy)
        assert not b.locked("conv_1")  # its local lock was let go with the refusal
        await a.release("conv_1")
        assert await b.acquire("conv_1", 0)
        await b.release("conv_1")


async def test_a_waiting_gateway_gets_the_lock_when_it_is_released(redis_url: str) -> None:
    async with linked(redis_url) as (link, nursery):
        a = ConversationLocks(SharedLocks(link, "gw_a", ttl=30))
        b = ConversationLocks(SharedLocks(link, "gw_b", ttl=30))
        await a.acquire("conv_1", 0)
        got: list[bool] = []

        async def wait_for_it() -> None:
            got.append(await b.acquire("conv_1", 30))

        nursery.start_soon(wait_for_it)
        await trio.sleep(0.05)
        assert got == []
        await a.release("conv_1")
        with trio.fail_after(10):
            while not got:
                await trio.sleep(0.01)
        assert got == [True]


async def test_a_gateways_own_next_turn_keeps_the_shared_lock(redis_url: str) -> None:
    async with linked(redis_url) as (link, _):
        shared = SharedLocks(link, "gw_a", ttl=30)
        a = ConversationLocks(shared)
        await a.acquire("conv_1", 0)
        shared.retain("conv_1")  # an upload still running after the turn
        await a.release("conv_1")
        assert shared.held("conv_1")
        other = SharedLocks(link, "gw_b", ttl=30)
        assert not await other.acquire("conv_1", 0)
        await shared.release("conv_1")
        assert await other.acquire("conv_1", 0)


async def test_a_dead_gateways_lock_expires_and_a_live_ones_is_renewed(redis_url: str) -> None:
    async with linked(redis_url) as (link, nursery):
        dead = SharedLocks(link, "gw_dead", ttl=0.3)  # never renews: it "died"
        live = SharedLocks(link, "gw_live", ttl=0.3)
        nursery.start_soon(live.renew_forever)
        assert await dead.acquire("conv_dead", 0)
        assert await live.acquire("conv_live", 0)
        other = SharedLocks(link, "gw_other", ttl=30)
        with trio.fail_after(10):
            assert await other.acquire("conv_dead", 10)  # free once it expired
        for _ in range(5):  # several ttls pass; renewal keeps it
            await trio.sleep(0.3)
            assert not await other.acquire("conv_live", 0)


def conversation(tmp_path: Path, updated_at: float) -> Conversation:
    return Conversation(id="conv_t", session_id="11111111-2222-3333-4444-555555555555",
                        cwd=str(tmp_path / "ws"), model=None, system_prompt=None,
                        created_at=1.0, updated_at=updated_at, turns=1, started=True)


async def test_a_transcript_travels_once_the_cli_has_written_the_turn(
        redis_url: str, tmp_path: Path) -> None:
    stale: list[str] = []

    async def on_stale(conversation_id: str) -> None:
        stale.append(conversation_id)

    async with linked(redis_url) as (link, nursery):
        def share(name: str) -> tuple[TranscriptShare, SessionFiles]:
            files = SessionFiles({"CLAUDE_CONFIG_DIR": str(tmp_path / name)})
            locks = ConversationLocks(SharedLocks(link, f"gw_{name}", ttl=30))
            s = TranscriptShare(link, files, locks, gateway_id=f"gw_{name}",
                                keep_seconds=60, on_stale=on_stale)
            nursery.start_soon(s.run)
            return s, files

        a, a_files = share("a")
        b, b_files = share("b")
        c = conversation(tmp_path, updated_at=10.5)
        path = a_files.transcript(c.cwd, c.session_id)
        path.parent.mkdir(parents=True)
        path.write_bytes(b'{"type":"user"}\n')
        a_locks = a._locks
        await a_locks.acquire(c.id, 0)
        a.publish(c, "mark-1")  # the CLI has not written the turn yet
        await a_locks.release(c.id)
        assert a_locks.shared is not None and a_locks.shared.held(c.id)  # until uploaded
        await trio.sleep(0.05)
        assert not await b.bring(c)  # not uploaded: B would rebuild
        path.write_bytes(b'{"type":"user"}\n{"type":"assistant","uuid":"mark-1"}\n')
        with trio.fail_after(10):
            while a_locks.shared.held(c.id):
                await trio.sleep(0.01)
        assert a.current(c) and not b.current(c)
        assert await b.bring(c)
        assert b_files.transcript(c.cwd, c.session_id).read_bytes() == path.read_bytes()
        assert b.current(c) and stale == ["conv_t", "conv_t"]
        # An older upload finishing late never replaces a newer one.
        newer = conversation(tmp_path, updated_at=11.0)
        await a_locks.acquire(c.id, 0)
        a.publish(newer, None)
        a.publish(c, None)
        await a_locks.release(c.id)
        with trio.fail_after(10):
            while a_locks.shared.held(c.id):
                await trio.sleep(0.01)
        assert await b.bring(newer)


async def test_a_lock_let_go_while_redis_was_away_is_given_back_when_it_returns(
        tmp_path: Path) -> None:
    with running_redis(tmp_path / "r") as server:
        async with linked(server.url) as (link, nursery):
            a = SharedLocks(link, "gw_a", ttl=60)  # expiry alone would take a minute
            nursery.start_soon(a.renew_forever)
            assert await a.acquire("conv_1", 0)
            server.stop()
            await a.release("conv_1")  # Redis is away: logged, kept to retry
            await trio.to_thread.run_sync(server.start)  # the lock came back with the data
            b = SharedLocks(link, "gw_b", ttl=60)
            with trio.fail_after(20):
                assert await b.acquire("conv_1", 20)


class Gateway:
    """One gateway's conversation records on a shared Redis, as gateway.py wires them;
    ``stopped`` lists the conversations whose process it was told to stop."""

    def __init__(self, link: RedisLink, store: ConversationStore, tmp_path: Path, name: str,
                 *, clock: Callable[[], float] = time.time) -> None:
        self.files = SessionFiles({"CLAUDE_CONFIG_DIR": str(tmp_path / name)})
        self.locks = ConversationLocks(SharedLocks(link, f"gw_{name}", ttl=30))
        self.records = Records(store, self.files, ConversationSettings(),
                               workspace=tmp_path / "ws", cli_version=lambda: "2.1.197",
                               clock=clock)
        self.stopped: list[str] = []
        self.records.share = TranscriptShare(link, self.files, self.locks,
                                             gateway_id=f"gw_{name}", keep_seconds=60,
                                             on_stale=self.stop)

    async def stop(self, conversation_id: str) -> None:
        self.stopped.append(conversation_id)


async def test_a_turn_whose_transcript_was_never_shared_is_rebuilt_from_its_messages(
        redis_url: str, tmp_path: Path) -> None:
    """The gateway that ran the last turn died before its upload: the next gateway writes
    the session from the stored messages (or, for a history that cannot be written as a
    transcript, goes on without it) instead of resuming a session it does not have."""
    async with linked(redis_url) as (link, _):
        store = SQLiteStore(tmp_path / "db.sqlite3")
        await store.open()
        b = Gateway(link, store, tmp_path, "b")
        records, files, gone = b.records, b.files, b.stopped
        assert records.share is not None
        c = conversation(tmp_path, updated_at=10.5)
        await store.add_turn(c, [StoredMessage(role="user", parts=(("text", "My name is Bob."),),
                                               created_at=1.0),
                                 StoredMessage(role="assistant", parts=(("text", "Hi Bob."),),
                                               created_at=1.0)])
        assert await records.bring(c) is c
        lines = files.transcript(c.cwd, c.session_id).read_text().splitlines()
        assert [json.loads(line)["message"]["content"] for line in lines][1] == [
            {"type": "text", "text": "Hi Bob."}]
        assert records.share.current(c) and gone == [c.id]
        assert await records.bring(c) is c and gone == [c.id]  # current now: nothing to do

        pictured = attrs.evolve(c, id="conv_img", session_id="22222222-2222-3333-4444-555555555555")
        await store.add_turn(pictured, [
            StoredMessage(role="user", parts=(("image", "data:image/png;base64,AAAA"),),
                          created_at=1.0),
            StoredMessage(role="assistant", parts=(("text", "A dot."),), created_at=1.0)])
        brought = await records.bring(pictured)
        assert not brought.started  # its turn goes on as a new session, quoted history aside
        assert not files.transcript(pictured.cwd, pictured.session_id).exists()


async def test_copies_of_conversations_that_went_on_elsewhere_are_let_go(
        redis_url: str, tmp_path: Path) -> None:
    """The sweep: a conversation another gateway went on with loses its process here; one
    removed elsewhere loses its files here too; one this gateway is current on keeps both."""
    async with linked(redis_url) as (link, _):
        store = RedisStore(link)
        await store.open()
        a = Gateway(link, store, tmp_path, "a", clock=lambda: 20.0)
        records, files, stopped = a.records, a.files, a.stopped
        assert records.share is not None
        janitor = Janitor(records, a.locks, on_remove=a.stop)
        kept, moved, removed = (attrs.evolve(conversation(tmp_path, 10.0), id=f"conv_{n}",
                                             session_id=f"{n}1111111-2222-3333-4444-555555555555")
                                for n in (1, 2, 3))
        for c in (kept, moved, removed):
            await store.put(c)
            records.share.rebuilt(c)  # this gateway holds a copy of each
            path = files.transcript(c.cwd, c.session_id)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(b"{}\n")
        await store.put(attrs.evolve(moved, updated_at=11.0))  # another gateway's turn
        await store.delete(removed.id)  # removed on another gateway
        assert await janitor.sweep_moved() == 2
        assert sorted(stopped) == ["conv_2", "conv_3"]
        assert [c.id for c in records.share.known()] == ["conv_1"]
        assert files.transcript(moved.cwd, moved.session_id).exists()  # replaced when it returns
        assert not files.transcript(removed.cwd, removed.session_id).exists()
        assert await janitor.sweep_moved() == 0


async def test_a_conversation_is_read_in_the_same_round_trip_as_its_lock_is_taken(
        redis_url: str, tmp_path: Path) -> None:
    async with linked(redis_url) as (link, _):
        store = RedisStore(link)
        c = conversation(tmp_path, 10.0)
        await store.add_turn(c, [StoredMessage(role="user", parts=(("text", "hi"),),
                                               created_at=1.0)])
        a = SharedLocks(link, "gw_a", ttl=30)
        read = store.counted_read(c.id)
        assert await a.acquire(c.id, 0, read)
        assert read.value == (c, 1)
        late = store.counted_read(c.id)  # another gateway: refused, so nothing was read
        assert not await SharedLocks(link, "gw_b", ttl=30).acquire(c.id, 0, late)
        assert late.value is None
        again = store.counted_read(c.id)  # held here already: no round trip, no read
        assert await a.acquire(c.id, 0, again) and again.value is None
        assert await store.get_counted(c.id) == (c, 1)
        assert SQLiteStore(tmp_path / "x.sqlite3").counted_read(c.id) is None


async def test_a_new_conversation_seeded_here_is_not_brought_from_the_store(
        redis_url: str, tmp_path: Path) -> None:
    """A stateless client's history, seeded as a transcript on this gateway, is this
    gateway's current copy: no download, no rebuild, no process stopped."""
    async with linked(redis_url) as (link, _):
        a = Gateway(link, RedisStore(link), tmp_path, "a")
        records, files, stopped = a.records, a.files, a.stopped
        c = await records.create(model=None, system_prompt=None, metadata={})
        seeded = await records.seed_earlier(c, (
            HistoryMessage("user", (("text", "My name is Bob."),)),
            HistoryMessage("assistant", (("text", "Hi Bob."),))), "sonnet")
        assert seeded.started
        written = files.transcript(seeded.cwd, seeded.session_id).read_bytes()
        assert await records.bring(seeded) is seeded
        assert stopped == [] and records.counters["seeded"] == 1
        assert files.transcript(seeded.cwd, seeded.session_id).read_bytes() == written
